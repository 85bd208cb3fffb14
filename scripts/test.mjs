#!/usr/bin/env node
// `npm test`: the checks (lint and format, import cycles, generated Worker types up to date), the type
// check, then every suite, one after the other — the Worker in workerd (vitest-pool-workers),
// then the Node suites (unit, gpu-node, end to end, the console in Chromium) — and one closing line `N passed, N failed`
// summed from vitest's JSON reports. Exits non-zero when anything failed or did not run.
// Extra arguments are passed to both vitest runs (e.g. a file filter).
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { ensureChromium } from "./ensure-chromium.mjs";

const root = path.resolve(import.meta.dirname, "..");
const resultsDir = path.join(root, ".sdgate", "test-results");
rmSync(resultsDir, { recursive: true, force: true });
mkdirSync(resultsDir, { recursive: true });

const suites = [
  { name: "workers", config: "vitest.workers.config.ts" },
  { name: "node", config: "vitest.node.config.ts" },
];
const vitest = path.join(root, "node_modules", "vitest", "vitest.mjs");
const env = { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" };

let passed = 0;
let failed = 0;
let broken = false;

// Checks first; a failing one marks the run broken but the suites still run.
// `wrangler types --check` takes the flags of `npm run types`, read from package.json so they cannot drift.
const [typesCommand, ...typesArgs] = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")).scripts.types.split(" ");
const biome = path.join(root, "node_modules", "@biomejs", "biome", "bin", "biome");
const checks = [
  { name: "lint (`npm run lint` for details)", args: [biome, "check", "--reporter=summary", "."] },
  { name: "import cycles", args: [path.join(root, "scripts", "check-cycles.mjs")] },
  { name: "worker-configuration.d.ts up to date (`npm run types`)", args: [...typesArgs, "--check"] },
];
if (typesCommand !== "node") {
  console.error("package.json scripts.types no longer starts with `node`: scripts/test.mjs cannot check the types");
  broken = true;
  checks.pop();
}
for (const check of checks) {
  const run = spawnSync(process.execPath, check.args, { cwd: root, env, stdio: "inherit" });
  if (run.status !== 0) {
    console.error(`check failed: ${check.name}`);
    broken = true;
  }
}

// Then strict TypeScript over the Worker, the Node side (agent, emulator, benches, tests) and the console.
const tsc = path.join(root, "node_modules", "typescript", "bin", "tsc");
for (const project of ["tsconfig.json", "tsconfig.node.json", "tsconfig.console.json"]) {
  const check = spawnSync(process.execPath, [tsc, "-p", project], { cwd: root, stdio: "inherit" });
  if (check.status !== 0) {
    console.error(`type check of ${project} failed`);
    broken = true;
  }
}

// The browser tests (in the Node suite) drive Debian's Chromium: installed here when missing.
if (!ensureChromium()) {
  console.error("check failed: Chromium for the browser tests (scripts/ensure-chromium.mjs)");
  broken = true;
}

for (const suite of suites) {
  const outputFile = path.join(resultsDir, `${suite.name}.json`);
  const run = spawnSync(
    process.execPath,
    [
      vitest,
      "run",
      "--config",
      suite.config,
      "--reporter=default",
      "--reporter=json",
      `--outputFile.json=${outputFile}`,
      "--passWithNoTests",
      ...process.argv.slice(2),
    ],
    { cwd: root, env, stdio: "inherit" },
  );
  try {
    const report = JSON.parse(readFileSync(outputFile, "utf8"));
    passed += report.numPassedTests;
    failed += report.numFailedTests;
    // A file that failed to load has no failed tests but still fails the run.
    if (!report.success && report.numFailedTests === 0) broken = true;
  } catch {
    broken = true;
  }
  if (run.status !== 0) broken = true;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || broken ? 1 : 0);
