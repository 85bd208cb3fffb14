// Tasks accepted but never queued. A submission stores its D1 row before it enqueues the task
// (the row's unique indexes are what refuse a duplicate task id or Idempotency-Key, atomically,
// across every checkpoint), so a Worker that stops between the two leaves a `waiting` row no
// queue holds. A scheduled sweep ends such rows failed, with the reason; cancelling one ends it
// at once. Ending goes through the task's queue (endUnqueued), which leaves alone a task it does
// hold and refuses the enqueue should it still arrive, so a task never both runs and ends here.
import { waitingTasksCreatedBefore } from "../db/tasks";
import { queueStub } from "../fleet/stub";

/** A submission enqueues within moments of its insert; a waiting row this old may have been left behind. */
export const UNQUEUED_AFTER_MS = 60_000;
/** Most rows one sweep looks at (the oldest first). */
const SWEEP_LIMIT = 500;

export const UNQUEUED_REASON = "The gateway stopped before it queued the task; submit it again";

/** Ends the waiting tasks created before `now - UNQUEUED_AFTER_MS` that no queue holds; answers how many. */
export async function endUnqueuedTasks(env: Env, now = Date.now()): Promise<number> {
  const rows = await waitingTasksCreatedBefore(env.DB, now - UNQUEUED_AFTER_MS, SWEEP_LIMIT);
  const byCheckpoint = new Map<string, string[]>();
  for (const row of rows) byCheckpoint.set(row.checkpoint, [...(byCheckpoint.get(row.checkpoint) ?? []), row.uid]);
  const ended = await Promise.all(
    [...byCheckpoint].map(([checkpoint, uids]) => queueStub(env, checkpoint).endUnqueued(uids, { status: "failed", error: UNQUEUED_REASON })),
  );
  return ended.reduce((sum, uids) => sum + uids.length, 0);
}
