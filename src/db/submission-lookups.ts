// Everything a submission needs from D1, read in one round trip: the key's options, the model
// the request names with its pool, the registered add-ons, an earlier task under the same
// Idempotency-Key, and whether the client-chosen task id is taken.
import { and, eq, ne } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { ModelRow } from "./models";
import type { PoolRow } from "./pools";
import { keyOptions, models, pools, tasks } from "./schema";
import type { TaskRow } from "./tasks";

export interface SubmissionLookups {
  options: Record<string, unknown>;
  /** The model whose name is exactly what the request names, with its pool row. */
  named: { model: ModelRow; pool: PoolRow | null } | null;
  /** Every registered model that is not a checkpoint (rows may carry the original's type names). */
  addons: ModelRow[];
  earlier: TaskRow | null;
  idTaken: boolean;
}

export async function lookUpSubmission(
  db: D1Database,
  owner: string,
  wanted: { checkpoint: string | null; idempotencyKey: string | null; clientTaskId: string | null },
): Promise<SubmissionLookups> {
  const d = drizzle(db);
  const [optionRows, modelRows, addonRows, earlierRows, idRows] = await d.batch([
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
  ]);
  const named = wanted.checkpoint ? modelRows[0] : undefined;
  return {
    options: optionRows[0]?.options ?? {},
    named: named ? { model: named.models, pool: named.pools } : null,
    addons: addonRows,
    earlier: wanted.idempotencyKey ? (earlierRows[0] ?? null) : null,
    idTaken: wanted.clientTaskId !== null && idRows.length > 0,
  };
}
