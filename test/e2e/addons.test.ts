// End to end: add-on models (LoRA, VAE, ControlNet) registered through the admin API reach a node
// that has none of them, land in sd-webui's folders, show in the infotext with their hashes and
// change the picture; a second task finds them cached; unknown ones are refused at submit; one a
// live task needs cannot be deleted.
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { PNG } from "pngjs";
import { beforeAll, describe, expect, it } from "vitest";
import { fakeModelFile } from "../../emulator/model-file-kind.ts";
import { DEV_ADMIN_TOKEN, type RunningAgent } from "../../scripts/local-stack.ts";
import type { ModelType } from "../../src/protocol/model-types.ts";
import { callApi, fetchPng, type Stack, useStack, waitFor } from "./support.ts";

interface Submitted {
  taskId: string;
  status: string;
  ossUrl: string[];
}
interface Result extends Submitted {
  info: { infotexts?: string[] };
}
interface Problem {
  code: string;
  detail: string;
  errors?: Array<{ path: string; message: string }>;
}
interface Addon {
  name: string;
  fileName: string;
  /** Under sd-webui's data dir. */
  folder: string;
  bytes: Buffer;
}

/** sd-webui's old model_hash (64 KiB at 1 MiB), which ControlNet shows in its model names: the files are made larger than that. */
const LEGACY_HASH_END_BYTES = 0x110000;
const ADMIN = { authorization: `Bearer ${DEV_ADMIN_TOKEN}` };

const stackOf = useStack(1);
let stack: Stack;
let agent: RunningAgent;
beforeAll(() => {
  stack = stackOf();
  agent = stack.agents[0]!;
});

/** Registers an add-on (`type` in our names or the original's) and uploads a file the emulator reads as `kind`. */
async function registerAddon(name: string, type: string, kind: ModelType, fileName: string, folder: string): Promise<Addon> {
  const registered = await callApi(stack, "/models", { body: { name, type, fileName }, headers: ADMIN });
  expect(registered.status).toBe(201);
  const bytes = fakeModelFile(kind, randomBytes(LEGACY_HASH_END_BYTES));
  const uploaded = await fetch(`${stack.gateway.url}/models/${name}/file`, { method: "PUT", headers: ADMIN, body: new Uint8Array(bytes) });
  expect(uploaded.status).toBe(200);
  return { name, fileName, folder, bytes };
}

const onDisk = (addon: Addon) => path.join(agent.dataDir, addon.folder, addon.fileName);
const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");
/** sd-webui's LoRA hash of a .safetensors file: sha256 of what follows the header (networks.py / hashes.py addnet_hash_safetensors). */
const addnetShortHash = (bytes: Buffer) => sha256(bytes.subarray(8 + Number(bytes.readBigUInt64LE(0)))).slice(0, 12);
const legacyHash = (bytes: Buffer) => sha256(bytes.subarray(0x100000, LEGACY_HASH_END_BYTES)).slice(0, 8);
const downloads = (addon: Addon) => agent.output().split(`model ${addon.name} downloaded and verified`).length - 1;

async function cachedAddons(): Promise<string[]> {
  const nodes = (await callApi<Array<{ nodeId: string; cachedAddons?: string[] }>>(stack, "/nodes", { headers: ADMIN })).body;
  return nodes.find((n) => n.nodeId === agent.nodeId)?.cachedAddons ?? [];
}

async function resultOf(taskId: string): Promise<Result> {
  return (await callApi<Result>(stack, `/tasks/${taskId}/result`)).body;
}

async function run(route: "/txt2img" | "/img2img", body: Record<string, unknown>): Promise<{ result: Result; png: PNG }> {
  const submitted = await callApi<Submitted>(stack, route, { body: { stable_diffusion_model: "e2e-a", ...body } });
  expect(submitted.status, JSON.stringify(submitted.body)).toBe(200);
  expect(submitted.body.status).toBe("succeeded");
  return { result: await resultOf(submitted.body.taskId), png: await fetchPng(submitted.body.ossUrl[0]!) };
}

/** A black picture with a white square: edges for the canny preprocessor to find. */
function squarePng(size: number): string {
  const png = new PNG({ width: size, height: size });
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const inside = x >= size / 4 && x < (3 * size) / 4 && y >= size / 4 && y < (3 * size) / 4;
      png.data.set(inside ? [255, 255, 255, 255] : [0, 0, 0, 255], (y * size + x) * 4);
    }
  }
  return PNG.sync.write(png).toString("base64");
}

function solidPng(size: number, rgb: [number, number, number]): string {
  const png = new PNG({ width: size, height: size });
  for (let i = 0; i < size * size; i++) png.data.set([...rgb, 255], i * 4);
  return PNG.sync.write(png).toString("base64");
}

