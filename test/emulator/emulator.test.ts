// The sd-webui emulator over real HTTP: what a client of a real AUTOMATIC1111 sd-webui would see.

import { createHash, randomBytes } from "node:crypto";
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningEmulator, startEmulator } from "../../emulator/server.ts";
import { callEmulator as call } from "./support.ts";

const STEP_MS = 10;
const LOAD_MS = 300;

function decodePng(base64: string): PNG {
  expect(base64.startsWith("data:")).toBe(false);
  return PNG.sync.read(Buffer.from(base64, "base64"));
}

function meanColor(png: PNG): [number, number, number] {
  const sums = [0, 0, 0];
  for (let i = 0; i < png.data.length; i += 4) for (let ch = 0; ch < 3; ch++) sums[ch]! += png.data[i + ch]!;
  const pixels = png.width * png.height;
  return [sums[0]! / pixels, sums[1]! / pixels, sums[2]! / pixels];
}

function solidPng(width: number, height: number, rgb: [number, number, number]): string {
  const png = new PNG({ width, height });
  for (let i = 0; i < png.data.length; i += 4) png.data.set([...rgb, 255], i);
  return PNG.sync.write(png).toString("base64");
}

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

let workDir: string;
let modelsDir: string;
let alphaSha: string;
let betaSha: string;
let emulator: RunningEmulator;
let url: string;
const api = (method: string, route: string, body?: unknown, headers?: Record<string, string>) => call(url, method, route, body, headers);

beforeAll(async () => {
  workDir = await mkdtemp(path.join(os.tmpdir(), "sdgate-emulator-"));
  modelsDir = path.join(workDir, "models", "Stable-diffusion");
  await mkdir(modelsDir, { recursive: true });
  await mkdir(path.join(workDir, "models", "Lora"));
  await writeFile(path.join(workDir, "models", "Lora", "detail-tweaker.safetensors"), randomBytes(64));
  const alpha = randomBytes(4096);
  const beta = randomBytes(3000);
  alphaSha = sha256(alpha);
  betaSha = sha256(beta);
  await writeFile(path.join(modelsDir, "alpha.safetensors"), alpha);
  await writeFile(path.join(modelsDir, "beta.safetensors"), beta);
  emulator = await startEmulator({ modelsDir, stepMs: STEP_MS, loadMs: LOAD_MS });
  url = emulator.url;
});

afterAll(async () => {
  await emulator?.close();
  await rm(workDir, { recursive: true, force: true });
});

