// The rest of the sd-webui surface: lists, passthrough to a node, Basic auth, base-URL prefixes,
// and the OpenAPI document.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ADMIN, call, claim, createKey, createModel, json, largePngBase64, registerNode, TINY_PNG } from "./helpers";
import { basic, completeTask, registerNodeWithCatalog, TINY_PNG_BASE64, taskIds } from "./sdapi-support";

describe("sd-webui lists", () => {
  it("sd-models lists registered checkpoints that have a file, in sd-webui's item shape", async () => {
    const { sha256 } = await createModel("sd-list-a");
    await json(await call("/models", { token: ADMIN, body: { name: "sd-list-nofile" } }), 201);
    const user = await createKey("user");
    const items = await json<Array<Record<string, unknown>>>(await call("/sdapi/v1/sd-models", { token: user }), 200);
    expect(items.find((m) => m.model_name === "sd-list-nofile")).toBeUndefined();
    expect(items.find((m) => m.model_name === "sd-list-a")).toEqual({
      title: `sd-list-a.safetensors [${sha256.slice(0, 10)}]`,
      model_name: "sd-list-a",
      hash: sha256.slice(0, 10),
      sha256,
      filename: "sd-list-a.safetensors",
      config: null,
      name: "sd-list-a",
    });
  });

  it("samplers and the other lists come from what nodes reported; refresh-* are no-ops", async () => {
    const user = await createKey("user");
    const node = await createKey("node");
    const sampler = { name: "Euler a", aliases: ["k_euler_a"], options: {} };
    await registerNodeWithCatalog(node, "node-sd-catalog", {
      samplers: [sampler],
      upscalers: [{ name: "Lanczos", model_name: null, model_path: null, model_url: null, scale: 4 }],
      loras: [{ name: "detail", alias: "detail", path: "/loras/detail.safetensors" }],
    });
    expect(await json(await call("/sdapi/v1/samplers", { token: user }), 200)).toContainEqual(sampler);
    expect(await json(await call("/sdapi/v1/upscalers", { token: user }), 200)).toContainEqual({
      name: "Lanczos",
      model_name: null,
      model_path: null,
      model_url: null,
      scale: 4,
    });
    expect(await json(await call("/sdapi/v1/loras", { token: user }), 200)).toContainEqual({
      name: "detail",
      alias: "detail",
      path: "/loras/detail.safetensors",
      metadata: {},
    });
    expect(await json(await call("/sdapi/v1/prompt-styles", { token: user }), 200)).toEqual([]);
    for (const what of ["checkpoints", "vae", "loras"]) {
      expect(await json(await call(`/sdapi/v1/refresh-${what}`, { token: user, method: "POST" }), 200)).toBeNull();
    }
  });
});

