// Uploaded input images (POST /uploads) as D1 records: the caller's listing, deletion, and the
// ones past their key's retention.
import { and, desc, eq, lt, or, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { apiKeys, uploads } from "./schema";

export type UploadRow = typeof uploads.$inferSelect;

const MS_PER_DAY = 86_400_000;

export async function insertUpload(db: D1Database, row: UploadRow): Promise<void> {
  await drizzle(db).insert(uploads).values(row);
}

/** The owner's uploads newest first, from just after `before` (an upload's createdAt and key). */
export async function listUploads(db: D1Database, owner: string, page: { limit: number; before?: { createdAt: number; key: string } }): Promise<UploadRow[]> {
  const conditions = [eq(uploads.owner, owner)];
  if (page.before) {
    const at = page.before;
    conditions.push(or(lt(uploads.createdAt, at.createdAt), and(eq(uploads.createdAt, at.createdAt), lt(uploads.key, at.key)))!);
  }
  return drizzle(db)
    .select()
    .from(uploads)
    .where(and(...conditions))
    .orderBy(desc(uploads.createdAt), desc(uploads.key))
    .limit(page.limit)
    .all();
}

/** Deletes the owner's upload record; answers whether there was one. */
export async function deleteUpload(db: D1Database, owner: string, key: string): Promise<boolean> {
  const deleted = await drizzle(db)
    .delete(uploads)
    .where(and(eq(uploads.owner, owner), eq(uploads.key, key)))
    .returning({ key: uploads.key })
    .all();
  return deleted.length > 0;
}

/** The oldest `limit` uploads older than their owner's retentionDays (the key's override, else `defaultDays`) at `now`. */
export async function expiredUploads(db: D1Database, now: number, defaultDays: number, limit: number): Promise<UploadRow[]> {
  const days = sql`coalesce(json_extract(${apiKeys.limits}, '$.retentionDays'), ${defaultDays})`;
  const rows = await drizzle(db)
    .select({ upload: uploads })
    .from(uploads)
    .leftJoin(apiKeys, eq(apiKeys.id, uploads.owner))
    .where(sql`${uploads.createdAt} < ${now} - ${days} * ${MS_PER_DAY}`)
    .orderBy(uploads.createdAt)
    .limit(limit)
    .all();
  return rows.map((r) => r.upload);
}

export async function deleteUploadRecords(db: D1Database, keys: readonly string[]): Promise<void> {
  if (keys.length === 0) return;
  await drizzle(db)
    .delete(uploads)
    .where(sql`${uploads.key} IN (SELECT value FROM json_each(${JSON.stringify(keys)}))`);
}
