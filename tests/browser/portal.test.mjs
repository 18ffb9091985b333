// The open data portal as an anonymous visitor sees it, on a phone: search without diacritics,
// the dataset page, the preview table (sort, filters typed as the table shows numbers), a chart
// aggregated over all rows, a map, and CSV and Excel downloads that hold exactly the filtered
// rows; restricted data appears nowhere.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, mkdtempSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { execFileSync } from "node:child_process";
import { startKho, launchBrowser, shot } from "./kho.mjs";

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

// Reads a workbook back with openpyxl (the peer spreadsheet library): header and data rows.
function readXlsx(path) {
  const script = "import openpyxl, json, sys\n" +
    "ws = openpyxl.load_workbook(sys.argv[1]).active\n" +
    "print(json.dumps([[c for c in r] for r in ws.iter_rows(values_only=True)], default=str))";
  return JSON.parse(execFileSync("python3", ["-c", script, path], { encoding: "utf8" }));
}

// 8718000 → "8.718.000", as the explorer shows numbers on a Vietnamese page.
const grouped = (n) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ".");

test("a visitor on a phone finds population data, filters it as the table shows numbers, charts all of it and downloads exactly the filtered rows", async () => {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error" && !/status of 400/.test(m.text())) errors.push(m.text()); });

  await page.goto(`${kho.base}/`);
  assert.equal(await page.locator("html").getAttribute("lang"), "vi");
  await page.getByRole("searchbox", { name: "Tìm" }).fill("dan so");
  await page.getByRole("button", { name: "Tìm" }).click();
  await page.waitForURL(/\/datasets\?q=dan\+so/);
  await page.getByRole("link", { name: TITLE }).click();
  await page.getByRole("heading", { name: TITLE }).waitFor();
  assert.equal(await page.title(), `${TITLE} · kho`);
  assert.match(await page.locator("#freshness").innerText(), /Cập nhật đúng hạn|Quá hạn cập nhật/);
  // The downloads come first, within the first screen of the phone.
  const top = (await page.locator("#downloads").getByRole("link", { name: "Tải Excel" }).boundingBox()).y;
  assert.ok(top < 844, `the download button is ${top}px down the page`);

  // The preview: every province, in pages of 20, columns by their labels, numbers grouped.
  const everything = await (await page.request.get(`${kho.base}${ROWS}?limit=0`)).json();
  assert.equal(everything.total, 34);
  const explorer = page.locator("section.explorer").first();
  await explorer.getByRole("status").filter({ hasText: "/ 34" }).waitFor();
  assert.equal(await explorer.locator("tbody tr").count(), 20);
  const header = explorer.getByRole("button", { name: "Sắp xếp theo Dân số (người)", exact: true });
  await header.click();
  await explorer.locator('th[data-field="dan_so"][aria-sort="ascending"]').waitFor();
  await header.click();
  await explorer.locator('th[data-field="dan_so"][aria-sort="descending"]').waitFor();
  const api = await (await page.request.get(`${kho.base}${ROWS}?sort=-dan_so&limit=1`)).json();
  assert.equal(await explorer.locator("tbody tr").first().locator("td").nth(2).innerText(), grouped(api.records[0].dan_so));
  assert.equal(await explorer.locator("tbody tr").first().locator("td").nth(0).innerText(), api.records[0].ma_tinh);

  // The filters are folded away on a phone, one tap opens them.
  assert.equal(await explorer.getByLabel("Giá trị").isVisible(), false);
  await explorer.getByText("Lọc và tìm").click();
  await explorer.getByLabel("Trường").selectOption({ label: "Dân số (người)" });
  await explorer.getByLabel("Phép so sánh").selectOption("gte");
  // A value that is not a number is refused in Vietnamese; nothing else breaks.
  await explorer.getByLabel("Giá trị").fill("2tr");
  await explorer.getByRole("button", { name: "Lọc" }).click();
  const refused = await explorer.getByRole("alert").innerText();
  assert.match(refused, /Không lọc được «Dân số \(người\)»: «2tr» không phải số nguyên; hãy viết như 2\.000\.000/);
  await explorer.getByRole("status").filter({ hasText: "/ 34" }).waitFor();
  assert.equal(await explorer.getByRole("listitem").count(), 0, "the refused filter is not kept");

  // As the table writes it: "2.000.000".
  await explorer.getByLabel("Giá trị").fill("2.000.000");
  await explorer.getByRole("button", { name: "Lọc" }).click();
  const filtered = await (await page.request.get(`${kho.base}${ROWS}?filter=dan_so:gte:2000000&limit=0`)).json();
  assert.ok(filtered.total > 0 && filtered.total < 34, `${filtered.total} provinces`);
  await explorer.getByRole("status").filter({ hasText: `/ ${filtered.total}` }).waitFor();
  assert.equal(await explorer.getByRole("alert").isVisible(), false);
  await explorer.getByRole("listitem").filter({ hasText: "Dân số (người) ≥ 2.000.000" }).waitFor();

  // A chart of population by province, summed by the server over every filtered row.
  await explorer.getByLabel("Nhóm theo").selectOption({ label: "Tên tỉnh" });
  await explorer.getByLabel("Phép tính").selectOption({ label: "Tổng" });
  await explorer.getByLabel("Của cột").selectOption({ label: "Dân số (người)" });
  await explorer.getByRole("button", { name: "Vẽ biểu đồ" }).click();
  await explorer.locator("svg.chart-svg rect.bar").first().waitFor();
  assert.equal(await explorer.locator("svg.chart-svg rect.bar").count(), Math.min(30, filtered.total));
  const caption = await explorer.locator("figure.chart figcaption").innerText();
  assert.match(caption, new RegExp(`tính trên toàn bộ ${filtered.total} dòng khớp bộ lọc`));
  const tallest = await explorer.locator("svg.chart-svg rect.bar title").first().textContent();
  assert.equal(tallest, `${api.records[0].ten_tinh}: ${grouped(api.records[0].dan_so)}`);
  // Counting rows by a column works on any table.
  await explorer.getByLabel("Phép tính").selectOption({ label: "Số dòng" });
  assert.equal(await explorer.getByLabel("Của cột").isDisabled(), true);

  // A choropleth of the 34 provinces; the filtered ones are coloured.
  await explorer.getByLabel("Tô màu theo").selectOption({ label: "Dân số (người)" });
  await explorer.getByRole("button", { name: "Vẽ bản đồ" }).click();
  await explorer.locator("svg.map-svg path.area").first().waitFor();
  assert.equal(await explorer.locator("svg.map-svg path.area").count(), 34);
  const coloured = await explorer.locator("svg.map-svg path.area:not([fill='#eeeeee'])").count();
  assert.equal(coloured, filtered.total);

  // The CSV under the table holds exactly the filtered rows, with a BOM for Excel.
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    explorer.getByRole("link", { name: "Tải CSV" }).click(),
  ]);
  const text = readFileSync(await download.path(), "utf8");
  assert.ok(text.startsWith("\uFEFF"), "a byte order mark for Excel");
  const csv = parseCsv(text);
  const wanted = await (await page.request.get(`${kho.base}${ROWS}?filter=dan_so:gte:2000000&limit=1000&sort=ma_tinh`)).json();
  assert.deepEqual(csv[0], wanted.fields.map((f) => f.name));
  const body = csv.slice(1).sort((a, b) => a[0].localeCompare(b[0]));
  assert.equal(body.length, filtered.total);
  body.forEach((row, i) => {
    assert.equal(row[0], wanted.records[i].ma_tinh);
    assert.equal(Number(row[2]), wanted.records[i].dan_so);
  });
  // So does the Excel workbook, headed by the columns' labels.
  const [workbook] = await Promise.all([
    page.waitForEvent("download"),
    explorer.getByRole("link", { name: "Tải Excel" }).click(),
  ]);
  assert.match(workbook.suggestedFilename(), /^tinh-thanh-v1-loc\.xlsx$/);
  const saved = join(mkdtempSync(join(tmpdir(), "kho-xlsx-")), workbook.suggestedFilename());
  await workbook.saveAs(saved);
  const sheet = readXlsx(saved);
  assert.deepEqual(sheet[0], ["Mã tỉnh", "Tên tỉnh", "Dân số (người)", "Diện tích (km²)"]);
  assert.equal(sheet.length - 1, filtered.total);
  assert.ok(sheet.slice(1).every((r) => r[2] >= 2000000));
  assert.deepEqual(sheet.slice(1).map((r) => r[0]).sort(), wanted.records.map((r) => r.ma_tinh));

  // Nothing is wider than the phone; the view and the downloads were counted.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page is ${overflow}px wider than the phone`);
  await shot(page, "visitor-phone-explorer");
  await page.reload();
  assert.match(await page.getByText(/lượt xem/).first().innerText(), /[1-9]\d* lượt xem · [2-9]\d* lượt tải/);
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
  // The demo's open datasets with data: the restricted one is not counted, nor is the open
  // one that has nothing published yet (a draft).
  assert.match(await page.locator("#result-count").innerText(), /^6 /);
  assert.equal(await page.getByText("Cơ sở lưu trú du lịch").count(), 0, "a draft is not listed");
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