describe("sd-webui passthrough", () => {
  it("runs other routes on a node for an admin key and answers as the node did, without recording them", async () => {
    await createModel("sd-pass");
    const user = await createKey("admin");
    const node = await createKey("node");
    await registerNode(node, "node-sd-pass");
    const noDefault = await json<Record<string, string>>(await call("/sdapi/v1/memory", { token: user }), 422);
    expect(noDefault).toMatchObject({ error: "HTTPException", body: "" });
    expect(noDefault.detail).toContain("sd_model_checkpoint");

    await json(await call("/sdapi/v1/options", { token: user, body: { sd_model_checkpoint: "sd-pass" } }), 200);
    const pending = call("/sdapi/v1/memory?detail=true", { token: user });
    const claimed = (await claim(node, "node-sd-pass", 3000))!;
    expect(claimed.task).toMatchObject({
      kind: "passthrough",
      passthrough: { method: "GET", path: "/sdapi/v1/memory?detail=true" },
      model: { name: "sd-pass" },
    });
    await completeTask(node, claimed, { passthroughResult: { status: 200, body: { ram: { free: 1 }, cuda: { error: "none" } } } });
    const res = await pending;
    expect(await json(res, 200)).toEqual({ ram: { free: 1 }, cuda: { error: "none" } });
    expect(res.headers.get("task-id")).toBeNull();
    expect(await taskIds(user)).toEqual([]);

    // A node's error status comes back as it was, too.
    const missing = call("/sdapi/v1/no-such-route", { token: user, method: "POST", body: { a: 1 } });
    const claimedMissing = (await claim(node, "node-sd-pass", 3000))!;
    expect(claimedMissing.task.payload).toEqual({ a: 1 });
    await completeTask(node, claimedMissing, { passthroughResult: { status: 404, body: { detail: "Not Found" } } });
    expect(await json(await missing, 404)).toEqual({ detail: "Not Found" });
    expect(await taskIds(user)).toEqual([]);
  });

  it("refuses node-level and unknown routes to user keys with 403, before any work reaches a node; allowed routes run", async () => {
    await createModel("sd-pass-tenant");
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "node-sd-pass-tenant");
    await json(await call("/sdapi/v1/options", { token: user, body: { sd_model_checkpoint: "sd-pass-tenant" } }), 200);
    for (const [method, path] of [
      ["GET", "/sdapi/v1/cmd-flags"],
      ["POST", "/sdapi/v1/train/embedding"],
      ["POST", "/sdapi/v1/unload-checkpoint"],
      ["GET", "/sdapi/v1/memory"],
      ["POST", "/team-a/sdapi/v1/server-kill"],
    ] as const) {
      const refused = await json<{ error: string; detail: string }>(await call(path, { token: user, method, body: method === "POST" ? {} : undefined }), 403);
      expect(refused.error).toBe("HTTPException");
      expect(refused.detail).toContain("admin keys only");
    }
    expect(await claim(node, "node-sd-pass-tenant", 0)).toBeNull();
    expect(await taskIds(user)).toEqual([]);

    const allowed = call("/sdapi/v1/png-info", { token: user, body: { image: TINY_PNG_BASE64 } });
    const claimed = (await claim(node, "node-sd-pass-tenant", 3000))!;
    expect(claimed.task.passthrough).toEqual({ method: "POST", path: "/sdapi/v1/png-info" });
    await completeTask(node, claimed, { passthroughResult: { status: 200, body: { info: "", items: {}, parameters: {} } } });
    expect(await json(await allowed, 200)).toEqual({ info: "", items: {}, parameters: {} });
  });

  it("deletes the images of an unrecorded passthrough; Task-Flag: true keeps it as a task", async () => {
    await createModel("sd-pass-img");
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "node-sd-pass-img");
    const detect = { controlnet_module: "canny", controlnet_input_images: [TINY_PNG_BASE64], stable_diffusion_model: "sd-pass-img" };
    const answer = { images: [TINY_PNG_BASE64], info: "Success" };

    // An earlier upload stays; the large inline image the submission moved to R2 goes with the task.
    const uploaded = await json<{ key: string }>(await call("/uploads", { token: user, body: TINY_PNG, headers: { "content-type": "image/png" } }), 201);
    const unrecorded = call("/controlnet/detect", { token: user, body: { ...detect, controlnet_input_images: [largePngBase64(), uploaded.key] } });
    const claimed = (await claim(node, "node-sd-pass-img", 3000))!;
    expect(claimed.task.passthrough).toEqual({ method: "POST", path: "/controlnet/detect" });
    expect(claimed.task.payload).not.toHaveProperty("stable_diffusion_model");
    expect(claimed.task.inputs.map((i) => i.pointer).sort()).toEqual(["/controlnet_input_images/0", "/controlnet_input_images/1"]);
    await completeTask(node, claimed, { passthroughResult: { status: 200, body: answer } });
    expect(await json(await unrecorded, 200)).toEqual(answer);
    const leftovers = (await env.BUCKET.list({ prefix: "images/" })).objects.filter((o) => o.key.includes(claimed.task.id));
    expect(leftovers).toEqual([]);
    expect(await env.BUCKET.head(claimed.task.inputs.find((i) => i.pointer === "/controlnet_input_images/0")!.key)).toBeNull();
    expect(await env.BUCKET.head(uploaded.key)).not.toBeNull();
    expect(await taskIds(user)).toEqual([]);

    const recorded = call("/controlnet/detect", { token: user, body: detect, headers: { "task-flag": "true" } });
    const claimedRecorded = (await claim(node, "node-sd-pass-img", 3000))!;
    await completeTask(node, claimedRecorded, { passthroughResult: { status: 200, body: answer } });
    const res = await recorded;
    expect(await json(res, 200)).toEqual(answer);
    const taskId = res.headers.get("task-id")!;
    expect(await taskIds(user)).toEqual([taskId]);
    const result = await json<{ status: string; images: string[]; result: { status: number; body: { images: string[] } } }>(
      await call(`/tasks/${taskId}/result`, { token: user }),
      200,
    );
    expect(result.status).toBe("succeeded");
    expect(result.images).toHaveLength(1);
    expect(result.result.body.images).toEqual(result.images);

    // Request-Type: async records it too and answers 202 at once.
    const queued = await json<{ taskId: string; status: string }>(
      await call("/sdapi/v1/interrogate", {
        token: user,
        body: { image: TINY_PNG_BASE64, stable_diffusion_model: "sd-pass-img" },
        headers: { "request-type": "async" },
      }),
      202,
    );
    expect(queued.status).toBe("waiting");
    const claimedAsync = (await claim(node, "node-sd-pass-img", 3000))!;
    await completeTask(node, claimedAsync, { passthroughResult: { status: 200, body: { caption: "a tiny image" } } });
    const asyncResult = await json<{ status: string; result: unknown }>(await call(`/tasks/${queued.taskId}/result`, { token: user }), 200);
    expect(asyncResult).toMatchObject({ status: "succeeded", result: { status: 200, body: { caption: "a tiny image" } } });
  });
});

