// /docs: Swagger UI, served offline by the local server, lists every route of template.yaml.
import { readFileSync } from "node:fs";
import { expect, test } from "@playwright/test";

/** `METHOD /path` of every HttpApi event in template.yaml. */
function templateRoutes(): string[] {
  const text = readFileSync(process.env.RENJI_TEMPLATE!, "utf8");
  const routes = new Set<string>();
  for (const block of text.split("Type: HttpApi\n").slice(1)) {
    const properties = block.split(/\n\s*[A-Za-z]+:\n\s*Type: /)[0];
    const method = /Method: (\S+)/.exec(properties)?.[1];
    const path = /Path: (\S+)/.exec(properties)?.[1];
    if (method && path) routes.add(`${method.toUpperCase()} ${path}`);
  }
  return [...routes].sort();
}

test("the API reference loads offline and lists every route of template.yaml", async ({ page }) => {
  const outside: string[] = [];
  page.on("request", (r) => {
    if (!r.url().startsWith(process.env.RENJI_BASE!) && !r.url().startsWith("data:")) outside.push(r.url());
  });
  await page.goto("/docs/");
  await expect(page.locator(".opblock").first()).toBeVisible();
  const shown = await page.$$eval(".opblock-summary", (blocks) =>
    blocks.map((b) => {
      const method = b.querySelector(".opblock-summary-method")?.textContent ?? "";
      const path = b.querySelector(".opblock-summary-path")?.getAttribute("data-path") ?? "";
      return `${method.toUpperCase()} ${path}`;
    }),
  );
  const expected = templateRoutes();
  expect(expected.length).toBeGreaterThan(50);
  expect(expected.filter((r) => !shown.includes(r))).toEqual([]);
  expect(outside).toEqual([]);
  if (process.env.RENJI_SCREENSHOTS === "1") await page.screenshot({ path: "screenshots/docs.png" });

  // "Try it out" reaches this server (whatever its port; the spec names 3000).
  const browse = page.locator("#operations-listings-browseListings, .opblock-get:has([data-path='/v1/listings'])").first();
  await browse.locator(".opblock-summary").first().click();
  await browse.getByRole("button", { name: "Try it out" }).click();
  await browse.getByRole("button", { name: "Execute" }).click();
  await expect(browse.locator(".live-responses-table tr.response .response-col_status").first()).toHaveText("200");
  expect(outside).toEqual([]);
});
