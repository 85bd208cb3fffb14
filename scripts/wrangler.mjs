#!/usr/bin/env node
// Runs the project's wrangler with the environment this workplace needs (no metrics, no network
// lookups), so every script and the README use one command: `node scripts/wrangler.mjs <args>`.
// `wrangler dev` gets the development vars: dev.vars, then a local .dev.vars over it if there is
// one (named only when it exists: Node 20 itself reads any `--env-file` in its argv, and stops
// at a missing one).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);
const wranglerBin = require.resolve("wrangler/bin/wrangler.js");
const root = path.resolve(import.meta.dirname, "..");
const args = process.argv.slice(2);
if (args[0] === "dev") {
  for (const file of ["dev.vars", ".dev.vars"]) if (existsSync(path.join(root, file))) args.push("--env-file", path.join(root, file));
}
const child = spawn(process.execPath, [wranglerBin, ...args], {
  stdio: "inherit",
  env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
