// API keys in D1 (tokens are stored only as hashes).
import { and, eq, isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { apiKeys, type Role } from "./schema";

export type ApiKeyRow = typeof apiKeys.$inferSelect;

export async function insertKey(db: D1Database, row: ApiKeyRow): Promise<void> {
  await drizzle(db).insert(apiKeys).values(row);
}

export async function listKeys(db: D1Database): Promise<ApiKeyRow[]> {
  return drizzle(db).select().from(apiKeys).orderBy(apiKeys.createdAt).all();
}

/** Revokes the key unless it already is; answers its row as it now stands, or null for no such key. */
export async function revokeKey(db: D1Database, id: string): Promise<ApiKeyRow | null> {
  const d = drizzle(db);
  await d
    .update(apiKeys)
    .set({ revokedAt: Date.now() })
    .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)));
  return (await d.select().from(apiKeys).where(eq(apiKeys.id, id)).get()) ?? null;
}

/** The key with this token hash, unless it is revoked. */
export async function findActiveKey(db: D1Database, tokenHash: string): Promise<{ id: string; role: Role; limits: Record<string, unknown> } | null> {
  const row = await drizzle(db)
    .select({ id: apiKeys.id, role: apiKeys.role, limits: apiKeys.limits })
    .from(apiKeys)
    .where(and(eq(apiKeys.tokenHash, tokenHash), isNull(apiKeys.revokedAt)))
    .get();
  return row ?? null;
}

export async function findKey(db: D1Database, id: string): Promise<ApiKeyRow | null> {
  return (await drizzle(db).select().from(apiKeys).where(eq(apiKeys.id, id)).get()) ?? null;
}

/** Stores the key's limit overrides; answers its row as it now stands, or null for no such key. */
export async function setKeyLimits(db: D1Database, id: string, limits: Record<string, unknown>): Promise<ApiKeyRow | null> {
  return (await drizzle(db).update(apiKeys).set({ limits }).where(eq(apiKeys.id, id)).returning().get()) ?? null;
}

/** Whether the key that owns these objects is revoked (the ADMIN_TOKEN's owner has no row and never is). */
export async function isKeyRevoked(db: D1Database, id: string): Promise<boolean> {
  const row = await drizzle(db).select({ revokedAt: apiKeys.revokedAt }).from(apiKeys).where(eq(apiKeys.id, id)).get();
  return row?.revokedAt != null;
}
