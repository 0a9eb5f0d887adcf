// Measures the console as a browser sees it, against a running local server (scripts/console
// measure [URL]): the bundle's size (raw and gzip), the sign-in page's first contentful paint, and
// the time from pressing "Sign in" to the ticket queue painted (the sign-in call, the queue call
// and the render). Five runs, each in a fresh browser context; medians printed.
import { chromium } from "@playwright/test";
import { readFileSync, readdirSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";

const base = process.argv[2] ?? "http://127.0.0.1:3000";
const dist = new URL("./dist/console/", import.meta.url).pathname;
let raw = 0;
let gz = 0;
for (const f of readdirSync(dist)) {
  const bytes = readFileSync(join(dist, f));
  raw += bytes.length;
  gz += gzipSync(bytes, { level: 9 }).length;
  console.log(`  ${f}: ${(bytes.length / 1024).toFixed(1)} KiB (${(gzipSync(bytes, { level: 9 }).length / 1024).toFixed(1)} KiB gzip)`);
}
console.log(`bundle: ${(raw / 1024).toFixed(1)} KiB, ${(gz / 1024).toFixed(1)} KiB gzip`);

const browser = await chromium.launch({
  executablePath: process.env.RENJI_CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fcps = [];
const queues = [];
try {
  for (let run = 0; run < 5; run++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${base}/console/`);
    await page.waitForSelector('[data-testid="signin"]');
    fcps.push(
      await page.evaluate(
        () =>
          new Promise((resolve) => {
            new PerformanceObserver((list) => {
              const e = list.getEntriesByName("first-contentful-paint")[0];
              if (e) resolve(e.startTime);
            }).observe({ type: "paint", buffered: true });
          }),
      ),
    );
    await page.fill('input[name="code"]', "staff:measure:support");
    await page.evaluate(() => {
      window.__t0 = performance.now();
      new MutationObserver((_, observer) => {
        if (document.querySelector('[data-testid="ticket-row"]') || document.querySelector("tbody + * .muted, table ~ div .muted")) {
          observer.disconnect();
          requestAnimationFrame(() => setTimeout(() => (window.__t1 = performance.now())));
        }
      }).observe(document.body, { subtree: true, childList: true });
    });
    await page.click('button[type="submit"]');
    await page.waitForFunction(() => window.__t1 !== undefined, null, { timeout: 15_000 });
    queues.push(await page.evaluate(() => window.__t1 - window.__t0));
    await context.close();
  }
} finally {
  await browser.close();
}
console.log(`first contentful paint of /console/: median ${median(fcps).toFixed(0)} ms (${fcps.map((x) => x.toFixed(0)).join(", ")})`);
console.log(`"Sign in" pressed → queue painted: median ${median(queues).toFixed(0)} ms (${queues.map((x) => x.toFixed(0)).join(", ")})`);
