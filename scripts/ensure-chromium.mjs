#!/usr/bin/env node
import { spawnSync } from "node:child_process";
// The browser tests and `npm run screenshots` drive Debian's Chromium (/usr/bin/chromium) with
// playwright-core. On a machine without it this installs it with apt-get when running as root
// (CI, containers); otherwise it says how. Run by scripts/test.mjs before the suites.
import { existsSync } from "node:fs";
import { pathToFileURL } from "node:url";

export const CHROMIUM_PATH = "/usr/bin/chromium";

function aptGet(args) {
  return spawnSync("apt-get", args, { stdio: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } }).status === 0;
}

/** True when Chromium is there (installed now if need be). */
export function ensureChromium() {
  if (existsSync(CHROMIUM_PATH)) return true;
  if (process.platform !== "linux" || process.getuid?.() !== 0 || !existsSync("/usr/bin/apt-get")) {
    console.error(`The browser tests need Chromium at ${CHROMIUM_PATH}: install Debian's package (sudo apt-get install chromium).`);
    return false;
  }
  console.log("Installing Debian's chromium for the browser tests (apt-get install chromium)…");
  // A fresh machine may have no package lists yet: update once if the first try fails.
  if (!aptGet(["install", "-y", "chromium"])) aptGet(["update"]) && aptGet(["install", "-y", "chromium"]);
  return existsSync(CHROMIUM_PATH);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) process.exit(ensureChromium() ? 0 : 1);
