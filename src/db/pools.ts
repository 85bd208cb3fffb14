// Pool rows in D1: per-checkpoint configuration (absent row = the defaults, src/pools/settings.ts).
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { pools } from "./schema";

export type PoolRow = typeof pools.$inferSelect;

export async function findPool(db: D1Database, checkpoint: string): Promise<PoolRow | null> {
  return (await drizzle(db).select().from(pools).where(eq(pools.checkpoint, checkpoint)).get()) ?? null;
}

export async function listPools(db: D1Database): Promise<PoolRow[]> {
  return drizzle(db).select().from(pools).all();
}

/** Statements per D1 batch: one round trip each, well under D1's limits. */
const SAVE_BATCH_ROWS = 100;

/** Saves many rows in a few D1 batches instead of a round trip each. */
export async function savePools(db: D1Database, rows: readonly PoolRow[]): Promise<void> {
  const d = drizzle(db);
  for (let i = 0; i < rows.length; i += SAVE_BATCH_ROWS) {
    const [first, ...rest] = rows
      .slice(i, i + SAVE_BATCH_ROWS)
      .map((row) => d.insert(pools).values(row).onConflictDoUpdate({ target: pools.checkpoint, set: row }));
    await d.batch([first!, ...rest]);
  }
}

export async function deletePool(db: D1Database, checkpoint: string): Promise<void> {
  await drizzle(db).delete(pools).where(eq(pools.checkpoint, checkpoint));
}
