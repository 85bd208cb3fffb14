// Leases: expiry through the alarm, retries, giving up, stale-lease fencing; cancellation.
import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { advanceQueueClock, call, claim, createKey, createModel, finishTask, json, queueOf, registerNode, submit, TINY_PNG } from "./helpers";

interface Submitted {
  taskId: string;
  status: string;
}
interface Result {
  status: string;
  attempts: number;
  message?: string;
  images: string[];
}

async function setup(model: string) {
  await createModel(model);
  const user = await createKey("user");
  const node = await createKey("node");
  // Both nodes have the checkpoint loaded, so affinity sends them this test's work first.
  await registerNode(node, `${model}-n1`, model);
  await registerNode(node, `${model}-n2`, model);
  return { user, node };
}

const LEASE_MS = 2000; // vitest.workers.config.ts
const MAX_ATTEMPTS = 3; // wrangler.toml
const MAX_INFRA_RETRIES = 10; // wrangler.toml

describe("leases", () => {
  it("re-queues a task whose lease ran out, with attempts+1, past MAX_ATTEMPTS: losing its node is not the task's failure", async () => {
    const { user, node } = await setup("lease-expiry");
    const { taskId } = await json<Submitted>(await submit(user, { stable_diffusion_model: "lease-expiry" }), 202);
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const claimed = (await claim(node, attempt % 2 ? "lease-expiry-n1" : "lease-expiry-n2"))!;
      expect(claimed.task.attempt).toBe(attempt);
      const running = await json<Result>(await call(`/tasks/${taskId}/result`, { token: user }), 200);
      expect(running).toMatchObject({ status: "running", attempts: attempt });
      await advanceQueueClock("lease-expiry", LEASE_MS + 1);
      expect(await runDurableObjectAlarm(queueOf("lease-expiry"))).toBe(true);
    }
    expect((await json<Result>(await call(`/tasks/${taskId}/result`, { token: user }), 200)).status).toBe("waiting");
    await finishTask(node, (await claim(node, "lease-expiry-n1"))!);
    expect(await json<Result>(await call(`/tasks/${taskId}/result`, { token: user }), 200)).toMatchObject({ status: "succeeded", attempts: MAX_ATTEMPTS + 1 });
  });

  it("gives up on a task after MAX_INFRA_RETRIES runs lost to nodes or sd-webui", async () => {
    const { user, node } = await setup("lease-infra");
    const { taskId } = await json<Submitted>(await submit(user, { stable_diffusion_model: "lease-infra" }), 202);
    for (let lost = 1; lost <= MAX_INFRA_RETRIES + 1; lost++) {
      const claimed = (await claim(node, lost % 2 ? "lease-infra-n1" : "lease-infra-n2"))!;
      if (lost % 2) {
        await advanceQueueClock("lease-infra", LEASE_MS + 1);
        await runDurableObjectAlarm(queueOf("lease-infra"));
      } else {
        const body = { leaseId: claimed.lease.id, error: "sd-webui crashed", retryable: true, infrastructure: true };
        await json(await call(`/nodes/tasks/${claimed.task.id}/fail`, { token: node, body }), 200);
      }
    }
    const failed = await json<Result>(await call(`/tasks/${taskId}/result`, { token: user }), 200);
    expect(failed).toMatchObject({ status: "failed", attempts: MAX_INFRA_RETRIES + 1 });
    expect(failed.message).toMatch(new RegExp(`^Gave up after ${MAX_INFRA_RETRIES + 1} runs lost to nodes or sd-webui`));
  });

  it("gives up on a task that fails by itself (retryably) after MAX_ATTEMPTS, whatever runs nodes lost", async () => {
    const { user, node } = await setup("lease-own");
    const { taskId } = await json<Submitted>(await submit(user, { stable_diffusion_model: "lease-own" }), 202);
    await claim(node, "lease-own-n1");
    await advanceQueueClock("lease-own", LEASE_MS + 1);
    await runDurableObjectAlarm(queueOf("lease-own"));
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const claimed = (await claim(node, attempt % 2 ? "lease-own-n2" : "lease-own-n1"))!;
      const body = { leaseId: claimed.lease.id, error: "sd-webui returned an empty image at index 0", retryable: true };
      await json(await call(`/nodes/tasks/${claimed.task.id}/fail`, { token: node, body }), 200);
    }
    const failed = await json<Result>(await call(`/tasks/${taskId}/result`, { token: user }), 200);
    expect(failed).toMatchObject({ status: "failed", attempts: MAX_ATTEMPTS + 1 });
    expect(failed.message).toBe(`Gave up after ${MAX_ATTEMPTS} attempts: sd-webui returned an empty image at index 0`);
  });

  it("refuses a stale lease with 409 and changes nothing; the retry finishes exactly once", async () => {
    const { user, node } = await setup("lease-stale");
    const { taskId } = await json<Submitted>(await submit(user, { stable_diffusion_model: "lease-stale" }), 202);
    const first = (await claim(node, "lease-stale-n1"))!;
    await advanceQueueClock("lease-stale", LEASE_MS + 1);
    await runDurableObjectAlarm(queueOf("lease-stale"));
    const second = (await claim(node, "lease-stale-n2"))!;
    expect(second.task.id).toBe(first.task.id);
    expect(second.lease.id).not.toBe(first.lease.id);

    const staleProgress = await json<{ code: string }>(
      await call(`/nodes/tasks/${first.task.id}/progress`, { token: node, body: { leaseId: first.lease.id, progress: 0.9 } }),
      409,
    );
    expect(staleProgress.code).toBe("stale_lease");
    const staleUpload = await call(`/nodes/tasks/${first.task.id}/images/0`, {
      method: "PUT",
      token: node,
      body: TINY_PNG,
      headers: { "lease-id": first.lease.id },
    });
    expect(staleUpload.status).toBe(409);
    const staleComplete = await call(`/nodes/tasks/${first.task.id}/complete`, { token: node, body: { leaseId: first.lease.id, imageCount: 0 } });
    expect(staleComplete.status).toBe(409);
    const staleFail = await call(`/nodes/tasks/${first.task.id}/fail`, { token: node, body: { leaseId: first.lease.id, error: "boom" } });
    expect(staleFail.status).toBe(409);
    expect((await json<Result>(await call(`/tasks/${taskId}/result`, { token: user }), 200)).status).toBe("running");

    await finishTask(node, second);
    const done = await json<Result>(await call(`/tasks/${taskId}/result`, { token: user }), 200);
    expect(done).toMatchObject({ status: "succeeded", attempts: 2 });
    expect((await call(`/nodes/tasks/${second.task.id}/complete`, { token: node, body: { leaseId: second.lease.id, imageCount: 1 } })).status).toBe(409);
  });

  it("takes the result of a node whose lease ran out while no other node has taken its task", async () => {
    const { user, node } = await setup("lease-late");
    const { taskId } = await json<Submitted>(await submit(user, { stable_diffusion_model: "lease-late" }), 202);
    const claimed = (await claim(node, "lease-late-n1"))!;
    // The node kept working, unheard (a Worker outage): its lease ran out and the task waits again.
    await advanceQueueClock("lease-late", LEASE_MS + 1);
    await runDurableObjectAlarm(queueOf("lease-late"));
    expect((await json<Result>(await call(`/tasks/${taskId}/result`, { token: user }), 200)).status).toBe("waiting");
    await finishTask(node, claimed, 2);
    const done = await json<Result>(await call(`/tasks/${taskId}/result`, { token: user }), 200);
    expect(done).toMatchObject({ status: "succeeded", attempts: 1 });
    expect(done.images).toHaveLength(2);
    // It is not run again.
    expect(await claim(node, "lease-late-n2", 200)).toBeNull();
  });

  it("progress extends the lease so a slow task is not taken away", async () => {
    const { user, node } = await setup("lease-extend");
    await json(await submit(user, { stable_diffusion_model: "lease-extend" }), 202);
    const claimed = (await claim(node, "lease-extend-n1"))!;
    const answer = await json<{ leaseExpiresAt: number }>(
      await call(`/nodes/tasks/${claimed.task.id}/progress`, { token: node, body: { leaseId: claimed.lease.id, progress: 0.1 } }),
      200,
    );
    expect(answer.leaseExpiresAt).toBeGreaterThanOrEqual(claimed.lease.expiresAt);
    await runDurableObjectAlarm(queueOf("lease-extend"));
    expect((await call(`/nodes/tasks/${claimed.task.id}/progress`, { token: node, body: { leaseId: claimed.lease.id, progress: 0.2 } })).status).toBe(200);
  });

  it("a retryable failure goes back to the queue; a final one fails with the node's message", async () => {
    const { user, node } = await setup("lease-fail");
    const { taskId } = await json<Submitted>(await submit(user, { stable_diffusion_model: "lease-fail" }), 202);
    const first = (await claim(node, "lease-fail-n1"))!;
    await json(
      await call(`/nodes/tasks/${first.task.id}/fail`, { token: node, body: { leaseId: first.lease.id, error: "sd-webui crashed", retryable: true } }),
      200,
    );
    expect((await json<Result>(await call(`/tasks/${taskId}/result`, { token: user }), 200)).status).toBe("waiting");
    const second = (await claim(node, "lease-fail-n2"))!;
    await json(
      await call(`/nodes/tasks/${second.task.id}/fail`, {
        token: node,
        body: { leaseId: second.lease.id, error: "Sampler not found", webuiError: { status: 400, body: { detail: "Sampler not found" } } },
      }),
      200,
    );
    const failed = await json<Result>(await call(`/tasks/${taskId}/result`, { token: user }), 200);
    expect(failed).toMatchObject({ status: "failed", attempts: 2, message: "Sampler not found" });
  });

  it("a deregistered node's leases are released at once", async () => {
    const { user, node } = await setup("lease-gone");
    const { taskId } = await json<Submitted>(await submit(user, { stable_diffusion_model: "lease-gone" }), 202);
    await claim(node, "lease-gone-n1");
    await json(await call("/nodes/lease-gone-n1", { method: "DELETE", token: node }), 200);
    expect((await json<Result>(await call(`/tasks/${taskId}/result`, { token: user }), 200)).status).toBe("waiting");
    await json(await call(`/tasks/${taskId}/cancellation`, { token: user, method: "POST" }), 200);
    expect(
      (
        await call("/nodes/lease-gone-n1/heartbeat", {
          token: node,
          body: { status: "idle", currentTaskId: null, loadedCheckpoint: null, cachedCheckpoints: [], gpuClass: "g", gpuMemoryMb: 1 },
        })
      ).status,
    ).toBe(404);
  });
});

