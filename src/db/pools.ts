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

export async function savePool(db: D1Database, row: PoolRow): Promise<void> {
  await drizzle(db).insert(pools).values(row).onConflictDoUpdate({ target: pools.checkpoint, set: row });
}

export async function deletePool(db: D1Database, checkpoint: string): Promise<void> {
  await drizzle(db).delete(pools).where(eq(pools.checkpoint, checkpoint));
}
