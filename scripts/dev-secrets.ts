// The local development ENVIRONMENT, ADMIN_TOKEN and SIGNING_SECRET, read from dev.vars, the one
// place they are written: `npm start`, the Worker tests (vitest.workers.config.ts), benches and
// Node tests use exactly what `npm run dev` uses. (src/config.ts names the two secrets only to
// refuse them outside development; test/worker/auth.test.ts keeps the two in step.)
import { readFileSync } from "node:fs";
import path from "node:path";
import { parseEnv } from "node:util";

const DEV_VARS_FILE = path.resolve(import.meta.dirname, "..", "dev.vars");
export const DEV_VARS: Record<string, string> = parseEnv(readFileSync(DEV_VARS_FILE, "utf8")) as Record<string, string>;

if (!DEV_VARS.ADMIN_TOKEN) throw new Error(`${DEV_VARS_FILE} has no ADMIN_TOKEN`);
export const DEV_ADMIN_TOKEN = DEV_VARS.ADMIN_TOKEN;
