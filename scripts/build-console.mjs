#!/usr/bin/env node
// Builds the Worker's static assets (wrangler.toml [assets]) into dist/console: the console (Preact,
// bundled by esbuild from console/) at `/` and the API reference (Swagger UI, copied from
// swagger-ui-dist) at `/docs`. Every file is served by the Worker itself; nothing comes from a CDN.
// Run by wrangler before `dev` and `deploy` ([build]), by the Worker tests' config, and by hand.
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";

const root = path.resolve(import.meta.dirname, "..");
const sources = path.join(root, "console");
export const CONSOLE_ASSETS_DIR = path.join(root, "dist", "console");

export async function buildConsole() {
  rmSync(CONSOLE_ASSETS_DIR, { recursive: true, force: true });
  mkdirSync(path.join(CONSOLE_ASSETS_DIR, "swagger"), { recursive: true });
  await build({
    entryPoints: { console: path.join(sources, "main.tsx"), docs: path.join(sources, "docs.ts") },
    outdir: CONSOLE_ASSETS_DIR,
    bundle: true,
    format: "esm",
    target: "es2022",
    minify: true,
    sourcemap: "linked",
    jsx: "automatic",
    jsxImportSource: "preact",
    logLevel: "warning",
  });
  for (const file of ["index.html", "docs.html", "console.css"]) copyFileSync(path.join(sources, file), path.join(CONSOLE_ASSETS_DIR, file));
  const swagger = path.join(root, "node_modules", "swagger-ui-dist");
  for (const file of ["swagger-ui-bundle.js", "swagger-ui.css"]) copyFileSync(path.join(swagger, file), path.join(CONSOLE_ASSETS_DIR, "swagger", file));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await buildConsole();