describe("cancellation", () => {
  it("cancels a waiting task at once; it never runs", async () => {
    const { user, node } = await setup("cancel-wait");
    const { taskId } = await json<Submitted>(await submit(user, { stable_diffusion_model: "cancel-wait" }), 202);
    const answer = await json<{ status: string }>(await call(`/tasks/${taskId}/cancellation`, { token: user, method: "POST" }), 200);
    expect(answer.status).toBe("cancelled");
    expect(await claim(node, "cancel-wait-n1", 200)).toBeNull();
    expect((await json<Result>(await call(`/tasks/${taskId}/result`, { token: user }), 200)).status).toBe("cancelled");
    const again = await json<{ code: string }>(await call(`/tasks/${taskId}/cancellation`, { token: user, method: "POST" }), 409);
    expect(again.code).toBe("task_finished");
  });

  it("tells the node of a running task to stop; the node's failure ends it cancelled, with no images", async () => {
    const { user, node } = await setup("cancel-run");
    const { taskId } = await json<Submitted>(await submit(user, { stable_diffusion_model: "cancel-run" }), 202);
    const claimed = (await claim(node, "cancel-run-n1"))!;
    expect(claimed.task.keepInterruptedImages).toBe(false);
    const answer = await call(`/tasks/${taskId}/cancellation`, { token: user, method: "POST" });
    expect(answer.status).toBe(202);
    const progress = await json<{ cancel: boolean }>(
      await call(`/nodes/tasks/${claimed.task.id}/progress`, { token: node, body: { leaseId: claimed.lease.id, progress: 0.5 } }),
      200,
    );
    expect(progress.cancel).toBe(true);
    // An image uploaded before the node stopped is not the task's: the task has none.
    await json(
      await call(`/nodes/tasks/${claimed.task.id}/images/0`, {
        method: "PUT",
        token: node,
        body: TINY_PNG,
        headers: { "lease-id": claimed.lease.id, "content-type": "image/png" },
      }),
      200,
    );
    await json(await call(`/nodes/tasks/${claimed.task.id}/fail`, { token: node, body: { leaseId: claimed.lease.id, error: "cancelled" } }), 200);
    const result = await json<Result>(await call(`/tasks/${taskId}/result`, { token: user }), 200);
    expect(result.status).toBe("cancelled");
    expect(result.images).toEqual([]);
  });

  it("a task that completes after its cancel was asked for ends succeeded with its images, never cancelled with them", async () => {
    const { user, node } = await setup("cancel-late");
    const { taskId } = await json<Submitted>(await submit(user, { stable_diffusion_model: "cancel-late" }), 202);
    const claimed = (await claim(node, "cancel-late-n1"))!;
    expect((await call(`/tasks/${taskId}/cancellation`, { token: user, method: "POST" })).status).toBe(202);
    await finishTask(node, claimed, 2);
    const result = await json<Result>(await call(`/tasks/${taskId}/result`, { token: user }), 200);
    expect(result.status).toBe("succeeded");
    expect(result.images).toHaveLength(2);
  });

  it("asks nodes to keep an interrupted generation's images only for the sd-webui surface", async () => {
    const { user, node } = await setup("cancel-keep");
    await json(await submit(user, { stable_diffusion_model: "cancel-keep" }, {}, "/sdapi/v1/txt2img"), 202);
    expect((await claim(node, "cancel-keep-n1"))!.task.keepInterruptedImages).toBe(true);
  });

  it("a cancelled running task whose node vanished ends cancelled, not retried", async () => {
    const { user, node } = await setup("cancel-lost");
    const { taskId } = await json<Submitted>(await submit(user, { stable_diffusion_model: "cancel-lost" }), 202);
    await claim(node, "cancel-lost-n1");
    await call(`/tasks/${taskId}/cancellation`, { token: user, method: "POST" });
    await advanceQueueClock("cancel-lost", LEASE_MS + 1);
    await runDurableObjectAlarm(queueOf("cancel-lost"));
    expect((await json<Result>(await call(`/tasks/${taskId}/result`, { token: user }), 200)).status).toBe("cancelled");
  });
});