test("a developer reads the API description at /api/docs, served by kho itself, and tries a call", async () => {
  const page = await browser.newPage();
  const external = [];
  page.on("request", (r) => { if (!r.url().startsWith(kho.base) && !r.url().startsWith("data:")) external.push(r.url()); });
  await page.goto(`${kho.base}/api/docs`);
  await page.locator(".info .title").filter({ hasText: "kho API" }).waitFor();
  const intro = await page.locator(".info .description").innerText();
  assert.match(intro, /Giao diện lập trình \(API\) của kho/);
  assert.match(intro, /filter=dan_so:gte:2\.000\.000/);
  // Try the rows call of the demo data from the page.
  const op = page.locator("#operations-query-rows");
  await op.locator(".opblock-summary").click();
  await op.getByRole("button", { name: "Try it out" }).click().catch(() => {});
  await op.locator('tr[data-param-name="id"] input').fill("dan-so-dien-tich-tinh");
  await op.locator('tr[data-param-name="name"] input').fill("tinh-thanh");
  await op.getByRole("button", { name: "Execute" }).click();
  await op.locator(".live-responses-table tbody .response-col_status").first().waitFor();
  assert.match(await op.locator(".live-responses-table tbody .response-col_status").first().innerText(), /200/);
  assert.match(await op.locator(".live-responses-table .highlight-code").first().innerText(), /"total": 34/);
  assert.deepEqual(external, [], "nothing is fetched from outside kho");
  await shot(page, "api-docs");
  await page.close();
});
