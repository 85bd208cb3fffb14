// Revoking a key (issue 14): its waiting tasks are cancelled, nodes are told to stop its running
// ones, and the signed links to its images stop working; other keys' work and links are untouched.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN, call, claim, createKey, createModel, finishTask, json, registerNode, submit } from "./helpers";

const MODEL = "revoke-model";
const OTHER_MODEL = "revoke-other-model";

let node: string;
beforeAll(async () => {
  await createModel(MODEL);
  await createModel(OTHER_MODEL);
  node = await createKey("node");
});

async function userKey(): Promise<{ token: string; id: string }> {
  return json<{ token: string; id: string }>(await call("/keys", { token: ADMIN, body: { name: "tenant", role: "user" } }), 201);
}

async function statusInD1(owner: string, taskId: string): Promise<string> {
  return (await env.DB.prepare("SELECT status FROM tasks WHERE owner = ? AND task_id = ?").bind(owner, taskId).first<{ status: string }>())!.status;
}

/** The key's task runs to success on its own node; answers a signed link to its image. */
async function imageLink(token: string, nodeId: string): Promise<string> {
  const { taskId } = await json<{ taskId: string }>(await submit(token, { stable_diffusion_model: OTHER_MODEL, prompt: "x" }), 202);
  await registerNode(node, nodeId, OTHER_MODEL);
  await finishTask(node, (await claim(node, nodeId))!);
  await expect.poll(async () => (await json<{ status: string }>(await call(`/tasks/${taskId}/result`, { token }), 200)).status).toBe("succeeded");
  const result = await json<{ ossUrl: string[] }>(await call(`/tasks/${taskId}/result`, { token }), 200);
  return result.ossUrl[0]!;
}

describe("DELETE /keys/{id}", () => {
  it("cancels the key's waiting tasks, stops its running one, and kills its image links", async () => {
    const revoked = await userKey();
    const other = await userKey();
    const revokedLink = await imageLink(revoked.token, "revoke-node-a");
    const otherLink = await imageLink(other.token, "revoke-node-b");
    expect((await call(new URL(revokedLink).pathname + new URL(revokedLink).search)).status).toBe(200);

    const running = await json<{ taskId: string }>(await submit(revoked.token, { stable_diffusion_model: MODEL, prompt: "runs" }), 202);
    await registerNode(node, "revoke-node-c", MODEL);
    const claimed = (await claim(node, "revoke-node-c"))!;
    expect(claimed.task.id).toBeDefined();
    const waiting = [];
    for (const model of [MODEL, OTHER_MODEL]) {
      waiting.push(await json<{ taskId: string }>(await submit(revoked.token, { stable_diffusion_model: model, prompt: "waits" }), 202));
    }
    const othersTask = await json<{ taskId: string }>(await submit(other.token, { stable_diffusion_model: MODEL, prompt: "stays" }), 202);

    const answer = await json<{ revokedAt: string; tasks: { cancelled: number; cancelling: number } }>(
      await call(`/keys/${revoked.id}`, { method: "DELETE", token: ADMIN }),
      200,
    );
    expect(answer.tasks).toEqual({ cancelled: 2, cancelling: 1 });
    for (const task of waiting) await expect.poll(() => statusInD1(revoked.id, task.taskId)).toBe("cancelled");

    // The node hears the cancel on its next progress report and stops.
    const progress = await json<{ cancel: boolean }>(
      await call(`/nodes/tasks/${claimed.task.id}/progress`, { token: node, body: { leaseId: claimed.lease.id, progress: 0.2 } }),
      200,
    );
    expect(progress.cancel).toBe(true);
    await json(await call(`/nodes/tasks/${claimed.task.id}/fail`, { token: node, body: { leaseId: claimed.lease.id, error: "Interrupted" } }), 200);
    await expect.poll(() => statusInD1(revoked.id, running.taskId)).toBe("cancelled");

    const dead = await call(new URL(revokedLink).pathname + new URL(revokedLink).search);
    expect(dead.status).toBe(410);
    expect((await dead.json<{ code: string }>()).code).toBe("link_revoked");
    expect((await call(new URL(otherLink).pathname + new URL(otherLink).search)).status).toBe(200);
    expect(await statusInD1(other.id, othersTask.taskId)).toBe("waiting");
  });

  it("refuses a submission from a revoked key even where the key is still remembered", async () => {
    const key = await userKey();
    // The Worker remembers the key for KEY_MEMO_MS after this call; only the isolate that revokes forgets it at once.
    await json(await call("/tasks", { token: key.token }), 200);
    await env.DB.prepare("UPDATE api_keys SET revoked_at = ? WHERE id = ?").bind(Date.now(), key.id).run();
    const refused = await json<{ code: string }>(await submit(key.token, { stable_diffusion_model: MODEL, prompt: "late" }), 401);
    expect(refused.code).toBe("unauthorized");
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM tasks WHERE owner = ?").bind(key.id).first<{ n: number }>())!.n).toBe(0);
  });
});
