// The local development ADMIN_TOKEN, read from wrangler.toml [vars], the one place it is written
// for development: scripts, benches and Node tests use exactly what the local Worker uses. (The
// Worker's own tests read `env.ADMIN_TOKEN`; src/config.ts names it only to refuse it in production.)
import { readFileSync } from "node:fs";
import path from "node:path";
import { parse } from "smol-toml";

const wranglerToml = path.resolve(import.meta.dirname, "..", "wrangler.toml");
const vars = parse(readFileSync(wranglerToml, "utf8")).vars;

function devVar(name: string): string {
  const value = typeof vars === "object" && vars !== null && !Array.isArray(vars) ? (vars as Record<string, unknown>)[name] : undefined;
  if (typeof value !== "string") throw new Error(`${wranglerToml} has no [vars] ${name}`);
  return value;
}

export const DEV_ADMIN_TOKEN = devVar("ADMIN_TOKEN");
