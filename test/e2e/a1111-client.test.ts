// An sd-webui client nobody here wrote — the npm package `stable-diffusion-api`, unmodified —
// pointed at sdgate (Basic auth with the API key as password, a base URL with a path prefix),
// and the same calls against the emulator directly: the answers have the same shapes.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { StableDiffusionApi } from "stable-diffusion-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningEmulator, startEmulator } from "../../emulator/server.ts";
import { demoCheckpointBytes } from "../../scripts/local-stack.ts";
import { E2E_MODELS, type Stack, startStack } from "./support.ts";

let stack: Stack;
let emulator: RunningEmulator;
let viaGateway: StableDiffusionApi;
let direct: StableDiffusionApi;
let directDir: string;

beforeAll(async () => {
  stack = await startStack(1);
  viaGateway = new StableDiffusionApi({ baseUrl: `${stack.gateway.url}/team-a`, timeout: 60_000 }).setAuth("anyone", stack.userKey);
  directDir = mkdtempSync(path.join(os.tmpdir(), "sdgate-direct-"));
  const modelsDir = path.join(directDir, "Stable-diffusion");
  mkdirSync(modelsDir, { recursive: true });
  for (const model of E2E_MODELS) writeFileSync(path.join(modelsDir, `${model.name}.safetensors`), demoCheckpointBytes(model));
  emulator = await startEmulator({ modelsDir, stepMs: 30, loadMs: 200, controlnet: true });
  direct = new StableDiffusionApi({ baseUrl: emulator.url, timeout: 60_000 });
}, 120_000);
afterAll(async () => {
  await emulator?.close();
  await stack?.stop();
  if (directDir) rmSync(directDir, { recursive: true, force: true });
});

/** The structure of a JSON value: keys and value types, not the values. */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.length > 0 ? [shape(value[0])] : [];
  if (value && typeof value === "object")
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, shape((value as Record<string, unknown>)[k])]),
    );
  return value === null ? "null" : typeof value;
}

describe("stable-diffusion-api against sdgate", () => {
  it("lists checkpoints in sd-webui's shape and switches with setModel", async () => {
    const models = await viaGateway.getSdModels();
    expect(models.map((m) => m.model_name).sort()).toEqual(["e2e-a", "e2e-b"]);
    const [directModel] = await direct.getSdModels();
    const { name: _name, ...gatewayModel } = models[0] as (typeof models)[0] & { name: string };
    expect(shape(gatewayModel)).toEqual(shape(directModel));
    await viaGateway.setModel("e2e-b");
    const title = models.find((m) => m.model_name === "e2e-b")!.title;
    expect(await viaGateway.getCurrentModel()).toBe(title);
  });

  it("runs txt2img and img2img and gets sharp images back, shaped as sd-webui's", async () => {
    const request = { prompt: "a red barn", seed: 11, steps: 4, width: 96, height: 64 };
    const [fromGateway, fromEmulator] = await Promise.all([viaGateway.txt2img(request), direct.txt2img(request)]);
    expect(await fromGateway.image.metadata()).toMatchObject({ format: "png", width: 96, height: 64 });
    expect(typeof fromGateway.info).toBe("string");
    expect(JSON.parse(fromGateway.info)).toMatchObject({ seed: 11, sd_model_name: "e2e-b" });
    expect(shape(fromGateway.response.data)).toEqual(shape(fromEmulator.response.data));

    const varied = await viaGateway.img2img({ init_images: [fromGateway.image], prompt: "in snow", seed: 12, steps: 3, width: 48, height: 32 });
    expect(await varied.image.metadata()).toMatchObject({ width: 48, height: 32 });
    const variedDirect = await direct.img2img({ init_images: [fromEmulator.image], prompt: "in snow", seed: 12, steps: 3, width: 48, height: 32 });
    expect(shape(varied.response.data)).toEqual(shape(variedDirect.response.data));
  });

  it("follows its own progress and interrupts its own task", async () => {
    const idle = await viaGateway.getProgress();
    expect(idle.progress).toBe(0);
    expect(idle.state.job_count).toBe(0);
    expect(shape(idle)).toEqual(shape(await direct.getProgress()));
    const running = viaGateway.txt2img({ prompt: "slow", steps: 400, width: 64, height: 64 });
    await expect.poll(async () => (await viaGateway.getProgress()).state.sampling_step, { timeout: 30_000, interval: 100 }).toBeGreaterThan(0);
    const progress = await viaGateway.getProgress();
    expect(progress.progress).toBeGreaterThan(0);
    expect(progress.progress).toBeLessThan(1);
    await viaGateway.api.post("/sdapi/v1/interrupt");
    const interrupted = await running;
    expect(interrupted.images.length).toBeLessThanOrEqual(1);
    await expect.poll(async () => (await viaGateway.getProgress()).state.job_count, { timeout: 10_000 }).toBe(0);
  });

  it("answers sd-webui's error shape for an unknown checkpoint", async () => {
    const failure = await viaGateway.api
      .post("/sdapi/v1/options", { sd_model_checkpoint: "no-such-model" })
      .catch((e: { response: { status: number; data: unknown } }) => e.response);
    const directFailure = await direct.api
      .post("/sdapi/v1/options", { sd_model_checkpoint: "no-such-model" })
      .catch((e: { response: { status: number; data: unknown } }) => e.response);
    expect(failure.status).toBe(500);
    expect(failure.data).toEqual(directFailure.data);
  });
});
