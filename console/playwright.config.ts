// The console's browser tests (scripts/console test starts the server and sets these variables).
import { defineConfig } from "@playwright/test";

export default defineConfig({
  testDir: "tests",
  // The whole browser step is bounded: scripts/test's budget is 15 minutes on 2 cores.
  globalTimeout: 180_000,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  workers: 1,
  fullyParallel: false,
  retries: 0,
  reporter: [["list"]],
  use: {
    baseURL: process.env.RENJI_BASE,
    viewport: { width: 1200, height: 800 },
    locale: "zh-CN",
    timezoneId: "Asia/Shanghai",
    actionTimeout: 10_000,
    launchOptions: {
      executablePath: process.env.RENJI_CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    },
  },
});
