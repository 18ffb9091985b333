// A steward loads a report sheet as the office wrote it — titles, a two-row header, a running
// number, a total, signatures, typed with a TCVN3 font — through the pages, on a desk and on
// a phone, and is told in Vietnamese what kho left out.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { useKho, shot, signIn } from "./kho.mjs";

const env = useKho();

test("a steward loads an office report sheet as it is, and sees what was left out", async () => {
  const sheet = readFileSync(new URL("../sheets/co-so-y-te-tcvn3.xlsx", import.meta.url));
  for (const viewport of [{ width: 1280, height: 800 }, { width: 390, height: 844 }]) {
    const context = await env.browser.newContext({ viewport });
    const page = await context.newPage();
    await signIn(page, env.kho.base, "yte.canbo", "demo-yte-canbo");
    await page.goto(`${env.kho.base}/datasets/co-so-y-te/resources/co-so/upload`);
    await page.locator('input[type="file"]').setInputFiles({
      name: "bao-cao-co-so.xlsx",
      mimeType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
      buffer: sheet,
    });
    await page.getByRole("button", { name: "Kiểm tra tệp" }).click();
    await page.getByRole("heading", { name: "Cách đọc tệp" }).waitFor();
    const main = await page.locator("main").innerText();
    assert.match(main, /Tất cả các dòng đều hợp lệ/);
    for (const said of [
      /bảng mã cũ TCVN3 \(ABC\); đã chuyển sang Unicode/,
      /Bỏ qua dòng 1–6 phía trên dòng tên cột/,
      /Tên cột lấy từ dòng 7–8/,
      /Bỏ cột A 'STT'/,
      /Bỏ dòng 9: dòng đánh số cột/,
      /Bỏ dòng 15: dòng tổng \('Tổng cộng'\)/,
      /Bỏ dòng 17–23 ở cuối trang tính: phần ngày tháng, ký tên/,
      /Cột 'Thông tin cơ sở - Mã cơ sở' được hiểu là trường 'Mã cơ sở'/,
    ]) {
      assert.match(main, said);
    }
    // Nothing in English or in kho's own codes on the Vietnamese page.
    assert.doesNotMatch(main, /legacy_encoding|title_rows|column_matched|were left out|ma_co_so|user:\d/);
    // Who uploaded it, by name.
    assert.match(main, /Trần Thị Bình/);
    if (viewport.width < 400) {
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `the page is ${overflow}px wider than the phone`);
    }
    await shot(page, viewport.width < 400 ? "upload-office-sheet-phone" : "upload-office-sheet");
    if (viewport.width > 400) {
      await page.getByRole("button", { name: "Xuất bản phiên bản mới" }).click();
      await page.waitForURL(`${env.kho.base}/datasets/co-so-y-te`);
      const names = async () =>
        (await (await page.request.get(`${env.kho.base}/api/v1/datasets/co-so-y-te/resources/co-so/rows?limit=10`)).json()).records
          .map((r) => r.ten_co_so)
          .sort();
      assert.deepEqual(
        await names(),
        ["Bệnh viện Đa khoa tỉnh Sơn La", "Bệnh viện Y dược cổ truyền", "Trung tâm Y tế Mộc Châu", "Trạm y tế phường Chiềng Cơi", "Trạm y tế phường Chiềng Sinh"].sort(),
      );

      // A file of corrections: one bed count changed, one new station. The page says what each
      // way of publishing would do; replacing the table, which would remove four rows, needs
      // the steward's word; updating by key, the default, keeps the others.
      await page.goto(`${env.kho.base}/datasets/co-so-y-te/resources/co-so/upload`);
      const fix = "Mã cơ sở,Tên cơ sở,Mã xã,Số giường bệnh,Điện thoại\nBV01,Bệnh viện Đa khoa tỉnh Sơn La,03646,850,0212 3852 345\nTYT06,Trạm y tế phường Tô Hiệu,03646,4,0912000111\n";
      await page.locator('input[type="file"]').setInputFiles({ name: "sua.csv", mimeType: "text/csv", buffer: Buffer.from(fix) });
      await page.getByRole("button", { name: "Kiểm tra tệp" }).click();
      const modes = await page.locator("fieldset.modes").innerText();
      assert.match(modes, /Cập nhật theo mã[\s\S]*\+1 dòng thêm · ~1 dòng sửa · −0 dòng xóa · bảng sau khi xuất bản: 6/);
      assert.match(modes, /Thay thế toàn bộ bảng[\s\S]*−4 dòng xóa/);
      assert.match(modes, /Ví dụ dòng thêm: TYT06/);
      assert.match(modes, /1 dòng có mã đã có trong bảng/);
      await shot(page, "upload-publish-modes");
      await page.getByLabel(/Thay thế toàn bộ bảng/).check();
      await page.getByRole("button", { name: "Xuất bản phiên bản mới" }).click();
      // Not without ticking the box: the page says so, in words, and nothing was published.
      assert.match(await page.getByRole("alert").first().innerText(), /Hãy đánh dấu ô đồng ý xóa/);
      await shot(page, "upload-publish-needs-confirmation");
      assert.equal((await names()).length, 5);
      await page.getByLabel(/Cập nhật theo mã/).check();
      await page.getByRole("button", { name: "Xuất bản phiên bản mới" }).click();
      await page.waitForURL(`${env.kho.base}/datasets/co-so-y-te`);
      assert.equal((await names()).length, 6);
      // The versions say who published them by name; a visitor sees when and what, not who.
      const dataset = await page.locator("main").innerText();
      assert.match(dataset, /Trần Thị Bình/);
      assert.doesNotMatch(dataset, /user:\d/);
      const visitor = await (await env.browser.newContext()).newPage();
      await visitor.goto(`${env.kho.base}/datasets/dan-so-dien-tich-xa`);
      const seen = await visitor.locator("main").innerText();
      assert.match(seen, /Phiên bản|phiên bản/);
      assert.doesNotMatch(seen, /user:\d|token:\d|\bsystem\b/);
      await visitor.context().close();
    }
    await context.close();
  }
});

