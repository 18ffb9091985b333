// A health department's steward starts a dataset from the quarterly report sheet as the office
// keeps it (made with openpyxl: title rows, a merged two-row header, STT, date cells, a total
// row, signatures): one form creates the dataset, its table with a proposed schema, and checks
// the file; the steward publishes it, then loads next quarter's report by key. A household
// list with citizen IDs cannot start an open dataset, and the refusal names the column.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { useKho, shot, signIn } from "./kho.mjs";

const env = useKho();
const XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const sheet = (name) => ({ name, mimeType: XLSX, buffer: readFileSync(new URL(`../sheets/${name}`, import.meta.url)) });

test("a steward starts a dataset from an office report sheet, publishes it, then upserts the next quarter's", async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await signIn(page, env.kho.base, "yte.canbo", "demo-yte-canbo");
  await page.goto(`${env.kho.base}/datasets`);
  await page.getByRole("link", { name: "Tạo từ một tệp Excel/CSV" }).click();
  await page.getByLabel("Tên bộ dữ liệu *").fill("Cơ sở khám chữa bệnh theo quý");
  await page.getByLabel("Mức truy cập *").selectOption("shared");
  await page.getByLabel("Tần suất cập nhật *").selectOption("quarterly");
  await page.getByLabel("Tên bảng").fill("Cơ sở khám chữa bệnh");
  await page.getByLabel("Tệp dữ liệu *").setInputFiles(sheet("co-so-y-te-ngay.xlsx"));
  await shot(page, "from-file-form");
  await page.getByRole("button", { name: "Đọc tệp và đề xuất cấu trúc" }).click();

  // The upload page: every row valid, what was left out of the sheet said in words.
  await page.waitForURL(/\/uploads\//);
  await page.getByRole("heading", { name: "Cách đọc tệp" }).waitFor();
  const report = await page.locator("main").innerText();
  assert.match(report, /Tất cả các dòng đều hợp lệ/);
  assert.match(report, /Tổng cộng|tổng/i);
  await shot(page, "from-file-upload");
  await page.getByRole("button", { name: "Xuất bản phiên bản mới" }).click();
  await page.waitForURL(`${env.kho.base}/datasets/co-so-kham-chua-benh-theo-quy`);

  // The proposed schema: ASCII snake_case names, the headers as titles, terms from the
  // content, the facility code as key, dates as dates.
  const d = await (await page.request.get(`${env.kho.base}/api/v1/datasets/co-so-kham-chua-benh-theo-quy`)).json();
  const table = d.resources[0];
  assert.equal(table.name, "co-so-kham-chua-benh");
  const fields = Object.fromEntries(table.schema.fields.map((f) => [f.name, f]));
  assert.deepEqual(Object.keys(fields), ["ma_co_so", "ten_co_so", "ma_xa", "so_giuong_benh", "dien_thoai", "ngay_hoat_dong"]);
  assert.equal(fields.so_giuong_benh.title, "Số giường bệnh");
  assert.equal(fields.so_giuong_benh.type, "integer");
  assert.equal(fields.ngay_hoat_dong.type, "date");
  assert.equal(fields.ma_xa.dictionaryTerm, "commune_code");
  assert.equal(fields.dien_thoai.dictionaryTerm, "phone");
  assert.equal(table.schema.primaryKey, "ma_co_so");
  const rows = async () =>
    (await (await page.request.get(`${env.kho.base}/api/v1/datasets/co-so-kham-chua-benh-theo-quy/resources/co-so-kham-chua-benh/rows?limit=20`)).json()).records;
  const first = await rows();
  assert.equal(first.length, 5);
  assert.equal(first.find((r) => r.ma_co_so === "BV01").ngay_hoat_dong, "1965-05-19");
  assert.equal(first.find((r) => r.ma_co_so === "TTYT03").so_giuong_benh, 1200);
  // The page shows the table by its labels, no longer a draft.
  assert.doesNotMatch(await page.locator("#freshness").innerText(), /Bản nháp/);

  // Next quarter's report, loaded by key: one station changed, one new; nothing removed.
  await page.goto(`${env.kho.base}/datasets/co-so-kham-chua-benh-theo-quy/resources/co-so-kham-chua-benh/upload`);
  await page.locator('input[type="file"]').setInputFiles(sheet("co-so-y-te-ngay-quy-4.xlsx"));
  await page.getByRole("button", { name: "Kiểm tra tệp" }).click();
  const modes = await page.locator("fieldset.modes").innerText();
  assert.match(modes, /Cập nhật theo mã[\s\S]*\+1 dòng thêm · ~1 dòng sửa · −0 dòng xóa · bảng sau khi xuất bản: 6/);
  await page.getByRole("button", { name: "Xuất bản phiên bản mới" }).click();
  await page.waitForURL(`${env.kho.base}/datasets/co-so-kham-chua-benh-theo-quy`);
  const versions = await page.locator(".versions table").innerText();
  assert.match(versions, /^2\s.*\s6\s+\+1 −0 ~1/m);
  const after = await rows();
  assert.equal(after.length, 6);
  assert.equal(after.find((r) => r.ma_co_so === "TYT04").so_giuong_benh, 8);
  assert.equal(after.find((r) => r.ma_co_so === "TYT06").ten_co_so, "Trạm y tế xã Chiềng Ngần");
  await page.locator("article.resource details.fields summary").click();
  await shot(page, "from-file-dataset");
  await context.close();
});

test("a household list with citizen IDs cannot start an open dataset; the refusal names the column", async () => {
  const context = await env.browser.newContext({ viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  await signIn(page, env.kho.base, "noivu.canbo", "demo-noivu-canbo");
  await page.goto(`${env.kho.base}/datasets/new/from-file`);
  await page.getByLabel("Tên bộ dữ liệu *").fill("Danh sách chủ hộ Chiềng Sinh");
  await page.getByLabel("Mức truy cập *").selectOption("open");
  await page.getByLabel("Tần suất cập nhật *").selectOption("annual");
  await page.getByLabel("Tệp dữ liệu *").setInputFiles(sheet("chu-ho.xlsx"));
  await page.getByRole("button", { name: "Đọc tệp và đề xuất cấu trúc" }).click();
  const alert = await page.getByRole("alert").first().innerText();
  assert.match(alert, /Bộ dữ liệu mở không được chứa dữ liệu cá nhân/);
  assert.match(alert, /Số CCCD/);
  assert.doesNotMatch(alert, /personal_data|access_level|so_cccd|resources\[/);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page is ${overflow}px wider than the phone`);
  await shot(page, "from-file-personal-refused-phone");
  // Nothing was created; shared within the government, the same file starts the dataset.
  assert.equal((await page.request.get(`${env.kho.base}/api/v1/datasets/danh-sach-chu-ho-chieng-sinh`)).status(), 404);
  await page.getByLabel("Mức truy cập *").selectOption("shared");
  await page.getByLabel("Tệp dữ liệu *").setInputFiles(sheet("chu-ho.xlsx"));
  await page.getByRole("button", { name: "Đọc tệp và đề xuất cấu trúc" }).click();
  await page.waitForURL(/\/uploads\//);
  const d = await (await page.request.get(`${env.kho.base}/api/v1/datasets/danh-sach-chu-ho-chieng-sinh`)).json();
  const cccd = d.resources[0].schema.fields.find((f) => f.title === "Số CCCD");
  assert.equal(cccd.dictionaryTerm, "cccd");
  await context.close();
});