/** Mean absolute difference per channel between two pictures of the same size. */
function meanDifference(a: PNG, b: PNG): number {
  expect([a.width, a.height]).toEqual([b.width, b.height]);
  let sum = 0;
  for (let i = 0; i < a.data.length; i++) sum += Math.abs(a.data[i]! - b.data[i]!);
  return sum / a.data.length;
}

const controlnetUnit = (model: string) => ({ controlnet: { args: [{ enabled: true, module: "canny", model, image: squarePng(128) }] } });

describe("add-on models reach the node that runs the task", () => {
  let lora: Addon;
  let vae: Addon;
  let canny: Addon;
  let firstPng: PNG;
  const txt2img = { prompt: "a red fox <lora:e2e-detail:0.8>", seed: 11, steps: 6, width: 128, height: 128 };

  it("txt2img with a LoRA tag, a VAE and a ControlNet unit: the files land in their folders, the infotext names each with its hash, the picture changes", async () => {
    lora = await registerAddon("e2e-detail", "lora", "lora", "e2e-detail.safetensors", "models/Lora");
    vae = await registerAddon("e2e-vae", "sdVae", "vae", "e2e-kl-f8.safetensors", "models/VAE");
    canny = await registerAddon("e2e-canny", "controlNet", "controlnet", "control_e2e_canny.safetensors", "models/ControlNet");
    for (const addon of [lora, vae, canny]) expect(existsSync(onDisk(addon)), onDisk(addon)).toBe(false);
    expect(await cachedAddons()).toEqual([]);

    const { result, png } = await run("/txt2img", { ...txt2img, sd_vae: "e2e-vae", alwayson_scripts: controlnetUnit("e2e-canny") });
    for (const addon of [lora, vae, canny]) expect(sha256(readFileSync(onDisk(addon)))).toBe(sha256(addon.bytes));
    const infotext = result.info.infotexts?.[0] ?? "";
    expect(infotext).toContain(`Lora hashes: "e2e-detail: ${addnetShortHash(lora.bytes)}"`);
    expect(infotext).toContain(`VAE hash: ${sha256(vae.bytes).slice(0, 10)}`);
    expect(infotext).toContain("VAE: e2e-kl-f8.safetensors");
    expect(infotext).toMatch(new RegExp(`ControlNet 0: "Module: canny, Model: control_e2e_canny \\[${legacyHash(canny.bytes)}\\],`));
    expect([png.width, png.height]).toEqual([128, 128]);
    firstPng = png;

    const plain = await run("/txt2img", { ...txt2img, prompt: "a red fox" });
    expect(plain.result.info.infotexts?.[0]).not.toMatch(/Lora hashes|VAE hash|ControlNet 0/);
    expect(meanDifference(png, plain.png)).toBeGreaterThan(10);
    expect(await cachedAddons()).toEqual(expect.arrayContaining(["e2e-detail", "e2e-vae", "e2e-canny"]));
  });

  it("a second task with the same add-ons takes them from the node's cache: nothing is downloaded again, the picture is the same", async () => {
    const before = [lora, vae, canny].map((addon) => statSync(onDisk(addon)));
    expect([lora, vae, canny].map(downloads)).toEqual([1, 1, 1]);
    const { result, png } = await run("/txt2img", { ...txt2img, sd_vae: "e2e-vae", alwayson_scripts: controlnetUnit("e2e-canny") });
    expect(result.info.infotexts?.[0]).toContain(`Lora hashes: "e2e-detail: ${addnetShortHash(lora.bytes)}"`);
    expect([lora, vae, canny].map(downloads)).toEqual([1, 1, 1]);
    const after = [lora, vae, canny].map((addon) => statSync(onDisk(addon)));
    expect(after.map((s) => [s.ino, s.mtimeMs])).toEqual(before.map((s) => [s.ino, s.mtimeMs]));
    expect(Buffer.compare(png.data, firstPng.data)).toBe(0);
  });

  it("img2img with a mask and a ControlNet unit on a model the node did not have", async () => {
    const depth = await registerAddon("e2e-depth", "controlnet", "controlnet", "control_e2e_depth.pth", "models/ControlNet");
    expect(existsSync(onDisk(depth))).toBe(false);
    const img2img = {
      init_images: [solidPng(128, [200, 40, 40])],
      mask: squarePng(128),
      denoising_strength: 0.6,
      seed: 5,
      steps: 6,
      width: 128,
      height: 128,
    };
    const { result, png } = await run("/img2img", { ...img2img, alwayson_scripts: controlnetUnit("e2e-depth") });
    expect(sha256(readFileSync(onDisk(depth)))).toBe(sha256(depth.bytes));
    const infotext = result.info.infotexts?.[0] ?? "";
    expect(infotext).toContain("Mask blur");
    expect(infotext).toMatch(new RegExp(`ControlNet 0: "Module: canny, Model: control_e2e_depth \\[${legacyHash(depth.bytes)}\\],`));
    const plain = await run("/img2img", img2img);
    expect(meanDifference(png, plain.png)).toBeGreaterThan(2);
  });
});

