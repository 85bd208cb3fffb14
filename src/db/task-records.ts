// The D1 side of task transitions: CheckpointQueue calls these so the row follows every change.
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { tasks } from "./schema";

export async function recordRunning(db: D1Database, uid: string, fields: { attempts: number; nodeId: string; startedAt: number }): Promise<void> {
  await drizzle(db).update(tasks).set({ status: "running", ...fields }).where(eq(tasks.uid, uid));
}

export async function recordWaiting(db: D1Database, uid: string, fields: { attempts: number; error: string | null }): Promise<void> {
  await drizzle(db).update(tasks).set({ status: "waiting", nodeId: null, startedAt: null, ...fields }).where(eq(tasks.uid, uid));
}

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

export async function recordEnded(db: D1Database, uid: string, ending: TaskEnding): Promise<void> {
  await drizzle(db).update(tasks).set(ending).where(eq(tasks.uid, uid));
}
