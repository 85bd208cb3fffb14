// Checkpoint loads as sd-webui v1.10 does them: a failed load answers 200 and keeps the previous
// weights, the same path is never re-read, a subfolder is another path, hashes appear on load.

import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { fakeModelFile } from "../../emulator/model-file-kind.ts";
import { type RunningEmulator, startEmulator } from "../../emulator/server.ts";
import { callEmulator, type Reply } from "./support.ts";

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

let dataDir: string;
let checkpointDir: string;
let emulator: RunningEmulator;
const alpha = randomBytes(4096);

async function api(method: string, route: string, body?: unknown): Promise<Pick<Reply, "status" | "body">> {
  const { status, body: answer } = await callEmulator(emulator.url, method, route, body);
  return { status, body: answer };
}

async function generationInfo(extra: Record<string, unknown> = {}) {
  const reply = await api("POST", "/sdapi/v1/txt2img", { prompt: "x", steps: 1, width: 64, height: 64, seed: 1, ...extra });
  expect(reply.status).toBe(200);
  return JSON.parse(reply.body.info as string) as { sd_model_hash: string; sd_model_name: string; infotexts: string[] };
}

const currentSetting = async () => (await api("GET", "/sdapi/v1/options")).body.sd_model_checkpoint as string;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), "sdgate-emulator-loading-"));
  checkpointDir = path.join(dataDir, "models", "Stable-diffusion");
  await mkdir(checkpointDir, { recursive: true });
  await writeFile(path.join(checkpointDir, "alpha.safetensors"), alpha);
  await writeFile(path.join(checkpointDir, "lora-by-mistake.safetensors"), fakeModelFile("lora", randomBytes(256)));
  const truncated = fakeModelFile("checkpoint", randomBytes(2048));
  await writeFile(path.join(checkpointDir, "truncated.safetensors"), truncated.subarray(0, truncated.length - 100));
  await writeFile(path.join(checkpointDir, "declared.safetensors"), fakeModelFile("checkpoint", randomBytes(512)));
  emulator = await startEmulator({ dataDir, stepMs: 1, loadMs: 5 });
});

