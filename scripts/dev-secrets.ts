// The local development ENVIRONMENT, ADMIN_TOKEN and SIGNING_SECRET, read from dev.vars, the one
// place they are written: `npm start`, the Worker tests (vitest.workers.config.ts), benches and
// Node tests use exactly what `npm run dev` uses. (src/config.ts names the two secrets only to
// refuse them outside development; test/unit/dev-vars.test.ts keeps the two in step.)
import { readFileSync } from "node:fs";
import path from "node:path";
import { parseEnv } from "node:util";

export const DEV_VARS_FILE = path.resolve(import.meta.dirname, "..", "dev.vars");
export const DEV_VARS: Record<string, string> = parseEnv(readFileSync(DEV_VARS_FILE, "utf8")) as Record<string, string>;

function devVar(name: string): string {
  const value = DEV_VARS[name];
  if (!value) throw new Error(`${DEV_VARS_FILE} has no ${name}`);
  return value;
}

export const DEV_ADMIN_TOKEN = devVar("ADMIN_TOKEN");
export const DEV_SIGNING_SECRET = devVar("SIGNING_SECRET");
