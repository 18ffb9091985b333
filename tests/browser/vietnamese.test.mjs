// Vietnamese everywhere a person reads: every page a visitor or a steward reaches in the
// common flows — the portal, a dataset with its explorer, chart and a refused filter, the
// dictionary, a file checked with its problems, the forms — shows no English word and no
// internal code (see words.mjs), on a phone.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useKho, signIn } from "./kho.mjs";
import { englishOn } from "./words.mjs";

const env = useKho();

async function check(page, where, found) {
  const words = await englishOn(page);
  if (words.length) found.push(`${where}: ${words.join(", ")}`);
}

test("a visitor meets no English word and no internal code", async () => {
  const context = await env.browser.newContext({ viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  const found = [];
  for (const path of ["/", "/datasets", "/datasets?q=dan+so", "/open-data", "/datasets/dan-so-dien-tich-xa",
    "/datasets/bui-min-pm25-ha-noi", "/datasets/chi-so-nang-luc-canh-tranh-pci", "/datasets/du-toan-ngan-sach-cac-tinh",
    "/dictionary", "/dictionary/cccd", "/agencies", "/agencies/so-y-te", "/requests", "/requests/new", "/admin-units", "/sign-in"]) {
    await page.goto(`${env.kho.base}${path}`);
    await check(page, path, found);
  }
  // The explorer as used: filters open, a refused value, a chart.
  await page.goto(`${env.kho.base}/datasets/dan-so-dien-tich-tinh`);
  const explorer = page.locator("section.explorer").first();
  await explorer.getByRole("status").filter({ hasText: "/ 34" }).waitFor();
  await explorer.getByText("Lọc và tìm").click();
  await explorer.getByLabel("Trường").selectOption({ label: "Diện tích (km²)" });
  await explorer.getByLabel("Giá trị").fill("rộng");
  await explorer.getByRole("button", { name: "Lọc" }).click();
  await explorer.getByRole("alert").waitFor();
  await explorer.getByRole("button", { name: "Vẽ biểu đồ" }).click();
  await explorer.locator("svg.chart-svg").waitFor();
  await check(page, "the explorer", found);
  assert.deepEqual(found, []);
  await context.close();
});

test("a steward meets no English word and no internal code", async () => {
  const context = await env.browser.newContext({ viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  await signIn(page, env.kho.base, "yte.canbo", "demo-yte-canbo");
  const found = [];
  for (const path of ["/", "/datasets/new", "/datasets/new/from-file", "/datasets/co-so-y-te", "/datasets/co-so-y-te/edit",
    "/datasets/co-so-y-te/resources/new", "/datasets/co-so-y-te/resources/co-so/edit", "/datasets/co-so-y-te/resources/co-so/upload",
    "/account", "/inbox", "/quality"]) {
    await page.goto(`${env.kho.base}${path}`);
    await check(page, path, found);
  }
  // A file with problems: the report names rows, columns and rules in words.
  const csv = "ma_co_so,ten_co_so,ma_xa,so_giuong,dien_thoai\r\nBV01,Bệnh viện A,03646,nhiều,0912 345 678\r\nBV01,Bệnh viện B,99999,-3,12345\r\n";
  await page.goto(`${env.kho.base}/datasets/co-so-y-te/resources/co-so/upload`);
  await page.locator('input[type="file"]').setInputFiles({ name: "loi.csv", mimeType: "text/csv", buffer: Buffer.from(csv) });
  await page.getByRole("button", { name: "Kiểm tra tệp" }).click();
  await page.waitForURL(/\/uploads\//);
  await check(page, "the upload report", found);
  assert.deepEqual(found, []);
  await context.close();
});