test("a steward proposes a table's schema from an office sheet: snake_case names, the headers as titles, terms and a key", async () => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  await signIn(page, env.kho.base, "yte.canbo", "demo-yte-canbo");
  await page.goto(`${env.kho.base}/datasets/co-so-y-te/resources/new`);
  await page.locator("#infer_file").setInputFiles({
    name: "bao-cao-co-so.xlsx",
    mimeType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    buffer: readFileSync(new URL("../sheets/co-so-y-te.xlsx", import.meta.url)),
  });
  await page.locator("form[action$='/infer'] button[type=submit]").click();
  await page.locator("#schema-fields").waitFor();
  const values = await page.locator("#schema-fields tbody tr").evaluateAll((rows) =>
    rows.map((r) => [...r.querySelectorAll("input, select")].map((x) => x.value)).filter((v) => v[0]),
  );
  const byName = Object.fromEntries(values.map((v) => [v[0], v]));
  // Names from the headers, in ASCII snake_case, the headers kept as titles; the STT column and
  // the report's titles, totals and signatures left out.
  assert.deepEqual(Object.keys(byName), ["ma_co_so", "ten_co_so", "ma_xa", "so_giuong_benh", "dien_thoai"]);
  assert.equal(byName.so_giuong_benh[1], "Số giường bệnh");
  // "1.200" typed as text beside 800 and 150: whole numbers.
  assert.equal(byName.so_giuong_benh[2], "integer");
  assert.equal(byName.ma_co_so[1], "Thông tin cơ sở - Mã cơ sở");
  // Terms recognised by the content are filled in.
  assert.equal(byName.ma_xa[3], "commune_code");
  assert.equal(byName.dien_thoai[3], "phone");
  // The key proposed: the facility code, complete and unique (not the running number).
  await shot(page, "resource-from-office-sheet");
  // Saved, the table has the key proposed (the facility code, complete and unique; not the
  // running number) and the titles.
  await page.getByLabel("Tên bảng").fill("Báo cáo cơ sở quý 3");
  await page.getByRole("button", { name: "Lưu" }).click();
  await page.waitForURL(`${env.kho.base}/datasets/co-so-y-te`);
  const d = await (await page.request.get(`${env.kho.base}/api/v1/datasets/co-so-y-te`)).json();
  const table = d.resources.find((r) => r.title === "Báo cáo cơ sở quý 3");
  assert.equal(table.schema.primaryKey, "ma_co_so");
  assert.equal(table.schema.fields.find((f) => f.name === "so_giuong_benh").title, "Số giường bệnh");
  await context.close();
});

