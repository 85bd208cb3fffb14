// API key tokens: generation with a prefix naming the role, and hashing (only hashes are stored).
import { base64url, sha256Hex } from "../crypto";
import type { Role } from "../db/schema";

const TOKEN_PREFIX_BY_ROLE: Record<Role, string> = { admin: "sdg_admin_", user: "sdg_user_", node: "sdg_node_", scaler: "sdg_scaler_" };

export function generateToken(role: Role): string {
  return TOKEN_PREFIX_BY_ROLE[role] + base64url(crypto.getRandomValues(new Uint8Array(32)));
}

export function hashToken(token: string): Promise<string> {
  return sha256Hex(token);
}

/** What listings show of a token, so people can tell keys apart: its role prefix and a few characters. */
export function tokenPrefix(token: string): string {
  return token.slice(0, 14);
}
