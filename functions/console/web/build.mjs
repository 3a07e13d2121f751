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

for (const f of ["console.js", "portlet.js", "console.css", "index.html"]) {
  const bytes = readFileSync(dist + f);
  console.log(`${f.padEnd(12)} ${String(statSync(dist + f).size).padStart(7)} B  ${String(gzipSync(bytes).length).padStart(6)} B gzip`);
}
