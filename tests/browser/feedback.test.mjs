// Talking back as people do it: a visitor asks for data that is not published, the agency's
// steward finds the request in their inbox and answers it with the dataset that fulfils it, and
// the visitor sees the answer; a visitor rates a dataset and reports a problem that the owner sees.
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

test("a data request is filed and answered", async () => {
  const visitor = await browser.newPage();
  await visitor.goto(`${kho.base}/`);
  await visitor.getByRole("navigation", { name: "Điều hướng chính" }).getByRole("link", { name: "Yêu cầu dữ liệu" }).click();
  await visitor.getByRole("link", { name: "Đề nghị công bố dữ liệu" }).click();
  // The robots' field is out of sight and out of the keyboard's way.
  const trap = visitor.locator("input[name=website]");
  assert.equal(await trap.getAttribute("tabindex"), "-1");
  const box = await trap.boundingBox();
  assert.ok(box === null || box.x + box.width < 0, `honeypot on screen: ${JSON.stringify(box)}`);

  await visitor.getByLabel("Tên dữ liệu cần").fill("Dân số từng tỉnh sau sáp nhập");
  // A mistake first: the form comes back with the text kept and the problem named.
  await visitor.getByLabel("Mô tả").fill("Cần dân số và diện tích 34 tỉnh, thành phố năm 2025 để lập kế hoạch đầu tư.");
  await visitor.getByLabel("Liên hệ (không bắt buộc)").fill("gọi cho tôi");
  await visitor.getByRole("button", { name: "Gửi đề nghị" }).click();
  await visitor.getByRole("alert").waitFor();
  // Said in Vietnamese, the field by its label, with examples of what is accepted.
  const problem = await visitor.getByRole("alert").innerText();
  assert.match(problem, /Liên hệ: không phải thư điện tử hay số điện thoại \(ví dụ: lan@example\.vn, 0912 345 678, Zalo 0912 345 678\)/);
  assert.doesNotMatch(problem, /contact|neither/);
  assert.equal(await visitor.getByLabel("Tên dữ liệu cần").inputValue(), "Dân số từng tỉnh sau sáp nhập");
  await visitor.getByLabel("Liên hệ (không bắt buộc)").fill("lan.nguyen@example.vn");
  await visitor.getByLabel("Cơ quan có thể quản lý dữ liệu này").selectOption({ label: "Sở Tài chính" });
  await visitor.getByRole("button", { name: "Gửi đề nghị" }).click();
  await visitor.waitForURL(/\/requests\/\d+\?sent=request/);
  const requestUrl = visitor.url().split("?")[0];
  assert.match(await visitor.getByRole("status").innerText(), /Đề nghị đã được ghi nhận/);
  assert.equal(await visitor.locator("#item-status").innerText(), "Chờ trả lời");

  // The steward of Sở Tài chính sees it in the inbox, with the sender's contact, and answers.
  const steward = await (await browser.newContext()).newPage();
  await signIn(steward, kho.base, "taichinh.canbo", "demo-taichinh-canbo");
  await steward.getByRole("link", { name: "Hộp thư góp ý" }).click();
  await steward.getByRole("link", { name: "Dân số từng tỉnh sau sáp nhập" }).click();
  assert.match(await steward.locator("main").innerText(), /lan\.nguyen@example\.vn/);
  await steward.getByLabel("Trạng thái").selectOption({ label: "Đã xử lý" });
  await steward.getByLabel("Trả lời", { exact: true }).fill("Sở Tài chính đã công bố bộ dữ liệu này, cập nhật hằng năm.");
  await steward.getByLabel("Bộ dữ liệu đáp ứng yêu cầu (mã hoặc slug)").fill("dan-so-dien-tich-tinh");
  await steward.getByRole("button", { name: "Lưu trả lời" }).click();
  await steward.getByText("Đã lưu trả lời.").waitFor();
  // Answered items leave the open view of the inbox.
  await steward.goto(`${kho.base}/inbox`);
  assert.equal(await steward.getByRole("link", { name: "Dân số từng tỉnh sau sáp nhập" }).count(), 0);

  // The visitor sees the answer and follows it to the data; their contact is not on the page.
  await visitor.goto(requestUrl);
  assert.equal(await visitor.locator("#item-status").innerText(), "Đã xử lý");
  assert.match(await visitor.locator("#answer").innerText(), /Sở Tài chính đã công bố bộ dữ liệu này/);
  assert.doesNotMatch(await visitor.locator("main").innerText(), /lan\.nguyen/);
  assert.equal(await visitor.locator("#answer-form").count(), 0);
  await visitor.locator("#answer").getByRole("link").click();
  await visitor.waitForURL(/\/datasets\/dan-so-dien-tich-tinh/);
  // And the public list shows it as resolved.
  await visitor.goto(`${kho.base}/requests?status=resolved`);
  assert.equal(await visitor.getByRole("link", { name: "Dân số từng tỉnh sau sáp nhập" }).count(), 1);
  await visitor.close();
  await steward.context().close();
});

test("a visitor rates a dataset and reports a problem that its owner sees", async () => {
  const visitor = await browser.newPage();
  await visitor.goto(`${kho.base}/datasets/dan-so-dien-tich-tinh`);
  assert.equal(await visitor.locator("#rating-summary").innerText(), "Chưa có đánh giá nào.");
  await visitor.getByLabel("4 ★").check();
  await visitor.getByRole("button", { name: "Gửi đánh giá" }).click();
  await visitor.getByText("Cảm ơn bạn đã đánh giá.").waitFor();
  assert.match(await visitor.locator("#rating-summary").innerText(), /4,0\/5 · 1 lượt đánh giá/);

  const form = visitor.locator("#report-form");
  await form.getByLabel("Loại vấn đề").selectOption({ label: "Thiếu dữ liệu" });
  await form.getByLabel("Mô tả").fill("Bảng thiếu cột mật độ dân số của từng tỉnh.");
  await form.getByRole("button", { name: "Gửi báo cáo" }).click();
  await visitor.getByText("Báo cáo đã được gửi tới cơ quan chủ quản").waitFor();
  assert.match(await visitor.locator("#feedback").innerText(), /Thiếu dữ liệu[\s\S]*Chờ trả lời[\s\S]*thiếu cột mật độ/);

  const steward = await (await browser.newContext()).newPage();
  await signIn(steward, kho.base, "taichinh.canbo", "demo-taichinh-canbo");
  await steward.goto(`${kho.base}/inbox?kind=problem`);
  await steward.getByRole("link", { name: "Thiếu dữ liệu" }).click();
  await steward.getByLabel("Trả lời", { exact: true }).fill("Sẽ bổ sung cột mật độ ở phiên bản sau.");
  await steward.getByRole("button", { name: "Lưu trả lời" }).click();
  await steward.getByText("Đã lưu trả lời.").waitFor();

  await visitor.reload();
  assert.match(await visitor.locator("#feedback").innerText(), /Đã trả lời[\s\S]*Sẽ bổ sung cột mật độ/);
  await visitor.close();
  await steward.context().close();
});
