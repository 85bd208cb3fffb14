// The sd-webui surface's generation routes and per-caller state, driven as an A1111 client would,
// with the test acting as the gpu-node through the node protocol.
import { describe, expect, it } from "vitest";
import { call, claim, createKey, createModel, json, registerNode } from "./helpers";
import { completeTask, expectTinyPng, failTask, reportProgress, TINY_PNG_BASE64 } from "./sdapi-support";

interface Generation {
  images: string[];
  parameters: Record<string, unknown>;
  info: string;
}

describe("sd-webui generation routes", () => {
  it("txt2img answers {images: base64, parameters, info: string}, checkpoint by title", async () => {
    const { sha256 } = await createModel("sd-t2i");
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "node-sd-t2i");
    const title = `sd-t2i.safetensors [${sha256.slice(0, 10)}]`;
    const pending = call("/sdapi/v1/txt2img", {
      token: user,
      body: { prompt: "a cat", steps: 20, override_settings: { sd_model_checkpoint: title, CLIP_stop_at_last_layers: 2 }, use_deprecated_controlnet: false },
    });
    const claimed = (await claim(node, "node-sd-t2i", 3000))!;
    expect(claimed.task).toMatchObject({ kind: "txt2img", model: { name: "sd-t2i" } });
    expect(claimed.task.payload).toMatchObject({ prompt: "a cat", steps: 20, override_settings: { CLIP_stop_at_last_layers: 2 } });
    const info = { seed: 42, all_seeds: [42, 43], infotexts: ["a cat\nSteps: 20"] };
    await completeTask(node, claimed, { images: 2, parameters: { prompt: "a cat", steps: 20, sampler_name: "Euler a" }, info });
    const res = await pending;
    const answer = await json<Generation>(res, 200);
    expect(Object.keys(answer).sort()).toEqual(["images", "info", "parameters"]);
    expect(answer.images).toHaveLength(2);
    answer.images.forEach(expectTinyPng);
    expect(typeof answer.info).toBe("string");
    expect(JSON.parse(answer.info)).toEqual(info);
    expect(answer.parameters).toEqual({ prompt: "a cat", steps: 20, sampler_name: "Euler a" });
    expect(res.headers.get("x-process-time")).toMatch(/^\d+\.\d{4}$/);
    const taskId = res.headers.get("task-id")!;
    const result = await json<{ status: string }>(await call(`/tasks/${taskId}/result`, { token: user }), 200);
    expect(result.status).toBe("succeeded");
  });

  it("img2img takes the caller's default checkpoint (set by short hash) and answers the same shape", async () => {
    const { sha256 } = await createModel("sd-i2i");
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "node-sd-i2i");
    expect(await json(await call("/sdapi/v1/options", { token: user, body: { sd_model_checkpoint: sha256.slice(0, 10) } }), 200)).toBeNull();
    const options = await json<Record<string, unknown>>(await call("/sdapi/v1/options", { token: user }), 200);
    expect(options).toMatchObject({ sd_model_checkpoint: `sd-i2i.safetensors [${sha256.slice(0, 10)}]`, sd_checkpoint_hash: sha256, samples_format: "png" });

    const pending = call("/sdapi/v1/img2img", { token: user, body: { prompt: "a dog", init_images: [TINY_PNG_BASE64], denoising_strength: 0.5, mask: null } });
    const claimed = (await claim(node, "node-sd-i2i", 3000))!;
    expect(claimed.task).toMatchObject({ kind: "img2img", model: { name: "sd-i2i" } });
    await completeTask(node, claimed, { parameters: { prompt: "a dog", init_images: null }, info: { seed: 7 } });
    const answer = await json<Generation>(await pending, 200);
    expect(answer.images).toHaveLength(1);
    expectTinyPng(answer.images[0]);
    expect(JSON.parse(answer.info)).toEqual({ seed: 7 });
    expect(answer.parameters).toEqual({ prompt: "a dog", init_images: null });
  });

  it("extra-single-image answers {html_info, image}; extra-batch-images {html_info, images}", async () => {
    await createModel("sd-extras");
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "node-sd-extras");

    const single = call("/sdapi/v1/extra-single-image", { token: user, body: { image: TINY_PNG_BASE64, upscaler_1: "Lanczos", upscaling_resize: 2 } });
    const claimedSingle = (await claim(node, "node-sd-extras", 3000))!;
    expect(claimedSingle.task.kind).toBe("extras");
    await completeTask(node, claimedSingle, { info: "<p>upscaled</p>" });
    const singleAnswer = await json<{ html_info: string; image: string }>(await single, 200);
    expect(Object.keys(singleAnswer).sort()).toEqual(["html_info", "image"]);
    expect(singleAnswer.html_info).toBe("<p>upscaled</p>");
    expectTinyPng(singleAnswer.image);

    // stable-diffusion-api sends image_list: [{image, name}]; sd-webui's own field is imageList: [{data, name}].
    const batch = call("/sdapi/v1/extra-batch-images", {
      token: user,
      body: {
        image_list: [
          { image: TINY_PNG_BASE64, name: "a" },
          { image: TINY_PNG_BASE64, name: "b" },
        ],
        upscaler_1: "Lanczos",
      },
    });
    const claimedBatch = (await claim(node, "node-sd-extras", 3000))!;
    expect(claimedBatch.task.kind).toBe("extras_batch");
    expect(claimedBatch.task.payload.imageList).toEqual([
      { data: TINY_PNG_BASE64, name: "a" },
      { data: TINY_PNG_BASE64, name: "b" },
    ]);
    await completeTask(node, claimedBatch, { images: 2, info: "<p>2 images</p>" });
    const batchAnswer = await json<{ html_info: string; images: string[] }>(await batch, 200);
    expect(Object.keys(batchAnswer).sort()).toEqual(["html_info", "images"]);
    expect(batchAnswer.images).toHaveLength(2);
    batchAnswer.images.forEach(expectTinyPng);
  });

  it("resolves override checkpoints by title, model name, file name, short hash and sha256", async () => {
    const { sha256 } = await createModel("sd-alias");
    const user = await createKey("user");
    for (const alias of [`sd-alias.safetensors [${sha256.slice(0, 10)}]`, "sd-alias", "sd-alias.safetensors", sha256.slice(0, 10), sha256]) {
      const res = await call("/sdapi/v1/txt2img", {
        token: user,
        body: { prompt: alias, override_settings: { sd_model_checkpoint: alias } },
        headers: { "request-type": "async" },
      });
      const submitted = await json<{ taskId: string; status: string }>(res, 202);
      expect(submitted.status).toBe("waiting");
      const result = await json<{ checkpoint: string }>(await call(`/tasks/${submitted.taskId}/result`, { token: user }), 200);
      expect(result.checkpoint, alias).toBe("sd-alias");
      await json(await call(`/tasks/${submitted.taskId}/cancellation`, { token: user, method: "POST" }), 200);
    }
  });

  it("uses force_task_id as the task id when it is free", async () => {
    await createModel("sd-force");
    const user = await createKey("user");
    const body = { prompt: "x", force_task_id: "task(txt2img-ABC1234)", override_settings: { sd_model_checkpoint: "sd-force" } };
    const first = await json<{ taskId: string }>(await call("/sdapi/v1/txt2img", { token: user, body, headers: { "request-type": "async" } }), 202);
    expect(first.taskId).toBe("task(txt2img-ABC1234)");
    const second = await json<{ taskId: string }>(await call("/sdapi/v1/txt2img", { token: user, body, headers: { "request-type": "async" } }), 202);
    expect(second.taskId).not.toBe("task(txt2img-ABC1234)");
    for (const id of [first.taskId, second.taskId])
      await json(await call(`/tasks/${encodeURIComponent(id)}/cancellation`, { token: user, method: "POST" }), 200);
  });

  it("answers sd-webui's own error when the node failed the task with one", async () => {
    await createModel("sd-fail");
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "node-sd-fail");
    const pending = call("/sdapi/v1/txt2img", {
      token: user,
      body: { prompt: "x", sampler_name: "Nope", override_settings: { sd_model_checkpoint: "sd-fail" } },
    });
    const claimed = (await claim(node, "node-sd-fail", 3000))!;
    const webuiBody = { error: "HTTPException", detail: "Sampler not found", body: "", errors: "400: Sampler not found" };
    await failTask(node, claimed, { status: 400, body: webuiBody }, "sd-webui answered 400: Sampler not found");
    const res = await pending;
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual(webuiBody);

    // A failure without sd-webui's answer (node-side) comes back as sd-webui's uncaught-exception shape.
    const other = call("/sdapi/v1/txt2img", { token: user, body: { prompt: "y", override_settings: { sd_model_checkpoint: "sd-fail" } } });
    const claimedOther = (await claim(node, "node-sd-fail", 3000))!;
    await failTask(node, claimedOther, null, "input image is not available");
    expect(await json(await other, 500)).toEqual({ error: "RuntimeError", detail: "", body: "", errors: "input image is not available" });
  });

  it("answers gateway errors in sd-webui's shapes", async () => {
    await createModel("sd-errors");
    const user = await createKey("user");
    const unknownOption = await json(await call("/sdapi/v1/options", { token: user, body: { sd_model_checkpoint: "nope.safetensors" } }), 500);
    expect(unknownOption).toEqual({ error: "RuntimeError", detail: "", body: "", errors: "model 'nope.safetensors' not found" });

    const unknownModel = await json<Record<string, string>>(
      await call("/sdapi/v1/txt2img", { token: user, body: { override_settings: { sd_model_checkpoint: "nope" } } }),
      404,
    );
    expect(unknownModel).toMatchObject({ error: "HTTPException", body: "" });
    expect(unknownModel.detail).toContain("nope");
    expect(unknownModel.errors).toBe(`404: ${unknownModel.detail}`);

    const noDefault = await json<Record<string, string>>(await call("/sdapi/v1/txt2img", { token: user, body: { prompt: "x" } }), 422);
    expect(noDefault).toMatchObject({ error: "HTTPException", body: "" });
    expect(noDefault.detail).toContain("sd_model_checkpoint");

    const badType = await json<{ detail: Array<{ loc: unknown[]; msg: string; type: string }> }>(
      await call("/sdapi/v1/txt2img", { token: user, body: { steps: "many" } }),
      422,
    );
    expect(badType.detail[0]).toMatchObject({ loc: ["body", "steps"], msg: "value is not a valid integer", type: "type_error.integer" });

    const noInit = await json(
      await call("/sdapi/v1/img2img", { token: user, body: { prompt: "x", override_settings: { sd_model_checkpoint: "sd-errors" } } }),
      404,
    );
    expect(noInit).toEqual({ error: "HTTPException", detail: "Init image not found", body: "", errors: "404: Init image not found" });

    const noList = await json<{ detail: Array<{ loc: unknown[]; type: string }> }>(
      await call("/sdapi/v1/extra-batch-images", { token: user, body: { upscaler_1: "Lanczos" } }),
      422,
    );
    expect(noList.detail[0]).toMatchObject({ loc: ["body", "imageList"], type: "value_error.missing" });

    const malformed = await json<{ detail: Array<{ type: string }> }>(
      await call("/sdapi/v1/txt2img", { token: user, body: "{not json", headers: { "content-type": "application/json" } }),
      422,
    );
    expect(malformed.detail[0]!.type).toBe("value_error.jsondecode");
  });

  it("answers 504 in sd-webui's shape when no node finishes within the sync wait", async () => {
    await createModel("sd-timeout");
    const user = await createKey("user");
    const res = await call("/sdapi/v1/txt2img", { token: user, body: { prompt: "x", override_settings: { sd_model_checkpoint: "sd-timeout" } } });
    const body = await json<Record<string, string>>(res, 504);
    expect(body).toMatchObject({ error: "HTTPException", body: "" });
    expect(body.detail).toContain("still waiting");
    const taskId = res.headers.get("task-id")!;
    await json(await call(`/tasks/${taskId}/cancellation`, { token: user, method: "POST" }), 200);
  });
});