describe("add-ons nobody has", () => {
  const unknown = {
    prompt: "a red fox <lora:e2e-no-such-lora:1>",
    sd_vae: "e2e-no-such-vae.safetensors",
    alwayson_scripts: controlnetUnit("control_e2e_no_such [0badc0de]"),
    steps: 4,
    width: 64,
    height: 64,
  };

  it("are refused at submit, each named, as problem+json on the original API", async () => {
    const { status, body } = await callApi<Problem>(stack, "/txt2img", { body: { stable_diffusion_model: "e2e-a", ...unknown } });
    expect(status).toBe(422);
    expect(body.code).toBe("addon_not_found");
    expect(body.errors?.map((e) => e.path)).toEqual(["prompt", "sd_vae", "alwayson_scripts.controlnet.args.0.model"]);
    for (const name of ["e2e-no-such-lora", "e2e-no-such-vae.safetensors", "control_e2e_no_such"]) expect(body.detail).toContain(name);
  });

  it("are refused at submit in FastAPI's 422 shape on /sdapi/v1", async () => {
    const { status, body } = await callApi<{ detail: Array<{ loc: unknown[]; msg: string; type: string }> }>(stack, "/sdapi/v1/txt2img", {
      body: { ...unknown, override_settings: { sd_model_checkpoint: "e2e-a" } },
    });
    expect(status).toBe(422);
    expect(body.detail.map((d) => d.loc)).toEqual([
      ["body", "prompt"],
      ["body", "sd_vae"],
      ["body", "alwayson_scripts", "controlnet", "args", 0, "model"],
    ]);
    expect(body.detail[0]!.msg).toContain("e2e-no-such-lora");
    expect(body.detail[1]!.msg).toContain("e2e-no-such-vae.safetensors");
    expect(body.detail[2]!.msg).toContain("control_e2e_no_such");
  });
});

describe("deleting an add-on a task needs", () => {
  it("is refused with 409 model_in_use while the task waits and while it runs, and succeeds once it has ended", async () => {
    const busy = await registerAddon("e2e-busy", "lycoris", "lora", "e2e-busy.safetensors", "models/Lora");
    const progressOf = async (taskId: string) => (await callApi<{ status: string }>(stack, `/tasks/${taskId}/progress`)).body.status;
    const deleteBusy = () => callApi<Problem>(stack, "/models/e2e-busy", { method: "DELETE", headers: ADMIN });
    // The only node is busy with a long task, so the add-on's task waits behind it.
    const blocker = await callApi<Submitted>(stack, "/txt2img", {
      body: { stable_diffusion_model: "e2e-a", prompt: "blocker", steps: 400, width: 64, height: 64 },
      headers: { "request-type": "async" },
    });
    await waitFor(async () => (await progressOf(blocker.body.taskId)) === "running", 30_000, "the blocker to run", agent);
    const user = await callApi<Submitted>(stack, "/txt2img", {
      body: { stable_diffusion_model: "e2e-a", prompt: "a red fox <lora:e2e-busy:1>", steps: 150, width: 64, height: 64 },
      headers: { "request-type": "async" },
    });
    expect(user.status).toBe(202);
    expect(await progressOf(user.body.taskId)).toBe("waiting");

    const whileWaiting = await deleteBusy();
    expect(whileWaiting.status).toBe(409);
    expect(whileWaiting.body.code).toBe("model_in_use");
    expect(whileWaiting.body.detail).toContain("1 waiting and 0 running");

    expect((await callApi(stack, `/tasks/${blocker.body.taskId}/cancellation`, { method: "POST" })).status).toBe(202);
    await waitFor(async () => (await progressOf(user.body.taskId)) === "running", 30_000, "the add-on's task to run", agent);
    const whileRunning = await deleteBusy();
    expect(whileRunning.status).toBe(409);
    expect(whileRunning.body.code).toBe("model_in_use");
    expect(whileRunning.body.detail).toContain("0 waiting and 1 running");

    await waitFor(async () => (await resultOf(user.body.taskId)).status === "succeeded", 30_000, "the add-on's task to end", agent);
    expect((await resultOf(user.body.taskId)).info.infotexts?.[0]).toContain(`Lora hashes: "e2e-busy: ${addnetShortHash(busy.bytes)}"`);
    const deleted = await deleteBusy();
    expect(deleted.status).toBe(200);
    expect(deleted.body).toMatchObject({ deleted: true, cancelledTasks: 0 });
    expect((await callApi(stack, "/models/e2e-busy", { headers: ADMIN })).status).toBe(404);
  });
});
