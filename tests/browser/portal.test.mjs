// The open data portal as an anonymous visitor sees it: search without diacritics, the dataset
// page, the preview table (sort, filter), a chart, a map, and a CSV download that matches the API;
// restricted data appears nowhere.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { startKho, launchBrowser } from "./kho.mjs";

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

const TITLE = "Dân số và diện tích các tỉnh, thành phố năm 2025";
const ROWS = "/api/v1/datasets/dan-so-dien-tich-tinh/resources/tinh-thanh/rows";

// Minimal CSV reading for kho's own output (quoted cells may hold commas).
function parseCsv(text) {
  const rows = [];
  for (const line of text.replace(/^\uFEFF/, "").trim().split(/\r?\n/)) {
    const cells = [];
    let cur = "", quoted = false;
    for (let i = 0; i < line.length; i++) {
      const c = line[i];
      if (quoted) {
        if (c === '"' && line[i + 1] === '"') { cur += '"'; i++; } else if (c === '"') quoted = false; else cur += c;
      } else if (c === '"') quoted = true;
      else if (c === ",") { cells.push(cur); cur = ""; } else cur += c;
    }
    cells.push(cur);
    rows.push(cells);
  }
  return rows;
}

test("an anonymous visitor finds, previews, filters, charts, maps and downloads population data", async () => {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });

  await page.goto(`${kho.base}/`);
  assert.equal(await page.locator("html").getAttribute("lang"), "vi");
  await page.getByRole("searchbox", { name: "Tìm" }).fill("dan so");
  await page.getByRole("button", { name: "Tìm" }).click();
  await page.waitForURL(/\/datasets\?q=dan\+so/);
  await page.getByRole("link", { name: TITLE }).click();
  await page.getByRole("heading", { name: TITLE }).waitFor();
  assert.match(await page.locator("#freshness").innerText(), /Cập nhật đúng hạn|Quá hạn cập nhật/);

  // The preview: every province, in pages of 20.
  const everything = await (await page.request.get(`${kho.base}${ROWS}?limit=0`)).json();
  assert.equal(everything.total, 34);
  const explorer = page.locator("section.explorer").first();
  await explorer.getByRole("status").filter({ hasText: "/ 34" }).waitFor();
  assert.equal(await explorer.locator("tbody tr").count(), 20);

  // Sort by population, largest first (a second click reverses).
  const header = explorer.getByRole("button", { name: "Sắp xếp theo dan_so", exact: true });
  await header.click();
  await explorer.locator('th[data-field="dan_so"][aria-sort="ascending"]').waitFor();
  await header.click();
  await explorer.locator('th[data-field="dan_so"][aria-sort="descending"]').waitFor();
  const api = await (await page.request.get(`${kho.base}${ROWS}?sort=-dan_so&limit=1`)).json();
  const firstCell = await explorer.locator("tbody tr").first().locator("td").nth(2).innerText();
  assert.equal(firstCell.replace(/\D/g, ""), String(api.records[0].dan_so));

  // Filter: provinces of more than two million people; the count matches the API's.
  await explorer.getByLabel("Trường").selectOption("dan_so");
  await explorer.getByLabel("Phép so sánh").selectOption("gt");
  await explorer.getByLabel("Giá trị").fill("2000000");
  await explorer.getByRole("button", { name: "Lọc" }).click();
  const filtered = await (await page.request.get(`${kho.base}${ROWS}?filter=dan_so:gt:2000000&limit=0`)).json();
  assert.ok(filtered.total > 0 && filtered.total < 34, `${filtered.total} provinces`);
  await explorer.getByRole("status").filter({ hasText: `/ ${filtered.total}` }).waitFor();
  assert.equal(await explorer.locator("tbody tr").count(), Math.min(20, filtered.total));
  await explorer.getByRole("listitem").filter({ hasText: "dan_so > 2000000" }).waitFor();

  // A bar chart of population by province name, one bar per filtered province.
  await explorer.getByLabel("Trục ngang").selectOption("ten_tinh");
  await explorer.getByLabel("Trục đứng (số)").selectOption("dan_so");
  await explorer.getByRole("button", { name: "Vẽ biểu đồ" }).click();
  await explorer.locator("svg.chart-svg rect.bar").first().waitFor();
  assert.equal(await explorer.locator("svg.chart-svg rect.bar").count(), filtered.total);

  // A choropleth of the 34 provinces; the filtered ones are coloured.
  await explorer.getByLabel("Tô màu theo").selectOption("dan_so");
  await explorer.getByRole("button", { name: "Vẽ bản đồ" }).click();
  await explorer.locator("svg.map-svg path.area").first().waitFor();
  assert.equal(await explorer.locator("svg.map-svg path.area").count(), 34);
  const coloured = await explorer.locator("svg.map-svg path.area:not([fill='#eeeeee'])").count();
  assert.equal(coloured, filtered.total);
  assert.match(await explorer.locator("figure.map figcaption").innerText(), new RegExp(`${filtered.total}/34`));

  // Download the CSV: the same 34 provinces, the same numbers as the API.
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    explorer.getByRole("link", { name: "Tải CSV" }).click(),
  ]);
  const csv = parseCsv(readFileSync(await download.path(), "utf8"));
  const all = await (await page.request.get(`${kho.base}${ROWS}?limit=1000&sort=ma_tinh`)).json();
  assert.deepEqual(csv[0], all.fields.map((f) => f.name));
  const body = csv.slice(1).sort((a, b) => a[0].localeCompare(b[0]));
  assert.equal(body.length, all.total);
  body.forEach((row, i) => {
    assert.equal(row[0], all.records[i].ma_tinh);
    assert.equal(Number(row[2]), all.records[i].dan_so);
  });

  // The view and the download were counted.
  await page.reload();
  assert.match(await page.getByText(/lượt xem/).first().innerText(), /[1-9]\d* lượt xem · [1-9]\d* lượt tải/);
  assert.deepEqual(errors, []);
  await context.close();
});

