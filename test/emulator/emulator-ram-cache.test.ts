// Checkpoints held in RAM as sd-webui v1.10 holds them: sd_checkpoints_limit keeps whole models
// (least recently used one reused at the limit), sd_checkpoint_cache keeps state dicts keyed by
// checkpoint objects that a refresh replaces. Which path a switch took shows in the emulator's stats
// and in the lines sd-webui prints.

import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type RunningEmulator, startEmulator } from "../../emulator/server.ts";
import { callEmulator } from "./support.ts";

const running: { emulator: RunningEmulator; dataDir: string }[] = [];

afterEach(async () => {
  vi.restoreAllMocks();
  for (const { emulator, dataDir } of running.splice(0)) {
    await emulator.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});

/** An emulator whose folder holds start (loaded at start-up), alpha, beta and gamma. */
async function emulatorWithFourCheckpoints(): Promise<RunningEmulator> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "sdgate-emulator-ram-"));
  const folder = path.join(dataDir, "models", "Stable-diffusion");
  await mkdir(folder, { recursive: true });
  for (const name of ["start", "alpha", "beta", "gamma"]) await writeFile(path.join(folder, `${name}.safetensors`), randomBytes(2048));
  const emulator = await startEmulator({ dataDir, stepMs: 1, loadMs: 1, ramLoadMs: 1 });
  running.push({ emulator, dataDir });
  expect(emulator.stats().loadedCheckpoint).toMatch(/^alpha\.safetensors/);
  return emulator;
}

async function setOptions(emulator: RunningEmulator, options: Record<string, unknown>): Promise<void> {
  expect((await callEmulator(emulator.url, "POST", "/sdapi/v1/options", options)).status).toBe(200);
}

const load = (emulator: RunningEmulator, name: string) => setOptions(emulator, { sd_model_checkpoint: name });
const titlesOf = (titles: string[]) => titles.map((title) => title.replace(/\.safetensors.*$/, ""));

describe("checkpoints held in RAM", () => {
  it("has sd-webui's settings with their defaults: one model, kept on the CPU, no state dict cache", async () => {
    const emulator = await emulatorWithFourCheckpoints();
    const { body } = await callEmulator(emulator.url, "GET", "/sdapi/v1/options");
    expect(body).toMatchObject({ sd_checkpoints_limit: 1, sd_checkpoints_keep_in_cpu: true, sd_checkpoint_cache: 0 });
  });

  it("reads every switch from the file with the default limit of one model", async () => {
    const emulator = await emulatorWithFourCheckpoints();
    await load(emulator, "beta");
    await load(emulator, "alpha");
    expect(emulator.stats()).toMatchObject({ loads: 2, ramLoads: 0, ramCheckpoints: [] });
  });

  it("with sd_checkpoints_limit 2 switches back to the other model from RAM and reuses the least recently used one", async () => {
    const emulator = await emulatorWithFourCheckpoints();
    await setOptions(emulator, { sd_checkpoints_limit: 2 });
    const printed = vi.spyOn(console, "log");
    await load(emulator, "beta");
    expect(titlesOf(emulator.stats().ramCheckpoints)).toEqual(["alpha"]);
    await load(emulator, "alpha");
    expect(emulator.stats()).toMatchObject({ loads: 1, ramLoads: 1 });
    expect(printed.mock.calls.flat().join("\n")).toMatch(/Using already loaded model alpha\.safetensors/);
    expect(titlesOf(emulator.stats().ramCheckpoints)).toEqual(["beta"]);
    // At the limit gamma takes the place of beta, the least recently used.
    await load(emulator, "gamma");
    expect(titlesOf(emulator.stats().ramCheckpoints)).toEqual(["alpha"]);
    await load(emulator, "beta");
    expect(emulator.stats()).toMatchObject({ loads: 3, ramLoads: 1 });
  });

  it("applies the settings of one POST /options in their order, as set_config does", async () => {
    const late = await emulatorWithFourCheckpoints();
    await setOptions(late, { sd_model_checkpoint: "beta", sd_checkpoints_limit: 2 });
    expect(late.stats().ramCheckpoints).toEqual([]);
    const early = await emulatorWithFourCheckpoints();
    await setOptions(early, { sd_checkpoints_limit: 2, sd_model_checkpoint: "beta" });
    expect(titlesOf(early.stats().ramCheckpoints)).toEqual(["alpha"]);
  });

  it("unloads the models over a lowered limit at the next switch", async () => {
    const emulator = await emulatorWithFourCheckpoints();
    await setOptions(emulator, { sd_checkpoints_limit: 3 });
    await load(emulator, "beta");
    await load(emulator, "gamma");
    expect(titlesOf(emulator.stats().ramCheckpoints)).toEqual(["beta", "alpha"]);
    await setOptions(emulator, { sd_checkpoints_limit: 1 });
    expect(titlesOf(emulator.stats().ramCheckpoints)).toEqual(["beta", "alpha"]);
    await load(emulator, "start");
    expect(emulator.stats().ramCheckpoints).toEqual([]);
  });

  it("with sd_checkpoint_cache loads a cached state dict, until refresh-checkpoints replaces the checkpoints it is keyed by", async () => {
    const emulator = await emulatorWithFourCheckpoints();
    await setOptions(emulator, { sd_checkpoint_cache: 2 });
    const printed = vi.spyOn(console, "log");
    await load(emulator, "beta");
    await load(emulator, "gamma");
    await load(emulator, "beta");
    expect(emulator.stats()).toMatchObject({ loads: 2, ramLoads: 1 });
    expect(printed.mock.calls.flat().join("\n")).toMatch(/Loading weights \[[0-9a-f]{10}\] from cache/);
    await callEmulator(emulator.url, "POST", "/sdapi/v1/refresh-checkpoints");
    await load(emulator, "gamma");
    expect(emulator.stats()).toMatchObject({ loads: 3, ramLoads: 1 });
  });
});
