// Which checkpoint (so which queue) a task belongs to, and its kind. Node calls about a task
// arrive several times a second while it runs; the answer never changes, so it is remembered in
// the isolate instead of read from D1 each time.
import { ApiError } from "../errors";
import type { TaskKind } from "../protocol/node";
import { findTaskByUid } from "./submit";

export interface TaskPlacement {
  checkpoint: string;
  kind: TaskKind;
}

const MAX_REMEMBERED = 10_000;
const remembered = new Map<string, TaskPlacement>();

export async function taskPlacement(db: D1Database, uid: string): Promise<TaskPlacement> {
  const known = remembered.get(uid);
  if (known) return known;
  const task = await findTaskByUid(db, uid);
  if (!task) throw new ApiError("task_not_found", `No task ${uid}`);
  if (remembered.size >= MAX_REMEMBERED) remembered.delete(remembered.keys().next().value!);
  const placement = { checkpoint: task.checkpoint, kind: task.kind };
  remembered.set(uid, placement);
  return placement;
}