test("the search page filters by facet, sorts, and speaks English on request", async () => {
  const page = await browser.newPage();
  await page.goto(`${kho.base}/datasets?q=HA+NOI`);
  await page.getByRole("link", { name: "Nồng độ bụi mịn PM2.5 theo giờ tại Hà Nội" }).waitFor();
  await page.goto(`${kho.base}/datasets`);
  const before = Number((await page.locator("#result-count").innerText()).split(" ")[0]);
  await page.locator('[data-facet="sector"]').getByRole("link", { name: "Dân số" }).click();
  const after = Number((await page.locator("#result-count").innerText()).split(" ")[0]);
  assert.ok(after > 0 && after < before, `${after} of ${before}`);
  assert.equal(await page.locator('[data-facet="sector"] a[aria-current="true"]').count(), 1);
  await page.getByLabel("Sắp xếp").selectOption("name");
  await page.waitForURL(/sort=name/);
  assert.match(page.url(), /sector=dan-so/);
  await page.getByRole("link", { name: "English" }).click();
  await page.getByRole("heading", { name: "Datasets" }).waitFor();
  await page.getByRole("link", { name: "Population and area of provinces, 2025" }).waitFor();
  await page.close();
});

test("restricted data appears nowhere an anonymous visitor can look", async () => {
  const page = await browser.newPage();
  const hidden = "Hộ kinh doanh cá thể đăng ký trên địa bàn tỉnh";
  for (const path of ["/", "/datasets", "/datasets?q=ho+kinh+doanh", "/datasets?sort=downloads"]) {
    await page.goto(`${kho.base}${path}`);
    assert.equal(await page.getByText(hidden).count(), 0, path);
  }
  assert.match(await page.locator("#result-count").innerText(), /^7 /);
  const resp = await page.goto(`${kho.base}/datasets/ho-kinh-doanh-ca-the`);
  assert.equal(resp.status(), 404);
  const ttl = await (await page.request.get(`${kho.base}/catalog.ttl`)).text();
  assert.ok(!ttl.includes("ho-kinh-doanh"));
  await page.close();
});

test("portal pages pass a basic accessibility check", async () => {
  const page = await browser.newPage();
  for (const path of ["/", "/datasets?q=dan+so", "/datasets/dan-so-dien-tich-tinh", "/requests", "/requests/new"]) {
    await page.goto(`${kho.base}${path}`);
    await page.waitForLoadState("networkidle");
    // Every visible form control has an accessible name (a label or aria-label).
    const unnamed = await page.evaluate(() =>
      [...document.querySelectorAll("input:not([type=hidden]), select, textarea, button")]
        .filter((e) => e.offsetParent !== null)
        .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute("aria-label") && !e.textContent.trim())
        .map((e) => e.outerHTML.slice(0, 80)));
    assert.deepEqual(unnamed, [], path);
    // One h1, a main landmark, the page's language.
    assert.equal(await page.locator("h1").count(), 1, path);
    assert.equal(await page.locator("main").count(), 1, path);
    // The skip link is the first stop of the keyboard and leads to the content.
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute("href")), "#main", path);
  }
  // Text contrast: body text and links against white reach WCAG AA (4.5:1).
  const ratios = await page.evaluate(() => {
    const lum = (rgb) => {
      const [r, g, b] = rgb.match(/\d+/g).slice(0, 3).map((v) => {
        const c = Number(v) / 255;
        return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const ratio = (fg) => (1.05) / (lum(fg) + 0.05);
    return [...document.querySelectorAll("main :is(p, a, td, th, li, dt, dd, h1, h2, h3)")]
      .filter((e) => e.offsetParent !== null && e.textContent.trim())
      .map((e) => ({ tag: e.tagName, text: e.textContent.trim().slice(0, 30), ratio: ratio(getComputedStyle(e).color) }))
      .filter((x) => x.ratio < 4.5);
  });
  assert.deepEqual(ratios, []);
  await page.close();
});
