// Builds dist/ from src/ and public/: the console (an ES module), the
// portlet alone (one classic script for other products' pages) and the
// static files. `node build.mjs`; sizes are printed, gzipped.
import { build } from "esbuild";
import { cpSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { gzipSync } from "node:zlib";

const dist = new URL("./dist/", import.meta.url).pathname;
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
cpSync(new URL("./public/", import.meta.url).pathname, dist, { recursive: true });

const common = { bundle: true, minify: true, target: "es2022", legalComments: "none", logLevel: "warning" };
await build({ ...common, entryPoints: ["src/console.ts"], format: "esm", outfile: `${dist}console.js` });
await build({ ...common, entryPoints: ["src/portlet.ts"], format: "iife", outfile: `${dist}portlet.js` });

// The budget of what a screen loads first: the console's JavaScript, gzipped (issue 16: 60 KB).
const BUDGET = { "console.js": 60 * 1024, "portlet.js": 30 * 1024 };
let over = false;
for (const f of ["console.js", "portlet.js", "console.css", "index.html"]) {
  const gz = gzipSync(readFileSync(dist + f)).length;
  const budget = BUDGET[f] ? `  (budget ${BUDGET[f]} B)` : "";
  console.log(`${f.padEnd(12)} ${String(statSync(dist + f).size).padStart(7)} B  ${String(gz).padStart(6)} B gzip${budget}`);
  if (BUDGET[f] && gz > BUDGET[f]) over = true;
}
if (over) {
  console.error("over budget: a dependency or a screen grew the initial JavaScript past what a phone should load first");
  process.exit(1);
}
