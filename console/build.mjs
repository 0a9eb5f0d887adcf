// Builds the staff console and the /docs page into dist/ (served by the local server, and synced
// to the console's S3 bucket when deployed):
//   dist/console/  index.html, app.js (the TypeScript bundle, minified), app.css
//   dist/docs/     Swagger UI from the npm package swagger-ui-dist, offline; the local server
//                  adds openapi.yaml beside it
// RENJI_CONSOLE_WECOM_CORP_ID and RENJI_CONSOLE_WECOM_AGENT_ID, when set, put the WeCom web
// login (QR) button on the sign-in screen; without them it asks for a code (the local stand-in's
// staff:<name>:<role>).
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "dist");
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "console"), { recursive: true });
mkdirSync(join(out, "docs"), { recursive: true });

await build({
  entryPoints: [join(here, "src/main.ts"), join(here, "src/app.css")],
  outdir: join(out, "console"),
  entryNames: "[name]",
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2022", "chrome100", "safari15", "firefox100"],
  legalComments: "none",
  logLevel: "warning",
});
// main.js → app.js (the name index.html loads)
copyFileSync(join(out, "console/main.js"), join(out, "console/app.js"));
rmSync(join(out, "console/main.js"));

const attr = (s) => s.replace(/[^A-Za-z0-9_-]/g, "");
const corp = attr(process.env.RENJI_CONSOLE_WECOM_CORP_ID ?? "");
const agent = attr(process.env.RENJI_CONSOLE_WECOM_AGENT_ID ?? "");
const wecom =
  corp && agent
    ? `<meta name="renji-wecom-corp-id" content="${corp}">\n<meta name="renji-wecom-agent-id" content="${agent}">`
    : "";
writeFileSync(
  join(out, "console/index.html"),
  readFileSync(join(here, "src/index.html"), "utf8").replace("<!--WECOM-->", wecom),
);

// /docs: Swagger UI's standalone bundle, its CSS and a small start script (no inline script, no CDN).
const swagger = join(here, "node_modules/swagger-ui-dist");
for (const file of ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"]) {
  copyFileSync(join(swagger, file), join(out, "docs", file));
}
copyFileSync(join(here, "src/docs/index.html"), join(out, "docs/index.html"));
copyFileSync(join(here, "src/docs/docs.js"), join(out, "docs/docs.js"));

const size = (f) => statSync(join(out, f)).size;
const kib = (n) => (n / 1024).toFixed(1) + " KiB";
console.log(
  `console: app.js ${kib(size("console/app.js"))}, app.css ${kib(size("console/app.css"))}, index.html ${kib(size("console/index.html"))}`,
);
