#!/usr/bin/env node
// Builds the Worker's static assets (wrangler.toml [assets]) into dist/console: the console (Preact,
// bundled by esbuild from console/) at `/` and the API reference (Swagger UI, copied from
// swagger-ui-dist) at `/docs`. Every file is served by the Worker itself; nothing comes from a CDN.
// Run by wrangler before `dev` and `deploy` ([build]), by the Worker tests' config, and by hand.
//
// Several local Workers may start at once (the end-to-end tests) while others serve these files:
// a build whose inputs have not changed does nothing, and one that has replaces each file by a
// rename, so a running Worker never serves a half-written file.
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { build, version as esbuildVersion } from "esbuild";

const root = path.resolve(import.meta.dirname, "..");
const sources = path.join(root, "console");
const swaggerDist = path.join(root, "node_modules", "swagger-ui-dist");
export const CONSOLE_ASSETS_DIR = path.join(root, "dist", "console");
const STAMP = ".build-inputs";

function filesUnder(dir) {
  return (
    readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      // parentPath from Node 20.12; `path` before it.
      .map((entry) => path.join(entry.parentPath ?? entry.path, entry.name))
      .sort()
  );
}

/** A digest of everything the output depends on. */
function inputsDigest() {
  const hash = createHash("sha256").update(esbuildVersion);
  const packages = ["preact", "swagger-ui-dist"].map((name) => path.join(root, "node_modules", name, "package.json"));
  for (const file of [...filesUnder(sources), import.meta.filename, ...packages]) hash.update(file).update(readFileSync(file));
  return hash.digest("hex");
}

export async function buildConsole() {
  const digest = inputsDigest();
  try {
    if (readFileSync(path.join(CONSOLE_ASSETS_DIR, STAMP), "utf8") === digest) return;
  } catch {
    // not built yet
  }
  mkdirSync(CONSOLE_ASSETS_DIR, { recursive: true });
  const staging = mkdtempSync(path.join(path.dirname(CONSOLE_ASSETS_DIR), ".console-"));
  try {
    await build({
      entryPoints: { console: path.join(sources, "main.tsx"), docs: path.join(sources, "docs.ts") },
      outdir: staging,
      bundle: true,
      format: "esm",
      target: "es2022",
      minify: true,
      sourcemap: "linked",
      jsx: "automatic",
      jsxImportSource: "preact",
      logLevel: "warning",
    });
    for (const file of ["index.html", "docs.html", "console.css"]) copyFileSync(path.join(sources, file), path.join(staging, file));
    mkdirSync(path.join(staging, "swagger"));
    for (const file of ["swagger-ui-bundle.js", "swagger-ui.css"]) copyFileSync(path.join(swaggerDist, file), path.join(staging, "swagger", file));
    // wrangler uploads (and serves) every file of the directory but those .assetsignore names.
    writeFileSync(path.join(staging, ".assetsignore"), `${STAMP}\n`);
    writeFileSync(path.join(staging, STAMP), digest);
    // The stamp last: a build cut short is done again.
    for (const file of filesUnder(staging).sort((a, b) => Number(a.endsWith(STAMP)) - Number(b.endsWith(STAMP)))) {
      const target = path.join(CONSOLE_ASSETS_DIR, path.relative(staging, file));
      mkdirSync(path.dirname(target), { recursive: true });
      renameSync(file, target);
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await buildConsole();
