// Retention (issue 14): the sweep (with an injected clock) removes images, task inputs and
// uploads past their key's retentionDays and nothing else; DELETE /tasks/{id} removes a task's
// images and inputs now; uploads are listed and deleted; images no result names are removed.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import type { ClaimResponse } from "../../src/protocol/node";
import { sweepExpired } from "../../src/tenants/retention";
import { ADMIN, call, claim, createKey, createModel, finishTask, json, largePngBase64, registerNode, submit, TINY_PNG } from "./helpers";

const MODEL = "retention-model";
const DAY_MS = 86_400_000;
const NOW = Date.parse("2026-11-30T12:00:00Z");

interface Result {
  status: string;
  images: string[];
  ossUrl: string[];
  imagesExpiredAt: string | null;
}

let node: string;
beforeAll(async () => {
  await createModel(MODEL);
  node = await createKey("node");
  await registerNode(node, "retention-node", MODEL);
});

async function userKey(limits: Record<string, unknown> = {}): Promise<{ token: string; id: string }> {
  const key = await json<{ token: string; id: string }>(await call("/keys", { token: ADMIN, body: { name: "retained", role: "user" } }), 201);
  await json(await call(`/keys/${key.id}/limits`, { method: "PUT", token: ADMIN, body: limits }), 200);
  return key;
}

async function exists(key: string): Promise<boolean> {
  return (await env.BUCKET.head(key)) !== null;
}

/** An img2img task whose inline init image the submission moves to R2, run to success with one image. */
async function endedTask(token: string): Promise<{ taskId: string; uid: string; image: string; input: string }> {
  const { taskId } = await json<{ taskId: string }>(
    await submit(token, { stable_diffusion_model: MODEL, prompt: "x", init_images: [largePngBase64()] }, {}, "/img2img"),
    202,
  );
  const claimed = (await claim(node, "retention-node"))!;
  await finishTask(node, claimed);
  const result = await json<Result>(await call(`/tasks/${taskId}/result`, { token }), 200);
  expect(result.status).toBe("succeeded");
  return { taskId, uid: claimed.task.id, image: result.images[0]!, input: claimed.task.inputs[0]!.key };
}

async function upload(token: string): Promise<string> {
  return (await json<{ key: string }>(await call("/uploads", { token, body: TINY_PNG, headers: { "content-type": "image/png" } }), 201)).key;
}

async function age(table: "tasks" | "uploads", key: string, days: number): Promise<void> {
  const at = NOW - days * DAY_MS;
  if (table === "tasks") await env.DB.prepare("UPDATE tasks SET finished_at = ? WHERE uid = ?").bind(at, key).run();
  else await env.DB.prepare("UPDATE uploads SET created_at = ? WHERE key = ?").bind(at, key).run();
}

describe("the retention sweep", () => {
  it("removes what is past each key's retention and nothing else, and marks the tasks' images expired", async () => {
    const a = await userKey();
    const b = await userKey({ retentionDays: 5 });
    const aOld = await endedTask(a.token);
    const aNew = await endedTask(a.token);
    const bOld = await endedTask(b.token);
    const bNew = await endedTask(b.token);
    await age("tasks", aOld.uid, 31);
    await age("tasks", aNew.uid, 29);
    await age("tasks", bOld.uid, 6);
    await age("tasks", bNew.uid, 4);
    const [aOldUpload, aNewUpload, bOldUpload] = [await upload(a.token), await upload(a.token), await upload(b.token)];
    await age("uploads", aOldUpload, 31);
    await age("uploads", aNewUpload, 29);
    await age("uploads", bOldUpload, 6);

    // An image left under the old task's name that its result does not list (its last lease was lost).
    const leftover = aOld.image.replace(/_0\.png$/, "_7.png");
    await env.BUCKET.put(leftover, TINY_PNG);

    expect(await sweepExpired(env, 30, NOW)).toEqual({ tasks: 2, uploads: 2 });

    for (const gone of [aOld.image, aOld.input, leftover, bOld.image, bOld.input, aOldUpload, bOldUpload]) expect(await exists(gone), gone).toBe(false);
    for (const kept of [aNew.image, aNew.input, bNew.image, bNew.input, aNewUpload]) expect(await exists(kept), kept).toBe(true);
    const expired = await json<Result>(await call(`/tasks/${aOld.taskId}/result`, { token: a.token }), 200);
    expect(expired).toMatchObject({ status: "succeeded", images: [], ossUrl: [], imagesExpiredAt: new Date(NOW).toISOString() });
    const kept = await json<Result>(await call(`/tasks/${aNew.taskId}/result`, { token: a.token }), 200);
    expect(kept).toMatchObject({ images: [aNew.image], imagesExpiredAt: null });
    const listed = await json<{ uploads: Array<{ key: string }> }>(await call("/uploads", { token: a.token }), 200);
    expect(listed.uploads.map((u) => u.key)).toEqual([aNewUpload]);

    // A second sweep at the same time finds nothing more.
    expect(await sweepExpired(env, 30, NOW)).toEqual({ tasks: 0, uploads: 0 });
  });
});

