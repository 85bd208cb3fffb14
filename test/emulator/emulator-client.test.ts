// The unmodified npm client `stable-diffusion-api` (axios + sharp) against the emulator, as it
// would be used against a real sd-webui.
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { StableDiffusionApi } from "stable-diffusion-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningEmulator, startEmulator } from "../../emulator/server.ts";

let workDir: string;
let emulator: RunningEmulator;
let client: StableDiffusionApi;

beforeAll(async () => {
  workDir = await mkdtemp(path.join(os.tmpdir(), "sdgate-emulator-client-"));
  const modelsDir = path.join(workDir, "Stable-diffusion");
  await mkdir(modelsDir);
  await writeFile(path.join(modelsDir, "alpha.safetensors"), randomBytes(2048));
  await writeFile(path.join(modelsDir, "beta.safetensors"), randomBytes(2048));
  emulator = await startEmulator({
    modelsDir,
    apiOnly: true,
    controlnet: true,
    stepMs: 10,
    loadMs: 50,
    basePath: "/sd",
    auth: { username: "u", password: "p" },
  });
  client = new StableDiffusionApi({ baseUrl: emulator.url, timeout: 20_000 }).setAuth("u", "p");
});

afterAll(async () => {
  await emulator?.close();
  await rm(workDir, { recursive: true, force: true });
});

describe("stable-diffusion-api client", () => {
  it("runs txt2img and img2img and gets sharp images back", async () => {
    const generated = await client.txt2img({ prompt: "a red barn", seed: 7, steps: 3, width: 96, height: 64 });
    expect(generated.images).toHaveLength(1);
    expect(await generated.image.metadata()).toMatchObject({ format: "png", width: 96, height: 64 });
    expect(JSON.parse(generated.info)).toMatchObject({ seed: 7, sampler_name: "Euler a", sd_model_name: "alpha" });

    const varied = await client.img2img({ init_images: [generated.image], prompt: "a red barn in snow", seed: 8, steps: 2, width: 48, height: 32 });
    expect(await varied.image.metadata()).toMatchObject({ width: 48, height: 32 });
    expect(varied.parameters.denoising_strength).toBe(0.75);

    const pngInfo = await client.pngInfo(generated.image);
    expect(pngInfo.info).toContain("Seed: 7");
  });

  it("lists and switches checkpoints through options", async () => {
    const models = await client.getSdModels();
    expect(models.map((model) => model.model_name)).toEqual(["alpha", "beta"]);
    // beta was never loaded, so sd-webui does not know its hash yet: loading it adds it to the title.
    expect(models[1]!.title).toBe("beta.safetensors");
    await client.setOptions({ sd_model_checkpoint: models[1]!.title });
    const loadedTitle = await client.getCurrentModel();
    expect(loadedTitle).toMatch(/^beta\.safetensors \[[0-9a-f]{10}\]$/);
    expect(emulator.stats().loadedCheckpoint).toBe(loadedTitle);
    // setModel() looks models up by a `name` field that sd-webui's /sd-models items do not
    // have, so it throws against a real sd-webui, and against the emulator in the same way.
    await expect(client.setModel("alpha")).rejects.toThrow();
    expect(emulator.stats().loadedCheckpoint).toBe(loadedTitle);
  });

  it("follows progress, interrupts through its axios instance, and sees the server idle again", async () => {
    const running = client.txt2img({ prompt: "slow", steps: 500, n_iter: 2, width: 64, height: 64 });
    await expect.poll(async () => (await client.getProgress()).state.sampling_step, { interval: 20 }).toBeGreaterThan(0);
    const progress = await client.getProgress();
    expect(progress.progress).toBeGreaterThan(0);
    expect(progress.state.sampling_steps).toBe(500);
    await client.api.post("/sdapi/v1/interrupt");
    const result = await running;
    expect(result.images).toHaveLength(1);
    expect(await client.getProgress()).toMatchObject({ progress: 0, state: { job_count: 0 } });
    expect(await client.waitForReady(0.05)).toBe(true);
  });

  it("reads the lists it knows about", async () => {
    expect((await client.getSamplers()).map((sampler) => sampler.name)).toContain("Euler a");
    expect((await client.getUpscalers()).map((upscaler) => upscaler.name)).toContain("Lanczos");
    expect(await client.getHypernetworks()).toEqual([]);
    expect(await client.getPromptStyles()).toEqual([]);
    expect((await client.getFaceRestorers()).map((restorer) => restorer.name)).toContain("CodeFormer");
    expect(await client.getCmdFlags()).toMatchObject({ api: true, nowebui: true });
    await client.refreshCheckpoints();
  });
});
