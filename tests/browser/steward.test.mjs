// A steward creates a dataset whose schema references a dictionary term, sees it listed;
// another agency's steward is refused editing it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startKho, launchBrowser, signIn } from "./kho.mjs";

let kho;
let browser;

before(async () => {
  kho = await startKho();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await kho?.stop();
});

test("a steward creates a dataset with a schema that uses the dictionary", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, kho.base, "yte.canbo", "demo-yte-canbo");

  await page.goto(`${kho.base}/datasets/new`);
  assert.equal(await page.locator("html").getAttribute("lang"), "vi");
  await page.getByLabel("Tên bộ dữ liệu *").fill("Trạm y tế cấp xã");
  // The slug is suggested from the Vietnamese title, without diacritics.
  assert.equal(await page.getByLabel("Mã định danh (slug)").inputValue(), "tram-y-te-cap-xa");
  await page.getByLabel("Mức truy cập *").selectOption("shared");
  await page.getByLabel("Tần suất cập nhật *").selectOption("quarterly");
  await page.getByLabel("Tên bảng").fill("Danh sách trạm y tế");

  await page.getByLabel("Tên trường 1", { exact: true }).fill("ma_xa");
  await page.getByLabel("Nhãn 1", { exact: true }).fill("Mã xã");
  await page.getByLabel("Thuật ngữ từ điển 1", { exact: true }).selectOption("commune_code");
  await page.getByLabel("Bắt buộc 1", { exact: true }).selectOption("yes");
  await page.getByLabel("Tên trường 2", { exact: true }).fill("so_giuong");
  await page.getByLabel("Kiểu 2", { exact: true }).selectOption("integer");

  // "Thêm trường" adds an empty row.
  const rowsBefore = await page.locator("#schema-fields tbody tr").count();
  await page.getByRole("button", { name: "Thêm trường" }).click();
  assert.equal(await page.locator("#schema-fields tbody tr").count(), rowsBefore + 1);

  await page.getByRole("button", { name: "Tạo bộ dữ liệu" }).click();
  await page.waitForURL(`${kho.base}/datasets/tram-y-te-cap-xa`);
  if (process.env.SCREENSHOT_DIR) await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/dataset.png`, fullPage: true });
  await page.getByRole("heading", { name: "Trạm y tế cấp xã" }).waitFor();
  // The table's fields, folded under one line, read by their labels, type and term in words.
  await page.locator("article.resource details.fields summary").click();
  const schema = page.locator("article.resource details.fields table");
  const fields = await schema.innerText();
  assert.match(fields, /Mã xã[\s\S]*ma_xa[\s\S]*Mã đơn vị hành chính cấp xã[\s\S]*so_giuong[\s\S]*Số nguyên/);
  assert.doesNotMatch(fields, /commune_code|integer/);

  await page.goto(`${kho.base}/datasets`);
  await page.getByRole("link", { name: "Trạm y tế cấp xã" }).waitFor();
  // Search works without diacritics.
  await page.getByLabel("Tìm").fill("tram y te");
  await page.getByRole("button", { name: "Tìm" }).click();
  await page.getByRole("link", { name: "Trạm y tế cấp xã" }).waitFor();
  await context.close();
});

test("another agency's steward cannot edit it", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, kho.base, "taichinh.canbo", "demo-taichinh-canbo");
  await page.goto(`${kho.base}/datasets/tram-y-te-cap-xa`);
  await page.getByRole("heading", { name: "Trạm y tế cấp xã" }).waitFor();
  assert.equal(await page.getByRole("link", { name: "Sửa thông tin" }).count(), 0, "no edit button");
  const resp = await page.goto(`${kho.base}/datasets/tram-y-te-cap-xa/edit`);
  assert.equal(resp.status(), 403);
  await page.getByText("Bạn không có quyền thực hiện thao tác này").waitFor();
  if (process.env.SCREENSHOT_DIR) await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/forbidden.png` });
  await context.close();
});

