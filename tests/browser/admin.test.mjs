// The data center's administrator looks after accounts and agencies from the pages: a weak
// password is refused in Vietnamese; a steward moves to another agency and role; a forgotten
// password becomes a one-time password the steward must replace at once; an agency is renamed;
// the audit log, filtered by person, action and day, names who did what to whom.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useKho, shot, signIn, ADMIN_PASSWORD } from "./kho.mjs";

const env = useKho();

test("an administrator manages accounts and agencies and reads the audit log by person and day", async () => {
  for (const viewport of [{ width: 1280, height: 800 }, { width: 390, height: 844 }]) {
    const wide = viewport.width > 400;
    const context = await env.browser.newContext({ viewport });
    const page = await context.newPage();
    page.on("dialog", (d) => d.accept());
    await signIn(page, env.kho.base, "admin", ADMIN_PASSWORD);

    // A new account with a common password is refused, saying why; nothing is created.
    const username = wide ? "ke.toan" : "thu.quy";
    const name = wide ? "Kế toán Hà" : "Thủ quỹ Minh";
    await page.goto(`${env.kho.base}/admin/users`);
    await page.getByLabel("Tên đăng nhập").fill(username);
    await page.getByLabel("Họ và tên").fill(name);
    await page.getByLabel("Cơ quan").selectOption({ label: "Sở Tài chính" });
    await page.getByLabel("Mật khẩu ban đầu").fill("1111111111");
    await page.getByRole("button", { name: "Thêm người dùng" }).last().click();
    const refused = await page.getByRole("alert").first().innerText();
    assert.match(refused, /dễ đoán/);
    assert.doesNotMatch(refused, /easy to guess|password/);
    assert.equal(await page.getByRole("link", { name: `Sửa ${name}` }).count(), 0);
    await page.getByLabel("Tên đăng nhập").fill(username);
    await page.getByLabel("Họ và tên").fill(name);
    await page.getByLabel("Cơ quan").selectOption({ label: "Sở Tài chính" });
    await page.getByLabel("Mật khẩu ban đầu").fill("mây-sông-đèn-lồng-47");
    await page.getByRole("button", { name: "Thêm người dùng" }).last().click();
    await page.getByRole("status").filter({ hasText: "Đã thêm người dùng" }).waitFor();

    // Moved to the Department of Health as a viewer.
    await page.getByRole("link", { name: `Sửa ${name}` }).click();
    await page.getByLabel("Cơ quan").selectOption({ label: "Sở Y tế" });
    await page.getByLabel("Vai trò").selectOption({ label: "Người xem" });
    await page.getByRole("button", { name: "Lưu" }).click();
    await page.getByRole("status").filter({ hasText: "Đã cập nhật" }).waitFor();
    assert.equal(await page.getByLabel("Vai trò").locator("option:checked").innerText(), "Người xem");

    // The password is reset: shown once, and the user must replace it before anything else.
    await page.getByRole("button", { name: "Đặt lại mật khẩu" }).click();
    const oneTime = (await page.locator("#one-time code").innerText()).trim();
    assert.match(oneTime, /^[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}$/);
    await shot(page, `admin-user-reset-${viewport.width}`);
    const user = await env.browser.newContext({ viewport });
    const them = await user.newPage();
    await them.goto(`${env.kho.base}/sign-in`);
    await them.getByLabel("Tên đăng nhập").fill(username);
    await them.getByLabel("Mật khẩu").fill(oneTime);
    await them.getByRole("button", { name: "Đăng nhập" }).click();
    await them.waitForURL(`${env.kho.base}/account`);
    assert.match(await them.locator("main").innerText(), /Mật khẩu này do người khác đặt/);
    // Their name as the new password is refused too.
    await them.getByLabel("Mật khẩu hiện tại").fill(oneTime);
    await them.getByLabel("Mật khẩu mới (ít nhất 10 ký tự)").fill(`${username}.2026`);
    await them.getByLabel("Nhập lại mật khẩu mới").fill(`${username}.2026`);
    await them.getByRole("button", { name: "Đổi mật khẩu" }).click();
    assert.match((await them.getByRole("alert").allInnerTexts()).join("\n"), /dễ đoán vì có chứa tên tài khoản/);
    await user.close();

    // An agency is renamed.
    await page.goto(`${env.kho.base}/admin/agencies`);
    await page.getByRole("link", { name: /^Sửa Sở Khoa học và Công nghệ/ }).click();
    await page.getByLabel("Tên cơ quan").fill(wide ? "Sở Khoa học và Công nghệ tỉnh" : "Sở Khoa học và Công nghệ");
    await page.getByRole("button", { name: "Lưu" }).click();
    await page.getByRole("status").filter({ hasText: "Đã cập nhật" }).waitFor();

    // The audit log, filtered to this person's account today: by name, in words.
    await page.goto(`${env.kho.base}/admin/audit`);
    await page.getByLabel("Đối tượng").selectOption({ label: "Người dùng" });
    await page.getByLabel("Hành động").selectOption({ label: "Sửa người dùng" });
    const today = new Date().toISOString().slice(0, 10);
    await page.getByLabel("Từ ngày").fill(today);
    await page.getByLabel("Đến ngày").fill(today);
    await page.getByRole("button", { name: "Lọc" }).click();
    const rows = page.locator("#audit-entries tbody tr");
    await rows.first().waitFor();
    const text = await page.locator("#audit-entries").innerText();
    assert.match(text, new RegExp(`Quản trị hệ thống\\s+Sửa người dùng\\s+Người dùng: ${name}`));
    assert.doesNotMatch(text, /user\.update|user:\d|dataset\.|auth\./);
    // By person: only what the administrator did.
    await page.goto(`${env.kho.base}/admin/audit`);
    await page.getByLabel("Chủ thể").selectOption({ label: name });
    await page.getByRole("button", { name: "Lọc" }).click();
    const theirs = await page.locator("main").innerText();
    assert.match(theirs, /Đăng nhập|Không có bản ghi nào khớp bộ lọc/);
    assert.doesNotMatch(theirs, /Quản trị hệ thống\s+Sửa người dùng/);
    // A day that is not a date is said so, in Vietnamese.
    await page.goto(`${env.kho.base}/admin/audit?since=hom-qua`);
    assert.match(await page.getByRole("alert").first().innerText(), /không phải ngày/);
    await shot(page, `admin-audit-${viewport.width}`);
    if (!wide) {
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `the audit page is ${overflow}px wider than the phone`);
    }
    await context.close();
  }
});