describe("DELETE /tasks/{id}", () => {
  it("removes an ended task's images and the inputs its submission wrote, keeping uploads it named", async () => {
    const { token } = await userKey();
    const uploaded = await upload(token);
    const { taskId } = await json<{ taskId: string }>(
      await submit(token, { stable_diffusion_model: MODEL, prompt: "x", init_images: [largePngBase64()], mask: uploaded }, {}, "/img2img"),
      202,
    );
    const claimed = (await claim(node, "retention-node"))!;
    await finishTask(node, claimed);
    const before = await json<Result>(await call(`/tasks/${taskId}/result`, { token }), 200);
    const written = claimed.task.inputs.map((i) => i.key).filter((k) => k !== uploaded);
    expect(written).toHaveLength(1);

    const deleted = await json<Result>(await call(`/tasks/${taskId}`, { method: "DELETE", token }), 200);
    expect(deleted).toMatchObject({ status: "succeeded", images: [], ossUrl: [] });
    expect(deleted.imagesExpiredAt).not.toBeNull();
    expect(await exists(before.images[0]!)).toBe(false);
    expect(await exists(written[0]!)).toBe(false);
    expect(await exists(uploaded)).toBe(true);
    const link = new URL(before.ossUrl[0]!);
    expect((await call(link.pathname + link.search)).status).toBe(404);
  });

  it("refuses a waiting task with 409, and another key's task with 404", async () => {
    const { token } = await userKey();
    const { token: other } = await userKey();
    // No node serves this checkpoint: the task stays waiting.
    await createModel("retention-idle");
    const waiting = await json<{ taskId: string }>(await submit(token, { stable_diffusion_model: "retention-idle", prompt: "x" }), 202);
    const problem = await json<{ code: string }>(await call(`/tasks/${waiting.taskId}`, { method: "DELETE", token }), 409);
    expect(problem.code).toBe("task_live");
    await json(await call(`/tasks/${waiting.taskId}`, { method: "DELETE", token: other }), 404);
  });
});

describe("GET and DELETE /uploads", () => {
  it("lists the caller's uploads newest first, page by page, and deletes one", async () => {
    const { token } = await userKey();
    const { token: other } = await userKey();
    const keys = [await upload(token), await upload(token), await upload(token)];
    await upload(other);
    const first = await json<{ uploads: Array<{ key: string; size: number }>; nextCursor: string | null }>(await call("/uploads?limit=2", { token }), 200);
    const second = await json<{ uploads: Array<{ key: string }>; nextCursor: string | null }>(
      await call(`/uploads?limit=2&cursor=${first.nextCursor}`, { token }),
      200,
    );
    expect([...first.uploads, ...second.uploads].map((u) => u.key).sort()).toEqual([...keys].sort());
    expect(first.uploads[0]!.size).toBe(TINY_PNG.byteLength);
    expect(second.nextCursor).toBeNull();

    await json(await call(`/uploads/${keys[0]}`, { method: "DELETE", token: other }), 404);
    expect((await call(`/uploads/${keys[0]}`, { method: "DELETE", token })).status).toBe(204);
    expect(await exists(keys[0]!)).toBe(false);
    await json(await call(`/uploads/${keys[0]}`, { method: "DELETE", token }), 404);
  });
});

describe("images no result names", () => {
  async function putImage(claimed: ClaimResponse, index: number): Promise<string> {
    const res = await call(`/nodes/tasks/${claimed.task.id}/images/${index}`, {
      method: "PUT",
      token: node,
      body: TINY_PNG,
      headers: { "lease-id": claimed.lease.id, "content-type": "image/png" },
    });
    return (await json<{ key: string }>(res, 200)).key;
  }

  it("are removed when the task completes with fewer images, or fails", async () => {
    const { token } = await userKey();
    await json(await submit(token, { stable_diffusion_model: MODEL, prompt: "x" }), 202);
    const completed = (await claim(node, "retention-node"))!;
    const uploaded = [await putImage(completed, 0), await putImage(completed, 1), await putImage(completed, 2)];
    await json(await call(`/nodes/tasks/${completed.task.id}/complete`, { token: node, body: { leaseId: completed.lease.id, imageCount: 1 } }), 200);
    await expect.poll(() => Promise.all(uploaded.map(exists))).toEqual([true, false, false]);

    await json(await submit(token, { stable_diffusion_model: MODEL, prompt: "x" }), 202);
    const failed = (await claim(node, "retention-node"))!;
    const partial = await putImage(failed, 0);
    await json(await call(`/nodes/tasks/${failed.task.id}/fail`, { token: node, body: { leaseId: failed.lease.id, error: "out of memory" } }), 200);
    await expect.poll(() => exists(partial)).toBe(false);
  });
});
