// Who is calling: the API key from `Authorization: Bearer`, the original `Token` header, or HTTP
// Basic with the key as password (A1111 clients). Keys are looked up by hash; the ADMIN_TOKEN
// secret is the first admin.
import { createMiddleware } from "hono/factory";
import type { AppEnv, Caller } from "../app-env";
import type { Config } from "../config";
import { timingSafeEqual } from "../crypto";
import { findActiveKey } from "../db/keys";
import type { Role } from "../db/schema";
import { ApiError } from "../errors";
import { effectiveLimits } from "../tenants/limits";
import { hashToken } from "./tokens";

export function tokenFromHeaders(headers: Headers): string | null {
  const authorization = headers.get("authorization");
  if (authorization) {
    const [scheme, value = ""] = authorization.split(/\s+/, 2);
    if (scheme?.toLowerCase() === "bearer" && value) return value;
    if (scheme?.toLowerCase() === "basic" && value) {
      let decoded: string;
      try {
        decoded = atob(value);
      } catch {
        return null;
      }
      const colon = decoded.indexOf(":");
      const password = colon >= 0 ? decoded.slice(colon + 1) : decoded;
      return password || null;
    }
  }
  return headers.get("token") || null;
}

/**
 * Keys found in D1 are remembered by hash for this long in the isolate, sparing a D1 read on
 * every call of a busy client or node. Revoking (or new limits) forgets the key at once in the
 * isolate that changed it; elsewhere the change takes effect within this time.
 */
export const KEY_MEMO_MS = 5_000;
const knownKeys = new Map<string, { caller: Caller; until: number }>();
const MAX_KNOWN_KEYS = 10_000;

export function forgetKey(keyId: string): void {
  for (const [hash, entry] of knownKeys) if (entry.caller.keyId === keyId) knownKeys.delete(hash);
}

async function identify(env: Env, config: Config, token: string): Promise<Caller | null> {
  if (timingSafeEqual(token, config.adminToken)) return { keyId: "admin", role: "admin", owner: "admin", limits: config.defaultLimits };
  const hash = await hashToken(token);
  const known = knownKeys.get(hash);
  if (known && known.until > Date.now()) return known.caller;
  const row = await findActiveKey(env.DB, hash);
  if (!row) {
    knownKeys.delete(hash);
    return null;
  }
  const caller: Caller = { keyId: row.id, role: row.role, owner: row.id, limits: effectiveLimits(config.defaultLimits, row.limits) };
  if (knownKeys.size >= MAX_KNOWN_KEYS) knownKeys.delete(knownKeys.keys().next().value!);
  knownKeys.set(hash, { caller, until: Date.now() + KEY_MEMO_MS });
  return caller;
}

/** Admin keys may do what user keys do; node keys only speak the node protocol; scaler keys only read /autoscale (admins too). */
const ALLOWED: Record<Role, readonly Role[]> = { user: ["user", "admin"], admin: ["admin"], node: ["node"], scaler: ["scaler", "admin"] };

export function requireRole(role: Role) {
  return requireOneOf(ALLOWED[role], `a ${role} key`);
}

/** A route two roles share, telling them apart itself (DELETE /nodes/{id}: a node leaving, or an admin removing it). */
export function requireNodeOrAdmin() {
  return requireOneOf(["node", "admin"], "a node or admin key");
}

function requireOneOf(roles: readonly Role[], needed: string) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const token = tokenFromHeaders(c.req.raw.headers);
    const caller = token ? await identify(c.env, c.get("config"), token) : null;
    if (!caller) throw new ApiError("unauthorized", token ? "The API key is unknown or revoked" : "Send the API key as `Authorization: Bearer <key>`");
    if (!roles.includes(caller.role)) throw new ApiError("forbidden", `This route needs ${needed}; this is a ${caller.role} key`);
    c.set("caller", caller);
    await next();
  });
}
