// Waiting for a task to end (sync requests of both surfaces).
import { findTaskByUid, type TaskRow } from "../db/tasks";
import { queueStub } from "../fleet/stub";

export function isLive(task: TaskRow): boolean {
  return task.status === "waiting" || task.status === "running";
}

/** Waits (up to SYNC_WAIT_MS) for a task to end; returns its row as it then stands. */
export async function waitForTask(env: Env, task: TaskRow, timeoutMs: number): Promise<TaskRow> {
  if (!isLive(task)) return task;
  const ending = await queueStub(env, task.checkpoint).waitForEnd(task.uid, timeoutMs);
  // The queue hands over what it wrote to D1, saving a read on every sync request.
  if (typeof ending === "object") return { ...task, ...ending };
  return (await findTaskByUid(env.DB, task.uid)) ?? task;
}
