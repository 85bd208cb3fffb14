// Admin: models and their files (single and multipart), pools as the original functions API,
// restart, nodes, metrics; and the published OpenAPI document and docs page.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ADMIN, call, claim, createKey, createModel, json, registerNode, submit } from "./helpers";

async function sha256Hex(bytes: Uint8Array | string): Promise<string> {
  const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  return [...new Uint8Array(await crypto.subtle.digest("SHA-256", data))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

describe("models", () => {
  it("registers, uploads, lists, updates and deletes a model", async () => {
    const created = await json<{ status: string; ossPath: string }>(await call("/models", { token: ADMIN, body: { name: "m-crud", type: "checkpoint" } }), 201);
    expect(created).toMatchObject({ status: "registering", ossPath: "models/m-crud/m-crud.safetensors" });
    expect((await json<{ code: string }>(await call("/models", { token: ADMIN, body: { name: "m-crud" } }), 409)).code).toBe("model_exists");
    const bytes = new TextEncoder().encode("pretend weights");
    const uploaded = await json<{ sha256: string; sizeBytes: number; status: string; title: string; ossPath: string }>(
      await call("/models/m-crud/file", { method: "PUT", token: ADMIN, body: bytes }),
      200,
    );
    expect(uploaded).toMatchObject({ sha256: await sha256Hex(bytes), sizeBytes: bytes.length, status: "unloaded" });
    expect(uploaded.title).toBe(`m-crud.safetensors [${uploaded.sha256.slice(0, 10)}]`);
    expect(uploaded.ossPath).toMatch(/^models\/m-crud\/.*m-crud\.safetensors$/);
    const stored = await env.BUCKET.get(uploaded.ossPath);
    expect(await stored!.text()).toBe("pretend weights");
    const user = await createKey("user");
    const list = await json<Array<{ name: string }>>(await call("/models", { token: user }), 200);
    expect(list.map((m) => m.name)).toContain("m-crud");
    const updated = await json<{ type: string }>(
      await call("/models/m-crud", { method: "PUT", token: ADMIN, body: { type: "stableDiffusion", loadSeconds: 20 } }),
      200,
    );
    expect(updated.type).toBe("checkpoint");
    const unknownType = await json<{ errors: Array<{ path: string }> }>(
      await call("/models/m-crud", { method: "PUT", token: ADMIN, body: { type: "sdxl" } }),
      422,
    );
    expect(unknownType.errors.map((e) => e.path)).toEqual(["type"]);
    await json(await call("/models/m-crud", { method: "DELETE", token: ADMIN }), 200);
    expect((await call("/models/m-crud", { token: user })).status).toBe(404);
    expect((await env.BUCKET.list({ prefix: "models/m-crud/" })).objects).toEqual([]);
  });

  it("will not delete a model that tasks still use unless told to cancel them", async () => {
    await createModel("m-busy");
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "m-busy-node", "m-busy");
    const first = await json<{ taskId: string }>(await submit(user, { stable_diffusion_model: "m-busy" }), 202);
    const second = await json<{ taskId: string }>(await submit(user, { stable_diffusion_model: "m-busy" }), 202);
    const running = (await claim(node, "m-busy-node"))!;
    expect(running.task.id).toBe(first.taskId);
    const refused = await call("/models/m-busy", { method: "DELETE", token: ADMIN });
    expect(refused.headers.get("content-type")).toContain("application/problem+json");
    const problem = await json<{ code: string; detail: string }>(refused, 409);
    expect(problem.code).toBe("model_in_use");
    expect(problem.detail).toContain("1 waiting and 1 running");
    // Nothing changed: the model is there and its tasks carry on.
    await json(await call("/models/m-busy", { token: ADMIN }), 200);
    expect((await json<{ status: string }>(await call(`/tasks/${second.taskId}/progress`, { token: user }), 200)).status).toBe("waiting");

    const deleted = await json<{ cancelledTasks: number }>(await call("/models/m-busy?force=true", { method: "DELETE", token: ADMIN }), 200);
    expect(deleted.cancelledTasks).toBe(2);
    expect((await call("/models/m-busy", { token: ADMIN })).status).toBe(404);
    const ended = await json<{ status: string; message: string }>(await call(`/tasks/${second.taskId}/result`, { token: user }), 200);
    expect(ended).toMatchObject({ status: "cancelled", message: "Model m-busy was deleted" });
    // The running one is told to stop at its next progress report, and ends cancelled.
    const answer = await json<{ cancel: boolean }>(
      await call(`/nodes/tasks/${running.task.id}/progress`, { token: node, body: { leaseId: running.lease.id, progress: 0.5 } }),
      200,
    );
    expect(answer.cancel).toBe(true);
    await json(
      await call(`/nodes/tasks/${running.task.id}/fail`, { token: node, body: { leaseId: running.lease.id, error: "interrupted", retryable: false } }),
      200,
    );
    expect((await json<{ status: string }>(await call(`/tasks/${first.taskId}/result`, { token: user }), 200)).status).toBe("cancelled");
    // Placement and metrics no longer count the checkpoint.
    const metrics = await (await call("/metrics", { token: ADMIN })).text();
    expect(metrics).not.toContain('checkpoint="m-busy"');
    expect(await claim(node, "m-busy-node", 200)).toBeNull();
  });

  it("refuses a file whose declared sha256 does not match, keeping nothing", async () => {
    await json(await call("/models", { token: ADMIN, body: { name: "m-bad-sha" } }), 201);
    const res = await call("/models/m-bad-sha/file", {
      method: "PUT",
      token: ADMIN,
      body: new TextEncoder().encode("x"),
      headers: { "x-sha256": "0".repeat(64) },
    });
    expect(res.status).toBe(422);
    expect((await env.BUCKET.list({ prefix: "models/m-bad-sha/" })).objects).toEqual([]);
  });

  it("keeps the previous file when a re-upload's declared sha256 does not match", async () => {
    const good = await createModel("m-reupload", "good weights");
    const node = await createKey("node");
    const res = await call("/models/m-reupload/file", {
      method: "PUT",
      token: ADMIN,
      body: new TextEncoder().encode("corrupted weights"),
      headers: { "x-sha256": "0".repeat(64) },
    });
    expect(res.status).toBe(422);
    const file = await call("/nodes/models/m-reupload/file", { token: node });
    expect(file.status).toBe(200);
    expect(await file.text()).toBe("good weights");
    const model = await json<{ sha256: string }>(await call("/models/m-reupload", { token: ADMIN }), 200);
    expect(model.sha256).toBe(good.sha256);
    // Nothing of the refused upload stays in the bucket, and a good re-upload replaces the file.
    expect((await env.BUCKET.list({ prefix: "models/m-reupload/" })).objects).toHaveLength(1);
    const newer = await json<{ sha256: string }>(
      await call("/models/m-reupload/file", { method: "PUT", token: ADMIN, body: new TextEncoder().encode("newer weights") }),
      200,
    );
    expect(newer.sha256).toBe(await sha256Hex("newer weights"));
    expect(await (await call("/nodes/models/m-reupload/file", { token: node })).text()).toBe("newer weights");
    expect((await env.BUCKET.list({ prefix: "models/m-reupload/" })).objects).toHaveLength(1);
  });

  it("uploads a file larger than one request body in parts", async () => {
    await json(await call("/models", { token: ADMIN, body: { name: "m-multi" } }), 201);
    const partSize = 5 * 1024 * 1024;
    const part1 = new Uint8Array(partSize).fill(1);
    const part2 = new Uint8Array(1234).fill(2);
    const whole = new Uint8Array(partSize + part2.length);
    whole.set(part1);
    whole.set(part2, partSize);
    const { uploadId } = await json<{ uploadId: string }>(await call("/models/m-multi/file/uploads", { token: ADMIN, method: "POST" }), 201);
    const parts = [];
    for (const [i, body] of [part1, part2].entries()) {
      parts.push(
        await json<{ partNumber: number; etag: string }>(
          await call(`/models/m-multi/file/uploads/${uploadId}/parts/${i + 1}`, { method: "PUT", token: ADMIN, body }),
          200,
        ),
      );
    }
    const sha256 = await sha256Hex(whole);
    const done = await json<{ sizeBytes: number; sha256: string; status: string }>(
      await call(`/models/m-multi/file/uploads/${uploadId}/complete`, { token: ADMIN, body: { parts, sha256 } }),
      200,
    );
    expect(done).toMatchObject({ sizeBytes: whole.length, sha256, status: "unloaded" });
    const node = await createKey("node");
    const ranged = await call("/nodes/models/m-multi/file", { token: node, headers: { range: `bytes=${partSize - 2}-` } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get("content-range")).toBe(`bytes ${partSize - 2}-${whole.length - 1}/${whole.length}`);
    expect([...new Uint8Array(await ranged.arrayBuffer())].slice(0, 4)).toEqual([1, 1, 2, 2]);
    const full = await call("/nodes/models/m-multi/file", { token: node });
    expect(full.status).toBe(200);
    expect(await sha256Hex(new Uint8Array(await full.arrayBuffer()))).toBe(sha256);
  });
});

describe("pools (the original functions API)", () => {
  it("lists pools with function names, depth, running and nodes; updates and resets them", async () => {
    await createModel("p-one");
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "p-node", "p-one");
    await submit(user, { stable_diffusion_model: "p-one" });
    await submit(user, { stable_diffusion_model: "p-one" });
    await claim(node, "p-node");
    const expectedName = `sd_${await sha256Hex("p-one")}`;
    const listed = await json<{ status: string; functions: Array<Record<string, unknown>> }>(await call("/list/sdapi/functions", { token: ADMIN }), 200);
    const pool = listed.functions.find((f) => f.model === "p-one")!;
    expect(pool).toMatchObject({ functionName: expectedName, queueDepth: 1, running: 1, nodes: ["p-node"], concurrencyCap: 10 });

    const update = await json<{ status: string; failFuncList: string[] }>(
      await call("/batch_update_sd_resource", {
        token: ADMIN,
        body: { models: ["p-one"], concurrencyCap: 1, timeout: 120, extraArgs: "--xformers", gpuMemorySize: 16000, instanceType: "A10", vpcConfig: {} },
      }),
      200,
    );
    expect(update).toMatchObject({ status: "success", failFuncList: [] });
    const after = (await json<{ functions: Array<Record<string, unknown>> }>(await call("/list/sdapi/functions", { token: ADMIN }), 200)).functions.find(
      (f) => f.model === "p-one",
    )!;
    expect(after).toMatchObject({ concurrencyCap: 1, timeout: 120, extraArgs: "--xformers", gpuMemorySize: 16000, instanceType: "A10" });

    const partial = await call("/batch_update_sd_resource", { token: ADMIN, body: { models: ["p-one", "nope"], timeout: 60 } });
    expect(partial.status).toBe(500);
    expect(await json(partial)).toMatchObject({ status: "fail", failFuncList: ["nope"] });

    const deleted = await json<{ status: string }>(await call("/del/sd/functions", { token: ADMIN, body: { functions: [expectedName] } }), 200);
    expect(deleted.status).toBe("success");
    const reset = (await json<{ functions: Array<Record<string, unknown>> }>(await call("/list/sdapi/functions", { token: ADMIN }), 200)).functions.find(
      (f) => f.model === "p-one",
    )!;
    expect(reset.concurrencyCap).toBe(10);
    const missing = await call("/del/sd/functions", { token: ADMIN, body: { functions: ["sd_nothing"] } });
    expect(missing.status).toBe(500);
  });

  it("never runs more tasks of a checkpoint at once than its cap", async () => {
    await createModel("p-cap");
    await json(await call("/batch_update_sd_resource", { token: ADMIN, body: { models: ["p-cap"], concurrencyCap: 1 } }), 200);
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "p-cap-1", "p-cap");
    await registerNode(node, "p-cap-2", "p-cap");
    await submit(user, { stable_diffusion_model: "p-cap" });
    await submit(user, { stable_diffusion_model: "p-cap" });
    expect(await claim(node, "p-cap-1")).not.toBeNull();
    expect(await claim(node, "p-cap-2", 300)).toBeNull();
  });
});

