// The D1 side of task transitions: what CheckpointQueue writes so a task's row follows every
// change (through its outbox, src/queue/d1-outbox.ts).
import { and, eq } from "drizzle-orm";
import { type DrizzleD1Database, drizzle } from "drizzle-orm/d1";
import { tasks } from "./schema";

export interface TaskEnding {
  status: "succeeded" | "failed" | "cancelled";
  finishedAt: number;
  attempts?: number;
  error?: string | null;
  webuiError?: { status: number; body: unknown } | null;
  imageKeys?: string[];
  parameters?: Record<string, unknown>;
  info?: unknown;
  passthroughResult?: { status: number; body: unknown } | null;
  timings?: Record<string, number> | null;
}

/** One transition of one task, as the queue records it. */
export type TaskRecord =
  | { uid: string; kind: "created"; row: typeof tasks.$inferInsert }
  | { uid: string; kind: "running"; attempts: number; nodeId: string; startedAt: number }
  | { uid: string; kind: "waiting"; attempts: number; error: string | null }
  | { uid: string; kind: "ended"; ending: TaskEnding }
  /** A task the queue never received ends: only a row still waiting (one that ran has a newer record). */
  | { uid: string; kind: "ended_unqueued"; ending: TaskEnding };

/** Applies the records to D1 in order, in one batch: all of them or none. */
export async function applyTaskRecords(db: D1Database, records: readonly TaskRecord[]): Promise<void> {
  const d = drizzle(db);
  const [first, ...rest] = records.map((record) => taskRecordQuery(d, record));
  if (!first) return;
  await d.batch([first, ...rest]);
}

/** What the task is billed: sd-webui's time as the node reported it, the checkpoint's load apart, and its images. */
function metering(ending: TaskEnding): { gpuMs: number | null; modelLoadMs: number | null; imageCount: number } {
  const round = (ms: number | undefined) => (ms === undefined ? null : Math.round(ms));
  return { gpuMs: round(ending.timings?.webuiMs), modelLoadMs: round(ending.timings?.modelMs), imageCount: ending.imageKeys?.length ?? 0 };
}

/** The statement that brings the task's row to `record`. */
function taskRecordQuery(d: DrizzleD1Database, record: TaskRecord) {
  const where = eq(tasks.uid, record.uid);
  switch (record.kind) {
    case "created":
      // Applied again after an ambiguous failure, it must not fail for good.
      return d.insert(tasks).values(record.row).onConflictDoNothing({ target: tasks.uid });
    case "running":
      return d.update(tasks).set({ status: "running", attempts: record.attempts, nodeId: record.nodeId, startedAt: record.startedAt }).where(where);
    case "waiting":
      return d.update(tasks).set({ status: "waiting", nodeId: null, startedAt: null, attempts: record.attempts, error: record.error }).where(where);
    case "ended":
      return d
        .update(tasks)
        .set({ ...record.ending, ...metering(record.ending) })
        .where(where);
    case "ended_unqueued":
      return d
        .update(tasks)
        .set(record.ending)
        .where(and(where, eq(tasks.status, "waiting")));
  }
}