describe("sd-webui options", () => {
  it("GET is sd-webui's flat dict with the caller's options; POST stores them and answers null", async () => {
    await createModel("sd-opts");
    const user = await createKey("user");
    const fresh = await json<Record<string, unknown>>(await call("/sdapi/v1/options", { token: user }), 200);
    expect(fresh).toMatchObject({ sd_model_checkpoint: null, samples_format: "png", CLIP_stop_at_last_layers: 1, sd_vae: "Automatic" });

    // Posting back the dict it read (plus changes) stores only what differs from sd-webui's defaults.
    expect(
      await json(
        await call("/sdapi/v1/options", {
          token: user,
          body: { ...fresh, sd_model_checkpoint: "sd-opts", CLIP_stop_at_last_layers: 2, my_extension_flag: true },
        }),
        200,
      ),
    ).toBeNull();
    const stored = await json<{ data: Record<string, unknown> }>(await call("/options", { token: user }), 200);
    expect(stored.data).toEqual({ sd_model_checkpoint: "sd-opts", CLIP_stop_at_last_layers: 2, my_extension_flag: true });
    const after = await json<Record<string, unknown>>(await call("/sdapi/v1/options", { token: user }), 200);
    expect(after.sd_model_checkpoint).toMatch(/^sd-opts\.safetensors \[[0-9a-f]{10}\]$/);
    expect(after.CLIP_stop_at_last_layers).toBe(2);

    // Setting a default value again drops the override.
    await json(await call("/sdapi/v1/options", { token: user, body: { CLIP_stop_at_last_layers: 1 } }), 200);
    expect((await json<{ data: Record<string, unknown> }>(await call("/options", { token: user }), 200)).data).toEqual({
      sd_model_checkpoint: "sd-opts",
      my_extension_flag: true,
    });

    // Another key's options are its own.
    const other = await createKey("user");
    expect((await json<Record<string, unknown>>(await call("/sdapi/v1/options", { token: other }), 200)).sd_model_checkpoint).toBeNull();
  });
});