describe("txt2img", () => {
  it("draws the same PNG for the same seed and prompt, and another picture for another seed", async () => {
    const request = { prompt: "a lighthouse at dusk", seed: 1234, steps: 3, width: 128, height: 96 };
    const first = await api("POST", "/sdapi/v1/txt2img", request);
    const again = await api("POST", "/sdapi/v1/txt2img", request);
    const otherSeed = await api("POST", "/sdapi/v1/txt2img", { ...request, seed: 1235 });
    expect(first.status).toBe(200);
    expect(again.body.images[0]).toBe(first.body.images[0]);
    const a = decodePng(first.body.images[0]);
    const b = decodePng(otherSeed.body.images[0]);
    let differing = 0;
    for (let i = 0; i < a.data.length; i += 4) if (a.data[i] !== b.data[i] || a.data[i + 1] !== b.data[i + 1]) differing++;
    expect(differing / (a.width * a.height)).toBeGreaterThan(0.5);
  });

  it("answers raw base64 PNGs of the requested size that carry the infotext", async () => {
    const reply = await api("POST", "/sdapi/v1/txt2img", { prompt: "blue sky", seed: 42, steps: 2, width: 320, height: 192, batch_size: 2 });
    expect(reply.body.images).toHaveLength(2);
    for (const image of reply.body.images) {
      const png = decodePng(image);
      expect([png.width, png.height]).toEqual([320, 192]);
    }
    const pngInfo = await api("POST", "/sdapi/v1/png-info", { image: reply.body.images[1] });
    expect(pngInfo.body.info).toContain("Seed: 43");
    expect(pngInfo.body.parameters).toMatchObject({ Prompt: "blue sky", Steps: "2", "Size-1": "320", "Size-2": "192", Model: "alpha" });
  });

  it("reports a real seed for seed -1, numbers a batch seed+i, and sends info as a JSON string", async () => {
    const reply = await api("POST", "/sdapi/v1/txt2img", { prompt: "cat", seed: -1, steps: 1, width: 64, height: 64, batch_size: 2, n_iter: 2 });
    expect(reply.body.images).toHaveLength(4);
    expect(typeof reply.body.info).toBe("string");
    const info = JSON.parse(reply.body.info);
    expect(info.seed).toBeGreaterThanOrEqual(0);
    expect(info.all_seeds).toEqual([info.seed, info.seed + 1, info.seed + 2, info.seed + 3]);
    expect(info).toMatchObject({
      prompt: "cat",
      all_prompts: ["cat", "cat", "cat", "cat"],
      width: 64,
      height: 64,
      steps: 1,
      batch_size: 2,
      sampler_name: "Euler",
      sd_model_name: "alpha",
      sd_model_hash: alphaSha.slice(0, 10),
      index_of_first_image: 0,
      version: "v1.10.1",
    });
    expect(info.job_timestamp).toMatch(/^\d{14}$/);
    expect(info.infotexts).toHaveLength(4);
    for (const key of ["negative_prompt", "subseed", "all_subseeds", "cfg_scale", "extra_generation_params", "styles", "clip_skip"]) {
      expect(info).toHaveProperty(key);
    }
  });

  it("echoes the request with defaults filled in, accepting and dropping unknown fields", async () => {
    const reply = await api("POST", "/sdapi/v1/txt2img", {
      prompt: "x",
      steps: 2,
      width: 64,
      height: 64,
      use_deprecated_controlnet: false,
      upscaling_resize_crop: true,
    });
    expect(reply.status).toBe(200);
    expect(reply.body.parameters).toMatchObject({
      prompt: "x",
      steps: 2,
      cfg_scale: 7,
      seed: -1,
      batch_size: 1,
      n_iter: 1,
      sampler_name: null,
      sampler_index: "Euler",
      send_images: true,
      save_images: false,
      override_settings_restore_afterwards: true,
      enable_hr: false,
    });
    expect(reply.body.parameters).not.toHaveProperty("use_deprecated_controlnet");
  });

  it("returns no images with send_images false", async () => {
    const reply = await api("POST", "/sdapi/v1/txt2img", { prompt: "x", steps: 1, width: 64, height: 64, send_images: false });
    expect(reply.body.images).toEqual([]);
    expect(JSON.parse(reply.body.info).infotexts).toHaveLength(1);
  });

  it("splits a combined sampler name into sampler and schedule type", async () => {
    const reply = await api("POST", "/sdapi/v1/txt2img", { prompt: "x", steps: 1, width: 64, height: 64, sampler_name: "Euler Karras" });
    const info = JSON.parse(reply.body.info);
    expect(info.sampler_name).toBe("Euler");
    expect(info.infotexts[0]).toContain("Sampler: Euler, Schedule type: Karras");
  });

  it("upscales with hires fix", async () => {
    const reply = await api("POST", "/sdapi/v1/txt2img", { prompt: "x", steps: 1, width: 64, height: 48, enable_hr: true, hr_scale: 2 });
    const png = decodePng(reply.body.images[0]);
    expect([png.width, png.height]).toEqual([128, 96]);
    expect(JSON.parse(reply.body.info).infotexts[0]).toContain("Hires upscale: 2");
  });
});

describe("img2img", () => {
  it("derives the picture from the init image", async () => {
    const request = { prompt: "a house", seed: 7, steps: 2, width: 96, height: 96, denoising_strength: 0.75 };
    const fromRed = await api("POST", "/sdapi/v1/img2img", { ...request, init_images: [solidPng(48, 48, [220, 20, 20])] });
    const fromBlue = await api("POST", "/sdapi/v1/img2img", {
      ...request,
      init_images: [`data:image/png;base64,${solidPng(48, 48, [20, 20, 220])}`],
    });
    expect(fromRed.status).toBe(200);
    expect(fromBlue.status).toBe(200);
    const red = meanColor(decodePng(fromRed.body.images[0]));
    const blue = meanColor(decodePng(fromBlue.body.images[0]));
    expect(red[0]).toBeGreaterThan(red[2] + 40);
    expect(blue[2]).toBeGreaterThan(blue[0] + 40);
    expect(fromRed.body.parameters).toMatchObject({ init_images: null, mask: null, denoising_strength: 0.75 });
    expect(fromRed.body.parameters).not.toHaveProperty("include_init_images");
  });

  it("answers 404 in sd-webui's error shape without init_images", async () => {
    const reply = await api("POST", "/sdapi/v1/img2img", { prompt: "x" });
    expect(reply.status).toBe(404);
    expect(reply.body).toEqual({ error: "HTTPException", detail: "Init image not found", body: "", errors: "404: Init image not found" });
  });

  it("refuses an image that is not one", async () => {
    const reply = await api("POST", "/sdapi/v1/img2img", { init_images: ["bm90IGFuIGltYWdl"] });
    expect(reply.status).toBe(500);
    expect(reply.body).toMatchObject({ error: "HTTPException", detail: "Invalid encoded image" });
  });
});

