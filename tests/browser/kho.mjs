// Start a real `kho serve --demo` on a free port with its own data folder, and a headless
// Chromium from the system (Debian's package), for the browser tests.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, after } from "node:test";
import { chromium } from "playwright-core";

export const ADMIN_PASSWORD = "admin-password-for-browser-tests";

export function khoBinary() {
  if (process.env.KHO_BIN) return process.env.KHO_BIN;
  const target = process.env.CARGO_TARGET_DIR || join(process.cwd(), "..", "..", "target");
  return join(target, "debug", "kho");
}

export async function startKho() {
  const dir = mkdtempSync(join(tmpdir(), "kho-browser-"));
  const child = spawn(khoBinary(), ["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir", join(dir, "data")], {
    env: { ...process.env, KHO_INITIAL_ADMIN_PASSWORD: ADMIN_PASSWORD, KHO_LOG: "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const base = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`kho did not start: ${out}`)), 60_000);
    child.stdout.on("data", (chunk) => {
      out += chunk.toString();
      const m = out.match(/listening on (http:\/\/[^\s]+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", (code) => reject(new Error(`kho exited with ${code}: ${out}`)));
  });
  return {
    base,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}

export async function signIn(page, base, username, password) {
  await page.goto(`${base}/sign-in`);
  await page.getByLabel("Tên đăng nhập").fill(username);
  await page.getByLabel("Mật khẩu").fill(password);
  await page.getByRole("button", { name: "Đăng nhập" }).click();
  await page.waitForURL((url) => !url.pathname.startsWith("/sign-in"));
}

/**
 * A kho server and a Chromium shared by the tests of one file: started before them, stopped
 * after. Returns an object whose `kho` and `browser` are set once they run.
 */
export function useKho() {
  const env = {};
  before(async () => {
    env.kho = await startKho();
    env.browser = await launchBrowser();
  });
  after(async () => {
    await env.browser?.close();
    await env.kho?.stop();
  });
  return env;
}

/** A full-page screenshot into `$SCREENSHOT_DIR`, when it is set. */
export async function shot(page, name) {
  if (process.env.SCREENSHOT_DIR) await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/${name}.png`, fullPage: true });
}
