// A Worker that stops between a submission's D1 insert and its enqueue leaves a waiting row no
// queue holds: cancelling it works, and the scheduled sweep ends it failed with the reason; a
// task its queue does hold is left alone, and the late enqueue of an ended one never runs.
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { findTask, insertTask, type TaskRow } from "../../src/db/tasks";
import worker from "../../src/index";
import { UNQUEUED_AFTER_MS, UNQUEUED_REASON } from "../../src/tasks/unqueued";
import { call, claim, createKey, createModel, json, queuedTask, queueOf, registerNode, submit } from "./helpers";

interface Result {
  status: string;
  message?: string;
}

/** A task submitted normally (queued), and a copy of its row as a submission that stopped before enqueueing leaves it. */
async function queuedAndStranded(model: string, strandedId: string): Promise<{ user: string; queued: TaskRow; stranded: TaskRow }> {
  await createModel(model);
  const user = await createKey("user");
  const { taskId } = await json<{ taskId: string }>(await submit(user, { stable_diffusion_model: model }), 202);
  const owner = (await env.DB.prepare("SELECT owner FROM tasks WHERE task_id = ?").bind(taskId).first<{ owner: string }>())!.owner;
  const queued = (await findTask(env.DB, owner, taskId))!;
  const stranded: TaskRow = { ...queued, uid: `t_${strandedId}`, taskId: strandedId, createdAt: Date.now() - UNQUEUED_AFTER_MS - 1000 };
  await insertTask(env.DB, stranded);
  return { user, queued, stranded };
}

async function runScheduled(): Promise<void> {
  const ctx = createExecutionContext();
  worker.scheduled(createScheduledController(), env, ctx);
  await waitOnExecutionContext(ctx);
}

describe("tasks accepted but never queued", () => {
  it("cancels one at once", async () => {
    const { user } = await queuedAndStranded("unq-cancel", "stranded-cancel");
    const answer = await json<{ status: string }>(await call("/tasks/stranded-cancel/cancellation", { token: user, method: "POST" }), 200);
    expect(answer.status).toBe("cancelled");
    expect((await json<Result>(await call("/tasks/stranded-cancel/result", { token: user }), 200)).status).toBe("cancelled");
  });

  it("ends one failed with the reason on the scheduled sweep; the queued task still runs, the stranded one never does", async () => {
    const { user, queued, stranded } = await queuedAndStranded("unq-sweep", "stranded-sweep");
    await runScheduled();
    const result = await json<Result>(await call("/tasks/stranded-sweep/result", { token: user }), 200);
    expect(result).toMatchObject({ status: "failed", message: UNQUEUED_REASON });
    // Had the stopped submission's enqueue still arrived, the task would not run.
    await queueOf("unq-sweep").enqueue(queuedTask(stranded.uid, stranded.owner, { taskId: stranded.taskId, checkpoint: "unq-sweep", sha256: "a".repeat(64) }), {
      ...(await queueOf("unq-sweep").summary()),
    });
    const node = await createKey("node");
    await registerNode(node, "unq-sweep-n1", "unq-sweep");
    expect((await claim(node, "unq-sweep-n1"))?.task.id).toBe(queued.uid);
    expect(await queueOf("unq-sweep").summary()).toMatchObject({ waiting: 0, running: 1 });
    expect((await json<Result>(await call("/tasks/stranded-sweep/result", { token: user }), 200)).status).toBe("failed");
    expect((await json<Result>(await call(`/tasks/${queued.taskId}/result`, { token: user }), 200)).status).toBe("running");
  });
});