describe("errors", () => {
  it("runs an unknown sampler as the default DPM++ 2M (v1.10 get_sampler_and_scheduler) and answers an unknown script with 422", async () => {
    const sampler = await api("POST", "/sdapi/v1/txt2img", { sampler_name: "Warp Drive", steps: 1, width: 64, height: 64 });
    expect(sampler.status).toBe(200);
    const info = JSON.parse(sampler.body.info);
    expect(info.sampler_name).toBe("DPM++ 2M");
    expect(info.infotexts[0]).toContain("Sampler: DPM++ 2M,");
    const alias = await api("POST", "/sdapi/v1/txt2img", { sampler_name: "k_euler", steps: 1, width: 64, height: 64 });
    expect(JSON.parse(alias.body.info).sampler_name).toBe("DPM++ 2M");
    const script = await api("POST", "/sdapi/v1/txt2img", { script_name: "make it pop" });
    expect(script.status).toBe(422);
    expect(script.body.detail).toBe("Script 'make it pop' not found");
  });

  it("answers malformed JSON and wrong types with FastAPI's 422", async () => {
    const malformed = await api("POST", "/sdapi/v1/txt2img", "{not json");
    expect(malformed.status).toBe(422);
    expect(malformed.body.detail[0]).toMatchObject({ loc: ["body", 1], type: "value_error.jsondecode" });
    const wrongType = await api("POST", "/sdapi/v1/txt2img", { steps: "many" });
    expect(wrongType.status).toBe(422);
    expect(wrongType.body).toEqual({ detail: [{ loc: ["body", "steps"], msg: "value is not a valid integer", type: "type_error.integer" }] });
  });

  it("answers unknown routes like FastAPI and times every response", async () => {
    const reply = await api("GET", "/sdapi/v1/no-such-thing");
    expect(reply.status).toBe(404);
    expect(reply.body).toEqual({ detail: "Not Found" });
    expect(reply.headers.get("x-process-time")).toMatch(/^\d+\.\d{4}$/);
  });
});