describe("fleet admin", () => {
  it("shows nodes, asks them to restart sd-webui, and exports metrics", async () => {
    await createModel("f-model");
    const node = await createKey("node");
    await registerNode(node, "f-node", "f-model");
    const nodes = await json<Array<Record<string, unknown>>>(await call("/nodes", { token: ADMIN }), 200);
    expect(nodes.find((n) => n.nodeId === "f-node")).toMatchObject({ status: "idle", loadedCheckpoint: "f-model", gpuClass: "test-gpu" });
    const restart = await json<{ nodes: number }>(await call("/restart", { token: ADMIN, method: "POST" }), 200);
    expect(restart.nodes).toBeGreaterThanOrEqual(1);
    const beat = { status: "idle", currentTaskId: null, loadedCheckpoint: "f-model", cachedCheckpoints: ["f-model"], gpuClass: "test-gpu", gpuMemoryMb: 24000 };
    expect(await json(await call("/nodes/f-node/heartbeat", { token: node, body: beat }), 200)).toMatchObject({ restartWebui: true, drain: false });
    expect(await json(await call("/nodes/f-node/heartbeat", { token: node, body: beat }), 200)).toMatchObject({ restartWebui: false, drain: false });
    const metrics = await call("/metrics", { token: ADMIN });
    expect(metrics.headers.get("content-type")).toContain("text/plain");
    const text = await metrics.text();
    expect(text).toMatch(/^# TYPE sdgate_tasks gauge$/m);
    expect(text).toMatch(/^sdgate_nodes\{status="idle"\} \d+$/m);
    expect(text).toMatch(/^sdgate_models \d+$/m);
  });
});

describe("documentation", () => {
  it("publishes the OpenAPI document built from the validating schemas", async () => {
    const doc = await json<{ openapi: string; paths: Record<string, Record<string, unknown>> }>(await call("/openapi.json"), 200);
    expect(doc.openapi).toMatch(/^3\./);
    for (const path of [
      "/txt2img",
      "/img2img",
      "/extra_images",
      "/tasks/{taskId}/result",
      "/tasks/{taskId}/progress",
      "/tasks/{taskId}/cancellation",
      "/models",
      "/options",
      "/list/sdapi/functions",
      "/nodes/register",
      "/nodes/{nodeId}/claim",
    ]) {
      expect(doc.paths, path).toHaveProperty([path]);
    }
  });
});
