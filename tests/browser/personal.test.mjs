// A steward tries to publish household heads' citizen IDs as open data through the form: kho
// refuses in Vietnamese, naming the column, and says what to do instead.
import { test } from "node:test";
import assert from "node:assert/strict";
import { useKho, shot, signIn } from "./kho.mjs";

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