describe("checkpoints and options", () => {
  it("lists the checkpoints, with a hash only for the one loaded at start (sd-webui hashes on load)", async () => {
    const models = await api("GET", "/sdapi/v1/sd-models");
    expect(models.body).toEqual([
      {
        title: `alpha.safetensors [${alphaSha.slice(0, 10)}]`,
        model_name: "alpha",
        hash: alphaSha.slice(0, 10),
        sha256: alphaSha,
        filename: path.join(modelsDir, "alpha.safetensors"),
        config: null,
      },
      {
        title: "beta.safetensors",
        model_name: "beta",
        hash: null,
        sha256: null,
        filename: path.join(modelsDir, "beta.safetensors"),
        config: null,
      },
    ]);
  });

  it("switches the checkpoint through POST /options after the load delay, and reports it", async () => {
    const loadsBefore = emulator.stats().loads;
    const startedMs = Date.now();
    const reply = await api("POST", "/sdapi/v1/options", { sd_model_checkpoint: "beta", CLIP_stop_at_last_layers: 2 });
    expect(reply.status).toBe(200);
    expect(reply.body).toBeNull();
    expect(Date.now() - startedMs).toBeGreaterThanOrEqual(LOAD_MS * 0.8);
    expect(emulator.stats()).toMatchObject({ loads: loadsBefore + 1, loadedCheckpoint: `beta.safetensors [${betaSha.slice(0, 10)}]` });

    const options = await api("GET", "/sdapi/v1/options");
    expect(options.body).toMatchObject({
      sd_model_checkpoint: `beta.safetensors [${betaSha.slice(0, 10)}]`,
      sd_checkpoint_hash: betaSha,
      CLIP_stop_at_last_layers: 2,
      samples_format: "png",
    });
    const generated = await api("POST", "/sdapi/v1/txt2img", { prompt: "x", steps: 1, width: 64, height: 64 });
    expect(JSON.parse(generated.body.info)).toMatchObject({ sd_model_name: "beta", clip_skip: 2 });

    for (const alias of [alphaSha.slice(0, 10), alphaSha, "alpha.safetensors", `alpha.safetensors [${alphaSha.slice(0, 10)}]`]) {
      expect((await api("POST", "/sdapi/v1/options", { sd_model_checkpoint: alias })).status).toBe(200);
      expect(emulator.stats().loadedCheckpoint).toContain("alpha.safetensors");
    }
    await api("POST", "/sdapi/v1/options", { CLIP_stop_at_last_layers: 1 });
  });

  it("answers an unknown checkpoint with sd-webui's 500 RuntimeError", async () => {
    const reply = await api("POST", "/sdapi/v1/options", { sd_model_checkpoint: "gamma-xl" });
    expect(reply.status).toBe(500);
    expect(reply.body).toEqual({ error: "RuntimeError", detail: "", body: "", errors: "model 'gamma-xl' not found" });
  });

  it("loads an override_settings checkpoint for one request and restores the setting afterwards", async () => {
    const loadsBefore = emulator.stats().loads;
    const overridden = await api("POST", "/sdapi/v1/txt2img", {
      prompt: "x",
      steps: 1,
      width: 64,
      height: 64,
      override_settings: { sd_model_checkpoint: "beta" },
    });
    expect(JSON.parse(overridden.body.info).sd_model_name).toBe("beta");
    expect(emulator.stats().loads).toBe(loadsBefore + 1);
    expect((await api("GET", "/sdapi/v1/options")).body.sd_model_checkpoint).toContain("alpha.safetensors");

    // Without an override (or with an unknown one) the settings checkpoint is loaded again.
    const unknownOverride = await api("POST", "/sdapi/v1/txt2img", {
      prompt: "x",
      steps: 1,
      width: 64,
      height: 64,
      override_settings: { sd_model_checkpoint: "no-such-model" },
    });
    expect(JSON.parse(unknownOverride.body.info).sd_model_name).toBe("alpha");
    expect(emulator.stats().loads).toBe(loadsBefore + 2);
  });

  it("picks up a checkpoint copied in later on refresh-checkpoints", async () => {
    await copyFile(path.join(modelsDir, "beta.safetensors"), path.join(modelsDir, "gamma.ckpt"));
    const before = await api("GET", "/sdapi/v1/sd-models");
    expect(before.body.map((m: { model_name: string }) => m.model_name)).not.toContain("gamma");
    expect((await api("POST", "/sdapi/v1/refresh-checkpoints")).body).toBeNull();
    const after = await api("GET", "/sdapi/v1/sd-models");
    expect(after.body.map((m: { model_name: string }) => m.model_name)).toEqual(["alpha", "beta", "gamma"]);
    expect((await api("POST", "/sdapi/v1/options", { sd_model_checkpoint: "gamma" })).status).toBe(200);
    expect(emulator.stats().loadedCheckpoint).toBe(`gamma.ckpt [${betaSha.slice(0, 10)}]`);
    await api("POST", "/sdapi/v1/options", { sd_model_checkpoint: "alpha" });
  });
});

