// A revoked key's work stops: each checkpoint queue where D1 shows the key's tasks live cancels
// the waiting ones and asks the nodes to stop the running ones (they see it on their next progress).
import { liveCheckpointsOf } from "../db/tasks";
import { queueStub } from "../fleet/stub";

export async function stopKeyWork(env: Env, owner: string, reason: string): Promise<{ cancelled: number; cancelling: number }> {
  const checkpoints = await liveCheckpointsOf(env.DB, owner);
  const outcomes = await Promise.all(checkpoints.map((checkpoint) => queueStub(env, checkpoint).cancelOwner(owner, reason)));
  return {
    cancelled: outcomes.reduce((sum, o) => sum + o.cancelled, 0),
    cancelling: outcomes.reduce((sum, o) => sum + o.cancelling, 0),
  };
}