describe("sd-webui progress and interrupt", () => {
  it("show and stop only the caller's own job", async () => {
    await createModel("sd-progress");
    const alice = await createKey("user");
    const bob = await createKey("user");
    const carol = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "node-sd-progress");
    const body = { prompt: "x", override_settings: { sd_model_checkpoint: "sd-progress" } };

    const idle = await json(await call("/sdapi/v1/progress", { token: carol }), 200);
    expect(idle).toEqual({
      progress: 0,
      eta_relative: 0,
      state: {
        skipped: false,
        interrupted: false,
        stopping_generation: false,
        job: "",
        job_count: 0,
        job_timestamp: "0",
        job_no: 0,
        sampling_step: 0,
        sampling_steps: 0,
      },
      current_image: null,
      textinfo: null,
    });

    const alicePending = call("/sdapi/v1/txt2img", { token: alice, body });
    const claimed = (await claim(node, "node-sd-progress", 3000))!;
    const bobTask = await json<{ taskId: string }>(await call("/sdapi/v1/txt2img", { token: bob, body, headers: { "request-type": "async" } }), 202);

    await reportProgress(node, claimed, {
      progress: 0.5,
      etaRelative: 3,
      state: { job: "txt2img", job_count: 1, job_no: 0, sampling_step: 10, sampling_steps: 20 },
      currentImage: `data:image/png;base64,${TINY_PNG_BASE64}`,
      textinfo: "Step 10/20",
    });
    const aliceProgress = await json<Record<string, unknown>>(await call("/sdapi/v1/progress", { token: alice }), 200);
    expect(aliceProgress).toMatchObject({
      progress: 0.5,
      eta_relative: 3,
      current_image: TINY_PNG_BASE64,
      textinfo: "Step 10/20",
      state: { job_count: 1, sampling_step: 10, sampling_steps: 20, interrupted: false },
    });
    expect((await json<Record<string, unknown>>(await call("/sdapi/v1/progress?skip_current_image=true", { token: alice }), 200)).current_image).toBeNull();
    const bobProgress = await json<{ progress: number; state: { job_count: number }; textinfo: string }>(await call("/sdapi/v1/progress", { token: bob }), 200);
    expect(bobProgress).toMatchObject({ progress: 0, state: { job_count: 1 }, textinfo: "In queue: 1" });

    // Carol has nothing: her interrupt touches no one. Bob's interrupt cancels his waiting task only.
    expect(await json(await call("/sdapi/v1/interrupt", { token: carol, method: "POST" }), 200)).toEqual({});
    expect(await json(await call("/sdapi/v1/interrupt", { token: bob, method: "POST" }), 200)).toEqual({});
    expect((await json<{ status: string }>(await call(`/tasks/${bobTask.taskId}/result`, { token: bob }), 200)).status).toBe("cancelled");
    expect((await reportProgress(node, claimed, { progress: 0.6 })).cancel).toBe(false);

    // Alice's interrupt reaches her running task; sd-webui then answers 200 with what it had.
    expect(await json(await call("/sdapi/v1/interrupt", { token: alice, method: "POST" }), 200)).toEqual({});
    expect((await json<{ state: { interrupted: boolean } }>(await call("/sdapi/v1/progress", { token: alice }), 200)).state.interrupted).toBe(true);
    expect((await reportProgress(node, claimed, { progress: 0.7 })).cancel).toBe(true);
    await completeTask(node, claimed, { info: { seed: 1 } });
    const interrupted = await json<Generation>(await alicePending, 200);
    expect(interrupted.images).toHaveLength(1);
    expect((await json<{ progress: number }>(await call("/sdapi/v1/progress", { token: alice }), 200)).progress).toBe(0);
    expect(await json(await call("/sdapi/v1/skip", { token: alice, method: "POST" }), 200)).toBeNull();
  });
});