describe("one job at a time", () => {
  const slow = (id: string) => ({ prompt: id, steps: 50, width: 64, height: 64, force_task_id: id });
  const taskProgress = (id: string, idLivePreview = -1) =>
    api("POST", "/internal/progress", { id_task: id, id_live_preview: idLivePreview }).then((reply) => reply.body);

  it("runs two concurrent txt2img one after the other, the second queued behind the first", async () => {
    const startedMs = Date.now();
    const finished: string[] = [];
    const first = api("POST", "/sdapi/v1/txt2img", slow("task(first)")).then((reply) => {
      finished.push("first");
      return reply;
    });
    await expect.poll(() => taskProgress("task(first)"), { interval: 10 }).toMatchObject({ active: true });
    const second = api("POST", "/sdapi/v1/txt2img", slow("task(second)")).then((reply) => {
      finished.push("second");
      return reply;
    });
    await expect
      .poll(() => taskProgress("task(second)"), { interval: 10 })
      .toMatchObject({ active: false, queued: true, completed: false, textinfo: "In queue: 1/1" });
    expect((await api("GET", "/internal/pending-tasks")).body).toEqual({ size: 1, tasks: ["task(second)"] });

    const [a, b] = await Promise.all([first, second]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(finished).toEqual(["first", "second"]);
    expect(Date.now() - startedMs).toBeGreaterThanOrEqual(2 * 50 * STEP_MS * 0.9);
    expect(await taskProgress("task(first)")).toMatchObject({ active: false, queued: false, completed: true });
  });

  it("reports progress and live previews while a job runs, and idle afterwards", async () => {
    const job = api("POST", "/sdapi/v1/txt2img", { prompt: "x", steps: 40, width: 64, height: 64 });
    const seen: { progress: number; step: number; image: string | null }[] = [];
    let done = false;
    void job.then(
      () => (done = true),
      () => (done = true),
    );
    while (!done) {
      const { body } = await api("GET", "/sdapi/v1/progress");
      if (body.state.job_count > 0) seen.push({ progress: body.progress, step: body.state.sampling_step, image: body.current_image });
      if (body.state.job_count > 0) expect(body.state).toMatchObject({ sampling_steps: 40, job_count: 1, interrupted: false, job: "scripts_txt2img" });
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect((await job).status).toBe(200);
    expect(new Set(seen.map((s) => s.step)).size).toBeGreaterThan(2);
    expect(seen.some((s) => s.progress > 0.01 && s.progress < 1)).toBe(true);
    const preview = seen.find((s) => s.image)?.image;
    expect(decodePng(preview!).width).toBe(64);

    const idle = await api("GET", "/sdapi/v1/progress");
    expect(idle.body).toMatchObject({ progress: 0, eta_relative: 0, current_image: null, state: { job_count: 0 } });
  });

  it("follows a forced task id through /internal/progress with advancing live previews", async () => {
    const id = "task(followed)";
    const job = api("POST", "/sdapi/v1/txt2img", { prompt: "x", steps: 40, width: 64, height: 64, force_task_id: id });
    let finished = false;
    void job.then(
      () => (finished = true),
      () => (finished = true),
    );
    const previewIds: number[] = [];
    let lastPreviewId = -1;
    while (!finished) {
      const progress = await taskProgress(id, lastPreviewId);
      if (progress.active) {
        expect(progress.progress).toBeGreaterThanOrEqual(0);
        if (progress.live_preview) {
          expect(progress.live_preview).toMatch(/^data:image\/png;base64,/);
          expect(progress.id_live_preview).toBeGreaterThan(lastPreviewId);
          previewIds.push(progress.id_live_preview);
          lastPreviewId = progress.id_live_preview;
        } else {
          expect(progress.id_live_preview).toBe(lastPreviewId);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect((await job).status).toBe(200);
    expect(await taskProgress(id)).toMatchObject({ active: false, queued: false, completed: true });
    expect(previewIds.length).toBeGreaterThan(1);
    expect(await taskProgress("task(never-seen)")).toEqual({
      active: false,
      queued: false,
      completed: false,
      progress: null,
      eta: null,
      live_preview: null,
      id_live_preview: -1,
      textinfo: "Waiting...",
    });
  });

  it("ends a running job early on interrupt, still answering 200 with the image so far", async () => {
    const id = "task(interrupted)";
    const job = api("POST", "/sdapi/v1/txt2img", { prompt: "x", steps: 1000, n_iter: 3, width: 64, height: 64, force_task_id: id });
    await expect.poll(() => taskProgress(id), { interval: 10 }).toMatchObject({ active: true });
    await expect.poll(async () => (await api("GET", "/sdapi/v1/progress")).body.state.sampling_step, { interval: 10 }).toBeGreaterThan(0);
    expect((await api("POST", "/sdapi/v1/interrupt")).body).toEqual({});
    const reply = await job;
    expect(reply.status).toBe(200);
    expect(reply.body.images).toHaveLength(1);
    expect(JSON.parse(reply.body.info).all_seeds).toHaveLength(3);
  });

  it("skips only the current image of a batch", async () => {
    const request = { prompt: "x", seed: 99, steps: 60, n_iter: 2, width: 64, height: 64 };
    const full = await api("POST", "/sdapi/v1/txt2img", request);
    const job = api("POST", "/sdapi/v1/txt2img", { ...request, force_task_id: "task(skipped)" });
    await expect.poll(() => taskProgress("task(skipped)"), { interval: 10 }).toMatchObject({ active: true });
    await expect.poll(async () => (await api("GET", "/sdapi/v1/progress")).body.state.sampling_step, { interval: 10 }).toBeGreaterThan(0);
    expect((await api("POST", "/sdapi/v1/skip")).body).toBeNull();
    const skipped = await job;
    expect(skipped.body.images).toHaveLength(2);
    expect(skipped.body.images[0]).not.toBe(full.body.images[0]);
    expect(skipped.body.images[1]).toBe(full.body.images[1]);
  });
});

describe("extras", () => {
  const image = solidPng(40, 30, [10, 200, 10]);

  it("resizes one image by a factor or to a size", async () => {
    const byFactor = await api("POST", "/sdapi/v1/extra-single-image", { image, upscaler_1: "Lanczos", upscaling_resize: 2 });
    expect(byFactor.status).toBe(200);
    expect([decodePng(byFactor.body.image).width, decodePng(byFactor.body.image).height]).toEqual([80, 60]);
    expect(byFactor.body.html_info).toBe("<p>Postprocess upscale by: 2, Postprocess upscaler: Lanczos</p>");

    const toSize = await api("POST", "/sdapi/v1/extra-single-image", {
      image,
      resize_mode: 1,
      upscaler_1: "R-ESRGAN 4x+",
      upscaling_resize_w: 100,
      upscaling_resize_h: 50,
    });
    const png = decodePng(toSize.body.image);
    expect([png.width, png.height]).toEqual([100, 50]);
    expect(meanColor(png)[1]).toBeGreaterThan(150);

    const noUpscaler = await api("POST", "/sdapi/v1/extra-single-image", { image, upscaling_resize: 2 });
    expect(decodePng(noUpscaler.body.image).width).toBe(40);
  });

  it("processes an imageList, and answers a body without one with FastAPI's 422", async () => {
    const batch = await api("POST", "/sdapi/v1/extra-batch-images", {
      imageList: [
        { data: image, name: "a.png" },
        { data: solidPng(10, 10, [0, 0, 0]), name: "b.png" },
      ],
      upscaler_1: "Nearest",
      upscaling_resize: 3,
    });
    expect(batch.body.images.map((b64: string) => decodePng(b64).width)).toEqual([120, 30]);

    const missing = await api("POST", "/sdapi/v1/extra-batch-images", { image_list: [{ image, name: "a" }] });
    expect(missing.status).toBe(422);
    expect(missing.body).toEqual({ detail: [{ loc: ["body", "imageList"], msg: "field required", type: "value_error.missing" }] });
  });
});

describe("lists and tools", () => {
  it("lists samplers, schedulers, upscalers, loras and the rest", async () => {
    const samplers = (await api("GET", "/sdapi/v1/samplers")).body;
    expect(samplers.map((s: { name: string }) => s.name)).toEqual(expect.arrayContaining(["Euler a", "Euler", "DPM++ 2M", "DDIM", "UniPC"]));
    expect(samplers.find((s: { name: string }) => s.name === "Euler a")).toEqual({
      name: "Euler a",
      aliases: ["k_euler_a", "k_euler_ancestral"],
      options: { uses_ensd: "True" },
    });
    expect((await api("GET", "/sdapi/v1/schedulers")).body.map((s: { label: string }) => s.label)).toContain("Karras");
    expect((await api("GET", "/sdapi/v1/upscalers")).body.map((u: { name: string }) => u.name)).toEqual(
      expect.arrayContaining(["None", "Lanczos", "R-ESRGAN 4x+"]),
    );
    expect((await api("GET", "/sdapi/v1/loras")).body).toEqual([
      { name: "detail-tweaker", alias: "detail-tweaker", path: path.join(workDir, "models", "Lora", "detail-tweaker.safetensors"), metadata: {} },
    ]);
    expect((await api("GET", "/sdapi/v1/sd-vae")).body).toEqual([]);
    expect((await api("GET", "/sdapi/v1/embeddings")).body).toEqual({ loaded: {}, skipped: {} });
    expect((await api("GET", "/sdapi/v1/scripts")).body.txt2img).toContain("x/y/z plot");
    const memory = (await api("GET", "/sdapi/v1/memory")).body;
    expect(memory.cuda.system.total).toBeGreaterThan(memory.cuda.system.used);
    expect(memory.ram.total).toBeGreaterThan(0);
  });

  it("captions an image from what it shows", async () => {
    const reply = await api("POST", "/sdapi/v1/interrogate", { image: solidPng(32, 32, [215, 35, 35]) });
    expect(reply.body.caption).toContain("red");
    const unknownModel = await api("POST", "/sdapi/v1/interrogate", { image: solidPng(8, 8, [0, 0, 0]), model: "blip9" });
    expect(unknownModel.status).toBe(404);
  });
});

describe("server options", () => {
  it("requires HTTP Basic auth on the core API only", async () => {
    const secured = await startEmulator({ modelsDir, stepMs: 1, loadMs: 1, auth: { username: "ann", password: "s3cret" } });
    try {
      const missing = await call(secured.url, "GET", "/sdapi/v1/sd-models");
      expect(missing.status).toBe(401);
      expect(missing.body).toEqual({ error: "HTTPException", detail: "Not authenticated", body: "", errors: "401: Not authenticated" });
      expect(missing.headers.get("www-authenticate")).toBeNull();
      const wrong = await call(secured.url, "GET", "/sdapi/v1/sd-models", undefined, { authorization: `Basic ${btoa("ann:nope")}` });
      expect(wrong.status).toBe(401);
      expect(wrong.body.detail).toBe("Incorrect username or password");
      const right = await call(secured.url, "GET", "/sdapi/v1/sd-models", undefined, { authorization: `Basic ${btoa("ann:s3cret")}` });
      expect(right.status).toBe(200);
      expect((await call(secured.url, "GET", "/sdapi/v1/loras")).status).toBe(200);
      expect((await call(secured.url, "POST", "/internal/progress", { id_task: "x" })).status).toBe(200);
    } finally {
      await secured.close();
    }
  });

  it("serves every route under a base path", async () => {
    const prefixed = await startEmulator({ modelsDir, stepMs: 1, loadMs: 1, basePath: "/webui/" });
    try {
      expect(prefixed.url).toBe(`http://127.0.0.1:${prefixed.port}/webui`);
      expect((await call(prefixed.url, "GET", "/sdapi/v1/sd-models")).status).toBe(200);
      expect((await call(`http://127.0.0.1:${prefixed.port}`, "GET", "/sdapi/v1/sd-models")).status).toBe(404);
    } finally {
      await prefixed.close();
    }
  });

  it("starts with no checkpoint loaded when the folder is empty, and closes with a job in flight", async () => {
    const emptyDir = path.join(workDir, "empty-models");
    const empty = await startEmulator({ modelsDir: emptyDir, stepMs: 50, loadMs: 1 });
    const options = await call(empty.url, "GET", "/sdapi/v1/options");
    expect(options.body.sd_model_checkpoint).toBeNull();
    const noModel = await call(empty.url, "POST", "/sdapi/v1/txt2img", { steps: 1 });
    expect(noModel.status).toBe(500);
    expect(noModel.body.error).toBe("FileNotFoundError");
    expect(empty.stats()).toEqual({ generations: 0, loads: 0, ramLoads: 0, ramCheckpoints: [], loadedCheckpoint: null });

    await copyFile(path.join(modelsDir, "alpha.safetensors"), path.join(emptyDir, "late.safetensors"));
    await call(empty.url, "POST", "/sdapi/v1/refresh-checkpoints");
    const inFlight = fetch(`${empty.url}/sdapi/v1/txt2img`, { method: "POST", body: JSON.stringify({ steps: 1000 }) });
    await expect.poll(() => call(empty.url, "GET", "/sdapi/v1/progress").then((r) => r.body.state.job_count)).toBe(1);
    await empty.close();
    await expect(inFlight).rejects.toThrow();
  });
});
