// Per-key default sd-webui options (POST /options), merged under each of that key's requests.
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { ApiError } from "../errors";
import { keyOptions } from "./schema";

export async function readKeyOptions(db: D1Database, owner: string): Promise<Record<string, unknown>> {
  const row = await drizzle(db).select({ options: keyOptions.options }).from(keyOptions).where(eq(keyOptions.owner, owner)).get();
  return row?.options ?? {};
}

/** Largest serialized set of one key's options: they are merged into every request of the key. */
export const MAX_KEY_OPTIONS_BYTES = 64 * 1024;

/** Merges `changes` into the key's options (a null value removes that option) and returns the result. */
export async function updateKeyOptions(db: D1Database, owner: string, changes: Record<string, unknown>): Promise<Record<string, unknown>> {
  const merged = { ...(await readKeyOptions(db, owner)), ...changes };
  for (const [k, v] of Object.entries(merged)) if (v === null) delete merged[k];
  const bytes = new TextEncoder().encode(JSON.stringify(merged)).byteLength;
  if (bytes > MAX_KEY_OPTIONS_BYTES)
    throw new ApiError(
      "payload_too_large",
      `A key's options are limited to ${MAX_KEY_OPTIONS_BYTES} bytes of JSON; these would be ${bytes}. Nothing was saved`,
    );
  const now = Date.now();
  await drizzle(db)
    .insert(keyOptions)
    .values({ owner, options: merged, updatedAt: now })
    .onConflictDoUpdate({ target: keyOptions.owner, set: { options: merged, updatedAt: now } });
  return merged;
}
