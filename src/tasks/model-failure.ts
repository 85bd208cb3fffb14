// A node could not run a task on its checkpoint's weights (sd-webui failed to load the file, or
// answered with another model's hash). Fleet stops sending the checkpoint to that node; once it
// has failed on enough of the nodes that could serve it, the model is marked failed in the
// registry with sd-webui's reason and its waiting tasks end failed with it, instead of cycling
// through nodes that cannot load it. A new file clears the mark (src/routes/models.ts).
import { findModel, updateModel } from "../db/models";
import { fleetStub, queueStub } from "../fleet/stub";
import type { FailRequest } from "../protocol/node";

export type ModelFailureReport = NonNullable<FailRequest["modelFailure"]>;

/** The model is failed once this many distinct nodes failed it (or every eligible node, when fewer). */
export const MODEL_FAILURE_NODE_LIMIT = 2;

export function modelHasFailed(failedNodes: number, eligibleNodes: number): boolean {
  return failedNodes >= Math.min(MODEL_FAILURE_NODE_LIMIT, eligibleNodes);
}

export function modelFailedMessage(checkpoint: string, reason: string): string {
  return `Model ${checkpoint} failed to load on the nodes that could serve it: ${reason}`;
}

/**
 * `stale_file`: the report is about a file the model no longer has (re-uploaded or deleted
 * meanwhile), so it says nothing about the current one, and the task is retried as after any
 * retryable failure (counted, so it cannot cycle). `noted`: Fleet stops sending the checkpoint
 * to that node. `model_failed`: and it has now failed on enough nodes.
 */
export type ModelFailureOutcome = "stale_file" | "noted" | "model_failed";

/** Records the node's failure with Fleet, and answers what follows from it. */
export async function recordModelFailure(env: Env, nodeId: string, checkpoint: string, report: ModelFailureReport): Promise<ModelFailureOutcome> {
  const model = await findModel(env.DB, checkpoint);
  if (!model || model.sha256 !== report.sha256) return "stale_file";
  const { failedNodes, eligibleNodes } = await fleetStub(env).recordModelFailure(nodeId, checkpoint);
  return modelHasFailed(failedNodes, eligibleNodes) ? "model_failed" : "noted";
}

/** Marks the model's file failed with sd-webui's reason and ends every task waiting for it. */
export async function markModelFailed(env: Env, checkpoint: string, report: ModelFailureReport): Promise<void> {
  await updateModel(env.DB, checkpoint, { failedReason: report.reason, failedAt: Date.now() });
  await queueStub(env, checkpoint).failWaiting(modelFailedMessage(checkpoint, report.reason), report.sha256);
}
