// A checkpoint that fails to load: the task goes to another node, never back to the one that
// failed it; once it failed on enough nodes, the model is failed with sd-webui's reason, its
// waiting tasks fail with it, submissions are refused, and a new file clears it.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ClaimResponse } from "../../src/protocol/node";
import { ADMIN, call, claim, createKey, createModel, finishTask, json, registerNode, submit } from "./helpers";

interface Submitted {
  taskId: string;
}
interface Result {
  status: string;
  attempts: number;
  message?: string;
}
interface Model {
  status: string;
  failedReason: string | null;
}

const REASON = "Error(s) in loading state_dict for LatentDiffusion: size mismatch for model.diffusion_model.input_blocks.0.0.weight";

async function reportLoadFailure(node: string, claimed: ClaimResponse, sha256: string) {
  const body = {
    leaseId: claimed.lease.id,
    error: `sd-webui could not load ${claimed.task.model.name}`,
    retryable: true,
    modelFailure: { checkpoint: claimed.task.model.name, sha256, kind: "load_failed", reason: REASON },
  };
  await json(await call(`/nodes/tasks/${claimed.task.id}/fail`, { token: node, body }), 200);
}

async function result(user: string, taskId: string): Promise<Result> {
  return json<Result>(await call(`/tasks/${taskId}/result`, { token: user }), 200);
}

describe("model failures", () => {
  it("requeues the task for another node and never gives it back to the node that failed it", async () => {
    const model = "mf-requeue";
    const { sha256 } = await createModel(model);
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, `${model}-bad`, model);
    await registerNode(node, `${model}-good`, model);
    const { taskId } = await json<Submitted>(await submit(user, { stable_diffusion_model: model }), 202);
    const first = (await claim(node, `${model}-bad`))!;
    await reportLoadFailure(node, first, sha256);

    expect(await result(user, taskId)).toMatchObject({ status: "waiting", attempts: 0 });
    expect(await claim(node, `${model}-bad`, 200)).toBeNull();
    const second = (await claim(node, `${model}-good`))!;
    expect(second.task.id).toBe(first.task.id);
    expect(second.task.attempt).toBe(1);
    await finishTask(node, second);
    expect((await result(user, taskId)).status).toBe("succeeded");
    const view = await json<Model>(await call(`/models/${model}`, { token: user }), 200);
    expect(view.status).not.toBe("failed");
  });

  it("fails the model with sd-webui's reason once two nodes failed it; a new file clears it", async () => {
    const model = "mf-everywhere";
    const { sha256 } = await createModel(model);
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, `${model}-n1`, model);
    await registerNode(node, `${model}-n2`, model);
    const { taskId: running } = await json<Submitted>(await submit(user, { stable_diffusion_model: model }), 202);
    const { taskId: waiting } = await json<Submitted>(await submit(user, { stable_diffusion_model: model }), 202);

    await reportLoadFailure(node, (await claim(node, `${model}-n1`))!, sha256);
    const onSecond = (await claim(node, `${model}-n2`))!;
    await reportLoadFailure(node, onSecond, sha256);

    for (const taskId of [running, waiting]) {
      const ended = await result(user, taskId);
      expect(ended.status).toBe("failed");
      expect(ended.message).toContain(REASON);
    }
    const failed = await json<Model>(await call(`/models/${model}`, { token: user }), 200);
    expect(failed).toMatchObject({ status: "failed", failedReason: REASON });

    const refused = await json<{ code: string; detail: string }>(await submit(user, { stable_diffusion_model: model }), 409);
    expect(refused.code).toBe("model_failed");
    expect(refused.detail).toContain(REASON);
    const sdapi = await json<{ detail: string }>(await call("/sdapi/v1/txt2img", { token: user, body: { stable_diffusion_model: model } }), 409);
    expect(sdapi.detail).toContain(REASON);

    // A submission that read the model just before it was marked (simulated by clearing the
    // mark in D1 alone) still fails with the reason rather than waiting for nodes that cannot load it.
    await env.DB.prepare("UPDATE models SET failed_reason = NULL, failed_at = NULL WHERE name = ?").bind(model).run();
    const { taskId: late } = await json<Submitted>(await submit(user, { stable_diffusion_model: model }), 202);
    const lateEnd = await result(user, late);
    expect(lateEnd.status).toBe("failed");
    expect(lateEnd.message).toContain(REASON);

    const reupload = await call(`/models/${model}/file`, { method: "PUT", token: ADMIN, body: new TextEncoder().encode("fixed weights") });
    await json(reupload, 200);
    const cleared = await json<Model>(await call(`/models/${model}`, { token: user }), 200);
    expect(cleared.status).not.toBe("failed");
    expect(cleared.failedReason).toBeNull();
    const { taskId: again } = await json<Submitted>(await submit(user, { stable_diffusion_model: model }), 202);
    const retried = (await claim(node, `${model}-n1`))!;
    await finishTask(node, retried);
    expect((await result(user, again)).status).toBe("succeeded");
  });

  it("retries a report about a file the model no longer has as any retryable failure, counted", async () => {
    const model = "mf-stale";
    const { sha256: old } = await createModel(model);
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, `${model}-n1`, model);
    const { taskId } = await json<Submitted>(await submit(user, { stable_diffusion_model: model }), 202);
    const claimed = (await claim(node, `${model}-n1`))!;
    await json(await call(`/models/${model}/file`, { method: "PUT", token: ADMIN, body: new TextEncoder().encode("new weights") }), 200);
    await reportLoadFailure(node, claimed, old);

    expect(await result(user, taskId)).toMatchObject({ status: "waiting", attempts: 1 });
    expect((await json<Model>(await call(`/models/${model}`, { token: user }), 200)).status).not.toBe("failed");
    // The node is not barred from the checkpoint: the failure was about the old file.
    const again = (await claim(node, `${model}-n1`))!;
    expect(again.task.attempt).toBe(2);
  });
});

describe("a re-uploaded checkpoint", () => {
  it("reaches the tasks already waiting for it: their claim names the new file, not the one they were submitted with", async () => {
    const model = "reupload-waiting";
    const { sha256: first } = await createModel(model, "first weights");
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, `${model}-node`, model);
    const { taskId } = await json<Submitted>(await submit(user, { stable_diffusion_model: model }), 202);

    const res = await call(`/models/${model}/file`, { method: "PUT", token: ADMIN, body: new TextEncoder().encode("second, longer weights") });
    const { sha256: second } = await json<{ sha256: string }>(res, 200);
    expect(second).not.toBe(first);

    const claimed = (await claim(node, `${model}-node`))!;
    expect(claimed.task.model).toMatchObject({ name: model, sha256: second, sizeBytes: "second, longer weights".length });
    await finishTask(node, claimed);
    expect((await result(user, taskId)).status).toBe("succeeded");
  });
});
