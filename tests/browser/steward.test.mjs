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
  const schema = page.locator("article.resource table");
  assert.match(await schema.innerText(), /ma_xa[\s\S]*commune_code@1[\s\S]*so_giuong[\s\S]*integer/);

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