describe("sd-webui clients' connection settings", () => {
  it("accepts the key as the Basic password with any user name and answers sd-webui's 401s", async () => {
    const user = await createKey("user");
    expect((await call("/sdapi/v1/sd-models", { headers: basic("", user) })).status).toBe(200);
    expect((await call("/sdapi/v1/sd-models", { headers: basic("anyuser", user) })).status).toBe(200);
    expect(await json(await call("/sdapi/v1/sd-models", { headers: basic("anyuser", "wrong") }), 401)).toEqual({
      error: "HTTPException",
      detail: "Incorrect username or password",
      body: "",
      errors: "401: Incorrect username or password",
    });
    expect(await json(await call("/sdapi/v1/options"), 401)).toMatchObject({ detail: "Not authenticated" });
    expect(await json(await call("/controlnet/model_list"), 401)).toMatchObject({ detail: "Not authenticated" });
  });

  it("answers under a base-URL path prefix as at the root", async () => {
    const { sha256 } = await createModel("sd-prefix");
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "node-sd-prefix");
    const models = await json<Array<{ sha256: string }>>(await call("/sdapi-prefix/sdapi/v1/sd-models", { token: user }), 200);
    expect(models.map((m) => m.sha256)).toContain(sha256);
    expect(await json(await call("/a/b/sdapi/v1/options", { token: user, body: { sd_model_checkpoint: "sd-prefix" } }), 200)).toBeNull();
    expect((await json<Record<string, unknown>>(await call("/a/b/sdapi/v1/options", { token: user }), 200)).sd_model_checkpoint).toBe(
      `sd-prefix.safetensors [${sha256.slice(0, 10)}]`,
    );
    expect((await call("/x/sdapi/v1/options")).status).toBe(401);

    const txt2img = call("/sdapi-prefix/sdapi/v1/txt2img", { headers: basic("me", user), body: { prompt: "prefixed" } });
    const claimed = (await claim(node, "node-sd-prefix", 3000))!;
    expect(claimed.task.kind).toBe("txt2img");
    await completeTask(node, claimed, { info: { seed: 3 } });
    expect((await json<{ images: string[] }>(await txt2img, 200)).images).toHaveLength(1);

    const modules = call("/sdapi-prefix/controlnet/module_list", { token: user });
    const claimedModules = (await claim(node, "node-sd-prefix", 3000))!;
    expect(claimedModules.task.passthrough).toEqual({ method: "GET", path: "/controlnet/module_list" });
    await completeTask(node, claimedModules, { passthroughResult: { status: 200, body: { module_list: ["canny"] } } });
    expect(await json(await modules, 200)).toEqual({ module_list: ["canny"] });
  });

  it("documents the core routes in the OpenAPI document under the sdapi tag", async () => {
    const doc = await json<{ paths: Record<string, Record<string, { tags: string[] }>> }>(await call("/openapi.json"), 200);
    for (const [path, method] of [
      ["/sdapi/v1/txt2img", "post"],
      ["/sdapi/v1/img2img", "post"],
      ["/sdapi/v1/options", "get"],
      ["/sdapi/v1/progress", "get"],
      ["/sdapi/v1/sd-models", "get"],
      ["/sdapi/v1/samplers", "get"],
    ] as const) {
      expect(doc.paths[path]?.[method]?.tags, `${method} ${path}`).toEqual(["sdapi"]);
    }
    expect(Object.keys(doc.paths).some((p) => p.includes("{prefix}"))).toBe(false);
  });
});
