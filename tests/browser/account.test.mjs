// An account an administrator set up must choose its own password before anything else, and
// is told in Vietnamese what went wrong; a steward's broken files are explained by line.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useKho, shot, signIn, ADMIN_PASSWORD } from "./kho.mjs";

const env = useKho();

test("a new account chooses its own password first, then its tokens are its own", async () => {
  // The administrator creates a steward with a temporary password, through the API.
  const admin = await env.browser.newContext();
  const api = admin.request;
  const signedIn = await api.post(`${env.kho.base}/api/v1/auth/sign-in`, { data: { username: "admin", password: ADMIN_PASSWORD } });
  const csrf = (await signedIn.json()).csrf_token;
  const agencies = await (await api.get(`${env.kho.base}/api/v1/agencies`)).json();
  const health = agencies.find((a) => a.code === "so-y-te");
  const created = await api.post(`${env.kho.base}/api/v1/users`, {
    headers: { "x-csrf-token": csrf },
    data: { username: "bs.lan", display_name: "Bác sĩ Lan", agency_id: health.id, role: "steward", password: "tam-thoi-123" },
  });
  assert.equal(created.status(), 201);
  await admin.close();

  for (const viewport of [{ width: 1280, height: 800 }, { width: 390, height: 844 }]) {
    const context = await env.browser.newContext({ viewport });
    const page = await context.newPage();
    await page.goto(`${env.kho.base}/sign-in`);
    await page.getByLabel("Tên đăng nhập").fill("bs.lan");
    await page.getByLabel("Mật khẩu").fill(viewport.width > 400 ? "tam-thoi-123" : "mat-khau-rieng-2026");
    await page.getByRole("button", { name: "Đăng nhập" }).click();
    if (viewport.width > 400) {
      await page.waitForURL(`${env.kho.base}/account`);
      assert.match(await page.locator("main").innerText(), /Mật khẩu này do người khác đặt/);
      // No tokens to make before the password is the user's own.
      assert.equal(await page.getByRole("button", { name: "Tạo khóa" }).count(), 0);
      await shot(page, "account-must-change");
      // Any other page sends the user back.
      await page.goto(`${env.kho.base}/datasets`);
      assert.equal(new URL(page.url()).pathname, "/account");
      // A wrong current password says so, in Vietnamese, without field names.
      await page.getByLabel("Mật khẩu hiện tại").fill("khong-phai-the");
      await page.getByLabel("Mật khẩu mới (ít nhất 10 ký tự)").fill("mat-khau-rieng-2026");
      await page.getByLabel("Nhập lại mật khẩu mới").fill("mat-khau-rieng-2026");
      await page.getByRole("button", { name: "Đổi mật khẩu" }).click();
      // Beside the notice that the password must change, an alert for this attempt.
      const alert = (await page.getByRole("alert").allInnerTexts()).join("\n");
      assert.match(alert, /Mật khẩu hiện tại không đúng/);
      assert.doesNotMatch(alert, /current_password|invalid_credentials/);
      await shot(page, "account-wrong-current");
      await page.getByLabel("Mật khẩu hiện tại").fill("tam-thoi-123");
      await page.getByLabel("Mật khẩu mới (ít nhất 10 ký tự)").fill("mat-khau-rieng-2026");
      await page.getByLabel("Nhập lại mật khẩu mới").fill("mat-khau-rieng-2026");
      await page.getByLabel(/Thu hồi luôn mọi khóa/).check();
      await page.getByRole("button", { name: "Đổi mật khẩu" }).click();
      await page.getByRole("status").filter({ hasText: "Đã đổi mật khẩu" }).waitFor();
      await page.goto(`${env.kho.base}/datasets`);
      assert.equal(new URL(page.url()).pathname, "/datasets");
    } else {
      // On a phone, with the new password: straight in, and the account page fits the screen.
      await page.waitForURL((url) => url.pathname !== "/sign-in");
      await page.goto(`${env.kho.base}/account`);
      await shot(page, "account-phone");
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `the account page is ${overflow} px wider than the phone`);
    }
    await context.close();
  }
});

test("a steward's broken files are explained by line and by cell, in Vietnamese", async () => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  await signIn(page, env.kho.base, "yte.canbo", "demo-yte-canbo");
  const upload = async (name, mimeType, body) => {
    await page.goto(`${env.kho.base}/datasets/co-so-y-te/resources/co-so/upload`);
    await page.locator('input[type="file"]').setInputFiles({ name, mimeType, buffer: Buffer.from(body) });
    await page.getByRole("button", { name: "Kiểm tra tệp" }).click();
    return page.getByRole("alert").first().innerText();
  };
  const head = "ma_co_so,ten_co_so,ma_xa,so_giuong,dien_thoai\r\n";
  const unclosed = await upload("co-so.csv", "text/csv", `${head}BV01,"Trạm y tế,04045,5,0912345678\r\nBV02,x,04045,5,0912345678\r\n`);
  assert.match(unclosed, /Dòng 2: dấu ngoặc kép/);
  await shot(page, "upload-unclosed-quote");
  const wide = Array.from({ length: 3000 }, (_, i) => `c${i}`).join(",");
  const tooWide = await upload("rong.csv", "text/csv", `${wide}\n${wide}\n`);
  assert.match(tooWide, /3\.000 cột; tối đa 2\.000 cột/);
  for (const text of [unclosed, tooWide]) assert.doesNotMatch(text, /too_many_columns|unclosed_quote|file:line/);
  // Rows that break the rules: each rule named in words, not by its code or an expression.
  await page.goto(`${env.kho.base}/datasets/co-so-y-te/resources/co-so/upload`);
  await page.locator('input[type="file"]').setInputFiles({ name: "co-so.csv", mimeType: "text/csv", buffer: Buffer.from(`${head}BV01,Trạm y tế,03646,-5,0912\r\n`) });
  await page.getByRole("button", { name: "Kiểm tra tệp" }).click();
  await page.getByRole("heading", { name: /Kết quả kiểm tra/ }).waitFor();
  const report = await page.locator("main").innerText();
  assert.match(report, /Nhỏ hơn mức tối thiểu/);
  assert.match(report, /Số điện thoại không hợp lệ/);
  assert.doesNotMatch(report, /\bminimum\b|\bphone\b|\^\(/);
  await shot(page, "upload-rules-in-words");
  await context.close();
});
