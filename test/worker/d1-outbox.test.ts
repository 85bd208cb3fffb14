// The queue's D1 outbox: a transition counts the moment the queue records it; when D1 refuses
// the write, the task's row catches up later instead of being left behind for good.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { CheckpointQueue } from "../../src/queue/checkpoint-queue";
import { call, claim, createKey, createModel, finishTask, json, queueOf, registerNode, submit } from "./helpers";

interface Result {
  status: string;
  attempts: number;
  images: string[];
  ossUrl: string[];
}

/** D1 as it is during an outage: statements can be built, none runs. */
const downD1 = new Proxy(env.DB, {
  get(target, property) {
    if (property === "batch" || property === "exec")
      return async () => {
        throw new Error("D1 is unavailable");
      };
    const value = Reflect.get(target, property) as unknown;
    return typeof value === "function" ? value.bind(target) : value;
  },
});

const setD1 = (checkpoint: string, db: D1Database) =>
  runInDurableObject(queueOf(checkpoint), (queue: CheckpointQueue) => {
    queue.d1 = () => db;
  });

/** A model, a user, and a node with the model loaded. */
async function setup(model: string) {
  await createModel(model);
  const user = await createKey("user");
  const node = await createKey("node");
  await registerNode(node, `${model}-n1`, model);
  return { user, node };
}

describe("D1 outbox", () => {
  it("a completion made while D1 is down reaches the task's row once D1 is back", async () => {
    const model = "outbox-outage";
    const { user, node } = await setup(model);
    const { taskId } = await json<{ taskId: string }>(await submit(user, { stable_diffusion_model: model }), 202);
    const claimed = (await claim(node, `${model}-n1`))!;
    expect((await json<Result>(await call(`/tasks/${taskId}/result`, { token: user }), 200)).status).toBe("running");

    await setD1(model, downD1);
    await finishTask(node, claimed); // the node's complete is accepted: the queue has recorded it
    expect((await json<Result>(await call(`/tasks/${taskId}/result`, { token: user }), 200)).status).toBe("running");
    // The lease is gone with the completion: the same complete again is refused, not redone.
    expect((await call(`/nodes/tasks/${claimed.task.id}/complete`, { token: node, body: { leaseId: claimed.lease.id, imageCount: 1 } })).status).toBe(409);

    await setD1(model, env.DB);
    expect(await runDurableObjectAlarm(queueOf(model))).toBe(true);
    const done = await json<Result>(await call(`/tasks/${taskId}/result`, { token: user }), 200);
    expect(done).toMatchObject({ status: "succeeded", attempts: 1 });
    expect(done.images).toHaveLength(1);
    const image = await call(new URL(done.ossUrl[0]!).pathname + new URL(done.ossUrl[0]!).search);
    expect(image.status).toBe(200);
    expect(image.headers.get("content-type")).toBe("image/png");
  });

  it("a sync task is answered while D1 refuses its records; its row appears once D1 is back", async () => {
    const model = "outbox-sync";
    const { user, node } = await setup(model);
    await setD1(model, downD1);

    const answering = call("/txt2img", { token: user, body: { stable_diffusion_model: model, prompt: "a lighthouse" } });
    const claimed = (await claim(node, `${model}-n1`))!;
    await finishTask(node, claimed);
    const answer = await json<{ taskId: string; status: string; ossUrl: string[] }>(await answering, 200);
    expect(answer.status).toBe("succeeded");
    expect(answer.ossUrl).toHaveLength(1);
    // Its row is still in the queue's outbox: D1 does not know the task yet.
    expect((await call(`/tasks/${answer.taskId}/result`, { token: user })).status).toBe(404);

    await setD1(model, env.DB);
    expect(await runDurableObjectAlarm(queueOf(model))).toBe(true);
    const done = await json<Result>(await call(`/tasks/${answer.taskId}/result`, { token: user }), 200);
    expect(done).toMatchObject({ status: "succeeded", attempts: 1 });
    expect(done.images).toHaveLength(1);
  });

  it("a sync task can be read the moment it is answered, however fast it ran", async () => {
    const model = "outbox-fast";
    const { user, node } = await setup(model);
    // Records wait far longer than the task takes: its row is still in the outbox when it ends.
    await runInDurableObject(queueOf(model), (queue: CheckpointQueue) => {
      queue.outboxDelayMs = 60_000;
    });
    const answering = call("/txt2img", { token: user, body: { stable_diffusion_model: model, prompt: "quick" } });
    await finishTask(node, (await claim(node, `${model}-n1`))!);
    const answer = await json<{ taskId: string; status: string }>(await answering, 200);
    const read = await json<Result>(await call(`/tasks/${answer.taskId}/result`, { token: user }), 200);
    expect(read).toMatchObject({ status: "succeeded", attempts: 1 });
  });
});
