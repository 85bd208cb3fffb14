// API key tokens: generation, hashing (only hashes are stored) and constant-time comparison.
import type { Role } from "../db/schema";

const TOKEN_PREFIX_BY_ROLE: Record<Role, string> = { admin: "sdg_admin_", user: "sdg_user_", node: "sdg_node_" };

export function base64(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

export function base64url(bytes: Uint8Array): string {
  return base64(bytes).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** HMAC-SHA256 of `message` under `key` (a string is taken as its UTF-8 bytes). */
export async function hmacSha256(key: string | Uint8Array, message: string): Promise<Uint8Array> {
  const raw = typeof key === "string" ? new TextEncoder().encode(key) : key;
  const cryptoKey = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", cryptoKey, new TextEncoder().encode(message)));
}

export function randomId(prefix: string, bytes = 12): string {
  return prefix + base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

export function generateToken(role: Role): string {
  return TOKEN_PREFIX_BY_ROLE[role] + base64url(crypto.getRandomValues(new Uint8Array(32)));
}

export async function sha256Hex(data: string | ArrayBuffer | Uint8Array): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export function hashToken(token: string): Promise<string> {
  return sha256Hex(token);
}

/** Constant-time string equality (lengths may leak, contents do not). */
export function timingSafeEqual(a: string, b: string): boolean {
  const ea = new TextEncoder().encode(a);
  const eb = new TextEncoder().encode(b);
  if (ea.length !== eb.length) return false;
  return crypto.subtle.timingSafeEqual(ea, eb);
}
