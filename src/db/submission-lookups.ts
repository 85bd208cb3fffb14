// Everything a submission needs from D1, read in one round trip: the key's options, the model
// the request names with its pool, the registered add-ons, an earlier task under the same
// Idempotency-Key, whether the client-chosen task id is taken, and what the key uses now (its
// waiting tasks, today's GPU time and images) for its limits, and whether the key was revoked
// since this isolate remembered it (src/auth/middleware.ts KEY_MEMO_MS).
import { and, eq, gte, isNotNull, ne, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { KeyUsageNow } from "../tenants/admission";
import type { ModelRow } from "./models";
import type { PoolRow } from "./pools";
import { apiKeys, keyOptions, models, pools, tasks } from "./schema";
import type { TaskRow } from "./tasks";

export interface SubmissionLookups {
  options: Record<string, unknown>;
  /** The model whose name is exactly what the request names, with its pool row. */
  named: { model: ModelRow; pool: PoolRow | null } | null;
  /** Every registered model that is not a checkpoint (rows may carry the original's type names). */
  addons: ModelRow[];
  earlier: TaskRow | null;
  idTaken: boolean;
  usage: KeyUsageNow;
  revoked: boolean;
}

export async function lookUpSubmission(
  db: D1Database,
  owner: string,
  wanted: { checkpoint: string | null; idempotencyKey: string | null; clientTaskId: string | null; dayStart: number },
): Promise<SubmissionLookups> {
  const d = drizzle(db);
  const [optionRows, modelRows, addonRows, earlierRows, idRows, waitingRows, todayRows, revokedRows] = await d.batch([
    d.select({ options: keyOptions.options }).from(keyOptions).where(eq(keyOptions.owner, owner)),
    d
      .select()
      .from(models)
      .leftJoin(pools, eq(pools.checkpoint, models.name))
      .where(eq(models.name, wanted.checkpoint ?? "")),
    d
      .select()
      .from(models)
      .where(and(ne(models.type, "checkpoint"), ne(models.type, "stableDiffusion"))),
    d
      .select()
      .from(tasks)
      .where(and(eq(tasks.owner, owner), eq(tasks.idempotencyKey, wanted.idempotencyKey ?? ""))),
    d
      .select({ uid: tasks.uid })
      .from(tasks)
      .where(and(eq(tasks.owner, owner), eq(tasks.taskId, wanted.clientTaskId ?? ""))),
    d
      .select({ n: sql<number>`count(*)` })
      .from(tasks)
      .where(and(eq(tasks.owner, owner), eq(tasks.status, "waiting"))),
    d
      .select({ gpuMs: sql<number>`coalesce(sum(${tasks.gpuMs}), 0)`, images: sql<number>`coalesce(sum(${tasks.imageCount}), 0)` })
      .from(tasks)
      .where(and(eq(tasks.owner, owner), gte(tasks.finishedAt, wanted.dayStart))),
    d
      .select({ id: apiKeys.id })
      .from(apiKeys)
      .where(and(eq(apiKeys.id, owner), isNotNull(apiKeys.revokedAt))),
  ]);
  const named = wanted.checkpoint ? modelRows[0] : undefined;
  return {
    options: optionRows[0]?.options ?? {},
    named: named ? { model: named.models, pool: named.pools } : null,
    addons: addonRows,
    earlier: wanted.idempotencyKey ? (earlierRows[0] ?? null) : null,
    idTaken: wanted.clientTaskId !== null && idRows.length > 0,
    usage: { waiting: waitingRows[0]?.n ?? 0, gpuMsToday: todayRows[0]?.gpuMs ?? 0, imagesToday: todayRows[0]?.images ?? 0 },
    revoked: revokedRows.length > 0,
  };
}