afterAll(async () => {
  await emulator?.close();
  await rm(dataDir, { recursive: true, force: true });
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe("a checkpoint that fails to load", () => {
  it("answers 200 to POST /options for a LoRA file, keeps the previous model and setting, and logs sd-webui's lines", async () => {
    const stdout = vi.spyOn(console, "log");
    const stderr = vi.spyOn(console, "error");
    const before = await currentSetting();
    expect(before).toBe(`alpha.safetensors [${sha256(alpha).slice(0, 10)}]`);
    const reply = await api("POST", "/sdapi/v1/options", { sd_model_checkpoint: "lora-by-mistake.safetensors" });
    expect(reply).toEqual({ status: 200, body: null });
    expect(await currentSetting()).toBe(before);
    expect(emulator.stats().loadedCheckpoint).toBe(before);
    expect(stdout).toHaveBeenCalledWith("Failed to load checkpoint, restoring previous");
    expect(stderr).toHaveBeenCalledWith(expect.stringMatching(/^changing setting sd_model_checkpoint to lora-by-mistake\.safetensors: RuntimeError/));
    expect((await generationInfo()).sd_model_hash).toBe(sha256(alpha).slice(0, 10));
  });

  it("answers 200 for a truncated file with safetensors' error and keeps the previous model", async () => {
    const stderr = vi.spyOn(console, "error");
    const before = await currentSetting();
    expect((await api("POST", "/sdapi/v1/options", { sd_model_checkpoint: "truncated" })).status).toBe(200);
    expect(await currentSetting()).toBe(before);
    expect(stderr).toHaveBeenCalledWith(expect.stringContaining("SafetensorError: Error while deserializing header: MetadataIncompleteBuffer"));
    expect((await generationInfo()).sd_model_hash).toBe(sha256(alpha).slice(0, 10));
  });

  it("fails the generation (500) when override_settings names a file that cannot load", async () => {
    const reply = await api("POST", "/sdapi/v1/txt2img", {
      prompt: "x",
      steps: 1,
      width: 64,
      height: 64,
      override_settings: { sd_model_checkpoint: "lora-by-mistake" },
    });
    expect(reply.status).toBe(500);
    expect(reply.body).toMatchObject({ error: "RuntimeError" });
    expect((await generationInfo()).sd_model_hash).toBe(sha256(alpha).slice(0, 10));
  });

  it("refuses a name that is no checkpoint with 500 RuntimeError, as set_config does", async () => {
    const reply = await api("POST", "/sdapi/v1/options", { sd_model_checkpoint: "nowhere.safetensors" });
    expect(reply.status).toBe(500);
    expect(reply.body).toMatchObject({ error: "RuntimeError", errors: "model 'nowhere.safetensors' not found" });
  });

  it("loads a file whose safetensors header declares a checkpoint, and lists it without a hash until then", async () => {
    const listed = (await api("GET", "/sdapi/v1/sd-models")).body as { title: string; hash: string | null }[];
    expect(listed.find((model) => model.title.startsWith("declared"))).toMatchObject({ title: "declared.safetensors", hash: null });
    expect((await api("POST", "/sdapi/v1/options", { sd_model_checkpoint: "declared.safetensors" })).status).toBe(200);
    expect(await currentSetting()).toMatch(/^declared\.safetensors \[[0-9a-f]{10}\]$/);
    const relisted = (await api("GET", "/sdapi/v1/sd-models")).body as { title: string; hash: string | null }[];
    expect(relisted.find((model) => model.title.startsWith("declared"))!.hash).toMatch(/^[0-9a-f]{10}$/);
    expect((await api("POST", "/sdapi/v1/options", { sd_model_checkpoint: "alpha" })).status).toBe(200);
  });
});

describe("reload_model_weights", () => {
  it("keeps the old weights of a file changed at the same path, and loads new ones from a subfolder path", async () => {
    const oldHash = sha256(alpha).slice(0, 10);
    expect((await generationInfo()).sd_model_hash).toBe(oldHash);
    const replacement = randomBytes(3000);
    await writeFile(path.join(checkpointDir, "alpha.safetensors"), replacement);
    await mkdir(path.join(checkpointDir, "v2"));
    await writeFile(path.join(checkpointDir, "v2", "alpha.safetensors"), replacement);
    expect((await api("POST", "/sdapi/v1/refresh-checkpoints")).status).toBe(200);

    // The changed file's cached hash is stale, so its title has no hash; setting it reads nothing.
    const titles = ((await api("GET", "/sdapi/v1/sd-models")).body as { title: string }[]).map((model) => model.title);
    expect(titles).toEqual(expect.arrayContaining(["alpha.safetensors", "v2/alpha.safetensors"]));
    const loadsBefore = emulator.stats().loads;
    expect((await api("POST", "/sdapi/v1/options", { sd_model_checkpoint: "alpha.safetensors" })).status).toBe(200);
    expect((await api("POST", "/sdapi/v1/unload-checkpoint")).status).toBe(200);
    expect((await api("POST", "/sdapi/v1/reload-checkpoint")).status).toBe(200);
    expect(emulator.stats().loads).toBe(loadsBefore);
    expect((await generationInfo()).sd_model_hash).toBe(oldHash);

    expect((await api("POST", "/sdapi/v1/options", { sd_model_checkpoint: "v2/alpha.safetensors" })).status).toBe(200);
    expect(await currentSetting()).toBe(`v2/alpha.safetensors [${sha256(replacement).slice(0, 10)}]`);
    const info = await generationInfo();
    expect(info.sd_model_hash).toBe(sha256(replacement).slice(0, 10));
    expect(info.sd_model_name).toBe("alpha");
    expect(info.infotexts[0]).toContain(`Model hash: ${sha256(replacement).slice(0, 10)}, Model: alpha,`);
  });
});

describe("a restart", () => {
  it("keeps hashes (DATA/cache.json) and settings (DATA/config.json): the last checkpoint set loads, titles keep their hash", async () => {
    const restartDir = await mkdtemp(path.join(os.tmpdir(), "sdgate-emulator-cache-"));
    const folder = path.join(restartDir, "models", "Stable-diffusion");
    await mkdir(folder, { recursive: true });
    const first = randomBytes(1024);
    const second = randomBytes(1024);
    await writeFile(path.join(folder, "a.safetensors"), first);
    await writeFile(path.join(folder, "b.safetensors"), second);
    const titles = async (running: RunningEmulator) =>
      ((await (await fetch(`${running.url}/sdapi/v1/sd-models`)).json()) as { title: string }[]).map((model) => model.title);
    try {
      const before = await startEmulator({ dataDir: restartDir, stepMs: 1, loadMs: 1 });
      expect(await titles(before)).toEqual([`a.safetensors [${sha256(first).slice(0, 10)}]`, "b.safetensors"]);
      const set = await fetch(`${before.url}/sdapi/v1/options`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ sd_model_checkpoint: "b" }),
      });
      expect(set.status).toBe(200);
      await before.close();
      const after = await startEmulator({ dataDir: restartDir, stepMs: 1, loadMs: 1 });
      expect(await titles(after)).toEqual([`a.safetensors [${sha256(first).slice(0, 10)}]`, `b.safetensors [${sha256(second).slice(0, 10)}]`]);
      expect(after.stats().loadedCheckpoint).toBe(`b.safetensors [${sha256(second).slice(0, 10)}]`);
      await after.close();
    } finally {
      await rm(restartDir, { recursive: true, force: true });
    }
  });
});