test("the interface switches to English and back", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${kho.base}/dictionary`);
  await page.getByRole("heading", { name: "Từ điển dữ liệu dùng chung" }).waitFor();
  await page.getByRole("link", { name: "English" }).click();
  await page.getByRole("heading", { name: "Shared data dictionary" }).waitFor();
  await page.goto(`${kho.base}/`);
  assert.equal(await page.locator("html").getAttribute("lang"), "en");
  await context.close();
});

test("a steward uploads an XLSX with errors, fixes the quarantined rows and publishes version 2", async () => {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  await signIn(page, kho.base, "yte.canbo", "demo-yte-canbo");
  await page.goto(`${kho.base}/datasets/co-so-y-te`);
  await page.getByRole("link", { name: "Tải dữ liệu lên" }).click();
  // The workbook has a notes sheet first and a merged title above the header (see fixtures/).
  await page.getByLabel(/^Trang tính/).fill("Dữ liệu");
  await page.getByLabel("Dòng tiêu đề").fill("2");
  await page.setInputFiles("#file", new URL("./fixtures/co-so-y-te-loi.xlsx", import.meta.url).pathname);
  await page.getByRole("button", { name: "Kiểm tra tệp" }).click();
  await page.getByRole("heading", { name: /Kết quả kiểm tra/ }).waitFor();
  const report = await page.locator("main").innerText();
  assert.match(report, /mã xã '00001' đã bị bãi bỏ từ 01\/7\/2025; mã mới: 00097/);
  assert.match(report, /'mười' không phải số nguyên/);
  // Problems are reported at the sheet's own row number (title row 1, header row 2, TYT02 on row 4).
  const rows = await page.locator("table tbody tr").allInnerTexts();
  assert.ok(rows.some((r) => /^4\s/.test(r) && r.includes("ma_xa")), rows.join("\n"));
  // The report downloads as XLSX too.
  const [xlsx] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "XLSX" }).click()]);
  assert.equal(xlsx.suggestedFilename(), "bao-cao-kiem-tra.xlsx");

  // Download the rows with errors, fix them, upload them again on their own.
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "Tải các dòng lỗi để sửa (CSV)" }).click(),
  ]);
  const { readFile } = await import("node:fs/promises");
  const quarantine = await readFile(await download.path(), "utf8");
  const header = "ma_co_so,ten_co_so,ma_xa,so_giuong,dien_thoai\n";
  assert.match(quarantine, /^ma_co_so,ten_co_so,ma_xa,so_giuong,dien_thoai,loi\n/);
  const fixed = header + quarantine.split("\n").slice(1).filter(Boolean)
    .map((l) => l.split(",").slice(0, 5).join(","))
    .map((l) => l.replace("00001", "00097").replace("mười", "10"))
    .join("\n") + "\n";
  assert.match(fixed, /^TYT02,Trạm y tế,00097,10,0912345678$/m);

  // First publish the valid rows of the workbook: version 1.
  await page.getByRole("button", { name: "Chỉ xuất bản các dòng hợp lệ" }).click();
  await page.waitForURL(`${kho.base}/datasets/co-so-y-te`);
  await page.getByRole("link", { name: "Tải dữ liệu lên" }).click();
  await page.setInputFiles("#file", { name: "co-so-da-sua.csv", mimeType: "text/csv", buffer: Buffer.from(header + "BV01,Bệnh viện Đa khoa tỉnh,03979,500,02123852345\n" + fixed.slice(header.length)) });
  await page.getByRole("button", { name: "Kiểm tra tệp" }).click();
  await page.getByText("Tất cả các dòng đều hợp lệ.").waitFor();
  await page.getByRole("button", { name: "Xuất bản phiên bản mới" }).click();
  await page.waitForURL(`${kho.base}/datasets/co-so-y-te`);
  const versions = await page.locator(".versions table").innerText();
  assert.match(versions, /^2\b[\s\S]*\+1 −0 ~0/m, versions);
  // The quality scores of the new version: every cell valid and present.
  const scores = await page.locator(".scores").innerText();
  assert.match(scores, /100\s*Đúng/, scores);
  assert.match(scores, /100\s*Đủ/, scores);
  assert.match(scores, /Sống/, scores);
  if (process.env.SCREENSHOT_DIR) await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/versions.png`, fullPage: true });
  await context.close();
});
