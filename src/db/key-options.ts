// Per-key default sd-webui options (POST /options), merged under each of that key's requests.
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { keyOptions } from "./schema";

export async function readKeyOptions(db: D1Database, owner: string): Promise<Record<string, unknown>> {
  const row = await drizzle(db).select({ options: keyOptions.options }).from(keyOptions).where(eq(keyOptions.owner, owner)).get();
  return row?.options ?? {};
}

/** Merges `changes` into the key's options (a null value removes that option) and returns the result. */
export async function updateKeyOptions(db: D1Database, owner: string, changes: Record<string, unknown>): Promise<Record<string, unknown>> {
  const merged = { ...(await readKeyOptions(db, owner)), ...changes };
  for (const [k, v] of Object.entries(merged)) if (v === null) delete merged[k];
  const now = Date.now();
  await drizzle(db)
    .insert(keyOptions)
    .values({ owner, options: merged, updatedAt: now })
    .onConflictDoUpdate({ target: keyOptions.owner, set: { options: merged, updatedAt: now } });
  return merged;
}
