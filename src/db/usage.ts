// Metering read back: what keys' ended tasks used (sd-webui time, model loads, images), from the
// columns the queue's outbox writes when a task ends (./task-records.ts).
import { and, count, eq, gte, isNotNull, lt, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { tasks } from "./schema";

export interface UsageRow {
  key: string;
  /** UTC day (YYYY-MM-DD) the tasks ended, when grouped by day. */
  day: string | null;
  tasks: number;
  gpuMs: number;
  modelLoadMs: number;
  images: number;
}

const sums = {
  tasks: count(),
  gpuMs: sql<number>`coalesce(sum(${tasks.gpuMs}), 0)`,
  modelLoadMs: sql<number>`coalesce(sum(${tasks.modelLoadMs}), 0)`,
  images: sql<number>`coalesce(sum(${tasks.imageCount}), 0)`,
};

/** Tasks that ended in [from, to), per key (one key, or all), per UTC day or over the whole range. */
export async function usage(db: D1Database, range: { from: number; to: number; key: string | null; byDay: boolean }): Promise<UsageRow[]> {
  const day = sql<string>`strftime('%Y-%m-%d', ${tasks.finishedAt} / 1000, 'unixepoch')`;
  const conditions = [gte(tasks.finishedAt, range.from), lt(tasks.finishedAt, range.to)];
  if (range.key) conditions.push(eq(tasks.owner, range.key));
  const d = drizzle(db);
  if (range.byDay) {
    const rows = await d
      .select({ key: tasks.owner, day, ...sums })
      .from(tasks)
      .where(and(...conditions))
      .groupBy(tasks.owner, day)
      .orderBy(day, tasks.owner)
      .all();
    return rows;
  }
  const rows = await d
    .select({ key: tasks.owner, ...sums })
    .from(tasks)
    .where(and(...conditions))
    .groupBy(tasks.owner)
    .orderBy(tasks.owner)
    .all();
  return rows.map((r) => ({ ...r, day: null }));
}

/** Every key's totals over all its ended tasks, for /metrics counters. */
export async function usageTotals(db: D1Database): Promise<Array<Omit<UsageRow, "day">>> {
  return drizzle(db)
    .select({ key: tasks.owner, ...sums })
    .from(tasks)
    .where(isNotNull(tasks.finishedAt))
    .groupBy(tasks.owner)
    .orderBy(tasks.owner)
    .all();
}
