// A steward tries to publish household heads' citizen IDs as open data through the form: kho
// refuses in Vietnamese, naming the column, and says what to do instead.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useKho, shot, signIn, ADMIN_PASSWORD } from "./kho.mjs";
import { englishOn } from "./words.mjs";

const env = useKho();

test("a CCCD column keeps a dataset out of open data, said in Vietnamese with the column's label", async () => {
  for (const viewport of [{ width: 1280, height: 800 }, { width: 390, height: 844 }]) {
    const context = await env.browser.newContext({ viewport });
    const page = await context.newPage();
    await signIn(page, env.kho.base, "noivu.canbo", "demo-noivu-canbo");
    await page.goto(`${env.kho.base}/datasets/new`);
    await page.getByLabel("Tên bộ dữ liệu *").fill(`Chủ hộ theo xã ${viewport.width}`);
    await page.getByLabel("Mức truy cập *").selectOption("open");
    await page.getByLabel("Tần suất cập nhật *").selectOption("annual");
    await page.getByLabel("Tên bảng").fill("Danh sách chủ hộ");
    await page.getByLabel("Tên trường 1", { exact: true }).fill("ma_xa");
    await page.getByLabel("Thuật ngữ từ điển 1", { exact: true }).selectOption("commune_code");
    await page.getByLabel("Tên trường 2", { exact: true }).fill("so_cccd");
    await page.getByLabel("Nhãn 2", { exact: true }).fill("Số CCCD chủ hộ");
    await page.getByLabel("Thuật ngữ từ điển 2", { exact: true }).selectOption("cccd");
    await page.getByRole("button", { name: "Tạo bộ dữ liệu" }).click();
    const alert = await page.getByRole("alert").first().innerText();
    assert.match(alert, /Bộ dữ liệu mở không được chứa dữ liệu cá nhân/);
    assert.match(alert, /trường 'Số CCCD chủ hộ' là dữ liệu cá nhân \(thuật ngữ 'Số định danh cá nhân \(CCCD\)'\)/);
    assert.match(alert, /hãy bỏ hoặc che trường này, hoặc đặt mức truy cập là dùng chung hay hạn chế/i);
    assert.doesNotMatch(alert, /personal_data|access_level|is personal data/);
    if (viewport.width < 400) {
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `the page is ${overflow}px wider than the phone`);
    }
    await shot(page, `personal-open-refused-${viewport.width}`);
    // Shared within the government, the same dataset is accepted.
    await page.getByLabel("Mức truy cập *").selectOption("shared");
    await page.getByRole("button", { name: "Tạo bộ dữ liệu" }).click();
    await page.waitForURL((url) => url.pathname.startsWith("/datasets/chu-ho-theo-xa"));
    await context.close();
  }
});

test("an official of another department sees citizens' IDs masked until they say why they need them", async () => {
  // The Department of Home Affairs shares its household heads with other departments.
  const steward = await env.browser.newContext();
  const api = steward.request;
  const signedIn = await api.post(`${env.kho.base}/api/v1/auth/sign-in`, { data: { username: "noivu.canbo", password: "demo-noivu-canbo" } });
  const csrf = (await signedIn.json()).csrf_token;
  const headers = { "x-csrf-token": csrf };
  const created = await api.post(`${env.kho.base}/api/v1/datasets`, {
    headers,
    data: {
      slug: "chu-ho-chia-se", title: "Chủ hộ được hỗ trợ nhà ở", access_level: "shared", frequency: "annual",
      resources: [{ name: "chu-ho", title: "Danh sách chủ hộ", schema: { fields: [
        { name: "so_cccd", title: "Số CCCD chủ hộ", dictionaryTerm: "cccd" },
        { name: "ho_ten", title: "Họ và tên", dictionaryTerm: "full_name" },
        { name: "so_nhan_khau", title: "Số nhân khẩu", type: "integer" },
      ], primaryKey: "so_cccd" } }],
    },
  });
  assert.equal(created.status(), 201, await created.text());
  const upload = await api.post(`${env.kho.base}/api/v1/datasets/chu-ho-chia-se/resources/chu-ho/uploads`, {
    headers: { ...headers, "content-type": "text/csv" },
    data: "so_cccd,ho_ten,so_nhan_khau\n001099012345,Lò Văn Dũng,5\n034198007654,Cầm Thị Hoa,3\n",
  });
  assert.equal(upload.status(), 201, await upload.text());
  const published = await api.post(`${env.kho.base}/api/v1/uploads/${(await upload.json()).id}/publish`, { headers, data: {} });
  assert.equal(published.status(), 201, await published.text());
  await steward.close();

  for (const viewport of [{ width: 1366, height: 900 }, { width: 390, height: 844 }]) {
    const context = await env.browser.newContext({ viewport, acceptDownloads: true });
    const page = await context.newPage();
    await signIn(page, env.kho.base, "congthuong.xem", "demo-congthuong-xem");
    await page.goto(`${env.kho.base}/datasets/chu-ho-chia-se`);
    const explorer = page.locator(".explorer");
    await explorer.getByRole("cell", { name: "0010******45" }).waitFor();
    await explorer.getByRole("cell", { name: "Lò V. D." }).waitFor();
    assert.match(await explorer.locator("form[data-purpose]").innerText(), /che một phần.*Số CCCD chủ hộ, Họ và tên/s);
    assert.deepEqual(await englishOn(page), []);
    await shot(page, `personal-masked-${viewport.width}`);
    // A purpose that says nothing is refused, in Vietnamese; the table stays as it was.
    await explorer.getByLabel("Mục đích sử dụng").fill("xem thử");
    await explorer.getByRole("button", { name: "Xem đầy đủ" }).click();
    await explorer.getByText(/hãy ghi rõ mục đích sử dụng dữ liệu cá nhân/).waitFor();
    assert.equal(await explorer.getByRole("cell", { name: "001099012345" }).count(), 0);
    // A real purpose shows the values in full, and the download follows.
    await explorer.getByLabel("Mục đích sử dụng").fill("Xác minh hồ sơ hỗ trợ nhà ở số 15/2026");
    await explorer.getByRole("button", { name: "Xem đầy đủ" }).click();
    await explorer.getByRole("cell", { name: "001099012345" }).waitFor();
    await explorer.getByText("Mỗi lượt xem được ghi vào nhật ký").waitFor();
    const href = await explorer.getByRole("link", { name: "Tải CSV" }).getAttribute("href");
    const csv = await (await page.request.get(new URL(href, env.kho.base).toString())).text();
    assert.match(csv, /001099012345,Lò Văn Dũng,5/);
    await shot(page, `personal-unmasked-${viewport.width}`);
    if (viewport.width < 400) {
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `the page is ${overflow}px wider than the phone`);
    }
    await context.close();
  }
  // The administrator sees who read what, and why.
  const admin = await env.browser.newContext();
  const page = await admin.newPage();
  await signIn(page, env.kho.base, "admin", ADMIN_PASSWORD);
  await page.goto(`${env.kho.base}/admin/audit?action=personal.read`);
  const log = await page.locator("table").innerText();
  assert.match(log, /Xem đầy đủ dữ liệu cá nhân/);
  assert.match(log, /Mục đích: Xác minh hồ sơ hỗ trợ nhà ở số 15\/2026/);
  await shot(page, "personal-audit-1366");
  await admin.close();
});
