// A task's live state (queue position, progress) from its queue, while it waits or runs.
import type { TaskRow } from "../db/tasks";
import { queueStub } from "../fleet/stub";
import type { LiveStatus } from "../queue/types";
import { isLive } from "./wait";

export function liveStatus(env: Env, task: TaskRow): Promise<LiveStatus | null> {
  if (!isLive(task)) return Promise.resolve(null);
  return queueStub(env, task.checkpoint).status(task.uid);
}
