// Add-ons as sd-webui applies them: LoRA, VAE, embeddings and ControlNet units only when their
// files are in their folders, with sd-webui's infotext lines and a picture that changes.

import { createHash, randomBytes } from "node:crypto";
import { copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fakeModelFile } from "../../emulator/model-file-kind.ts";
import { type RunningEmulator, startEmulator } from "../../emulator/server.ts";
import { callEmulator, type Reply } from "./support.ts";

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");
const BASE = { prompt: "a lighthouse", negative_prompt: "", steps: 1, width: 64, height: 64, seed: 42 };

let dataDir: string;
let emulator: RunningEmulator;
const loraPayload = randomBytes(300);
const lora = fakeModelFile("lora", loraPayload);
const vae = fakeModelFile("vae", randomBytes(300));
const embedding = fakeModelFile("embedding", randomBytes(100));
const controlnet = randomBytes(2048);

async function api(method: string, route: string, body?: unknown): Promise<Pick<Reply, "status" | "body">> {
  const { status, body: answer } = await callEmulator(emulator.url, method, route, body);
  return { status, body: answer };
}

async function generate(extra: Record<string, unknown> = {}) {
  const reply = await api("POST", "/sdapi/v1/txt2img", { ...BASE, ...extra });
  expect(reply.status).toBe(200);
  const info = JSON.parse(reply.body.info as string) as {
    infotexts: string[];
    sd_vae_name: string | null;
    sd_vae_hash: string | null;
    extra_generation_params: Record<string, unknown>;
  };
  return { info, infotext: info.infotexts[0]!, pixels: PNG.sync.read(Buffer.from(reply.body.images[0] as string, "base64")).data };
}

function solidPng(rgb: [number, number, number]): string {
  const png = new PNG({ width: 32, height: 32 });
  for (let i = 0; i < png.data.length; i += 4) png.data.set([...rgb, 255], i);
  for (let y = 8; y < 24; y++) for (let x = 8; x < 24; x++) png.data.set([255, 255, 255, 255], (y * 32 + x) * 4);
  return PNG.sync.write(png).toString("base64");
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), "sdgate-emulator-addons-"));
  for (const folder of ["models/Stable-diffusion", "models/Lora", "models/VAE", "models/ControlNet", "models/ESRGAN", "embeddings"])
    await mkdir(path.join(dataDir, folder), { recursive: true });
  await writeFile(path.join(dataDir, "models/Stable-diffusion/base.safetensors"), randomBytes(4096));
  await writeFile(path.join(dataDir, "models/Lora/blingdbox_v1_mix.safetensors"), lora);
  await writeFile(path.join(dataDir, "models/VAE/vae-ft-mse.safetensors"), vae);
  await writeFile(path.join(dataDir, "embeddings/easynegative.safetensors"), embedding);
  await writeFile(path.join(dataDir, "models/ControlNet/control_v11p_sd15_canny.pth"), controlnet);
  await writeFile(path.join(dataDir, "models/ESRGAN/4x-UltraSharp.pth"), randomBytes(512));
  emulator = await startEmulator({ dataDir, controlnet: true, stepMs: 1, loadMs: 1 });
});

afterAll(async () => {
  await emulator?.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe("LoRA", () => {
  it("applies a LoRA in models/Lora: Lora hashes with the addnet hash, and another picture", async () => {
    const plain = await generate();
    const withLora = await generate({ prompt: `${BASE.prompt} <lora:blingdbox_v1_mix:0.8>` });
    // extra_networks_lora.py: shorthash = 12 hex of the addnet hash (the bytes after the safetensors header).
    expect(withLora.infotext).toContain(`Lora hashes: "blingdbox_v1_mix: ${sha256(loraPayload).slice(0, 12)}"`);
    expect(withLora.info.extra_generation_params["Lora hashes"]).toBe(`blingdbox_v1_mix: ${sha256(loraPayload).slice(0, 12)}`);
    expect(Buffer.compare(plain.pixels, withLora.pixels)).not.toBe(0);
    const lyco = await generate({ prompt: `${BASE.prompt} <lyco:blingdbox_v1_mix:0.8>` });
    expect(Buffer.compare(lyco.pixels, withLora.pixels)).toBe(0);
    const heavier = await generate({ prompt: `${BASE.prompt} <lora:blingdbox_v1_mix:1.5>` });
    expect(Buffer.compare(heavier.pixels, withLora.pixels)).not.toBe(0);
  });

  it("skips a missing LoRA without any trace but the missing Lora hashes, and finds one copied in later", async () => {
    const plain = await generate();
    const missing = await generate({ prompt: `${BASE.prompt} <lora:later_added:1>` });
    expect(missing.infotext).not.toContain("Lora hashes");
    expect(missing.infotext.startsWith(`${BASE.prompt} <lora:later_added:1>\n`)).toBe(true);
    expect(Buffer.compare(plain.pixels, missing.pixels)).toBe(0);
    // networks.py load_networks rescans models/Lora when a name is unknown: no refresh needed.
    await mkdir(path.join(dataDir, "models/Lora/styles"));
    await writeFile(path.join(dataDir, "models/Lora/styles/later_added.safetensors"), fakeModelFile("lora", randomBytes(64)));
    const found = await generate({ prompt: `${BASE.prompt} <lora:later_added:1>` });
    expect(found.infotext).toMatch(/Lora hashes: "later_added: [0-9a-f]{12}"/);
    expect(((await api("GET", "/sdapi/v1/loras")).body as { name: string }[]).map((item) => item.name).sort()).toEqual(["blingdbox_v1_mix", "later_added"]);
  });
});

describe("VAE", () => {
  it("applies the sd_vae named in override_settings, with VAE hash and VAE in the infotext", async () => {
    const plain = await generate();
    const withVae = await generate({ override_settings: { sd_vae: "vae-ft-mse.safetensors" } });
    expect(withVae.infotext).toContain(`VAE hash: ${sha256(vae).slice(0, 10)}, VAE: vae-ft-mse.safetensors,`);
    expect(withVae.info).toMatchObject({ sd_vae_name: "vae-ft-mse.safetensors", sd_vae_hash: sha256(vae).slice(0, 10) });
    expect(Buffer.compare(plain.pixels, withVae.pixels)).not.toBe(0);
    expect((await api("GET", "/sdapi/v1/options")).body.sd_vae).toBe("Automatic");
  });

  it("falls back to the checkpoint's own VAE for a name not in models/VAE, and lists new files only after refresh-vae", async () => {
    const plain = await generate();
    const unknown = await generate({ override_settings: { sd_vae: "later.safetensors" } });
    expect(unknown.infotext).not.toContain("VAE");
    expect(unknown.info.sd_vae_name).toBeNull();
    expect(Buffer.compare(plain.pixels, unknown.pixels)).toBe(0);

    await writeFile(path.join(dataDir, "models/VAE/later.safetensors"), fakeModelFile("vae", randomBytes(32)));
    expect((await api("GET", "/sdapi/v1/sd-vae")).body).toHaveLength(1);
    expect((await generate({ override_settings: { sd_vae: "later.safetensors" } })).info.sd_vae_name).toBeNull();
    expect((await api("POST", "/sdapi/v1/refresh-vae")).status).toBe(200);
    expect(((await api("GET", "/sdapi/v1/sd-vae")).body as { model_name: string }[]).map((item) => item.model_name).sort()).toEqual([
      "later.safetensors",
      "vae-ft-mse.safetensors",
    ]);
    expect((await generate({ override_settings: { sd_vae: "later.safetensors" } })).info.sd_vae_name).toBe("later.safetensors");
  });
});

describe("textual-inversion embeddings", () => {
  it("applies an embedding named in the negative prompt with TI hashes, and lists it", async () => {
    const plain = await generate();
    const withEmbedding = await generate({ negative_prompt: "easynegative, blurry" });
    expect(withEmbedding.infotext).toContain(`TI hashes: "easynegative: ${sha256(embedding).slice(0, 12)}"`);
    expect(Buffer.compare(plain.pixels, withEmbedding.pixels)).not.toBe(0);
    expect(Object.keys((await api("GET", "/sdapi/v1/embeddings")).body.loaded)).toEqual(["easynegative"]);
  });

  it("sees an embedding copied in later at the next generation, as the folder's mtime changed", async () => {
    await copyFile(path.join(dataDir, "embeddings/easynegative.safetensors"), path.join(dataDir, "embeddings/badhands.safetensors"));
    expect((await generate({ prompt: "badhands" })).infotext).toContain('TI hashes: "badhands: ');
    expect(Object.keys((await api("GET", "/sdapi/v1/embeddings")).body.loaded).sort()).toEqual(["badhands", "easynegative"]);
  });
});

describe("ControlNet", () => {
  const unit = (model: string) => ({ controlnet: { args: [{ module: "canny", model, weight: 1, image: solidPng([20, 40, 60]) }] } });

  it("applies a unit whose model is in models/ControlNet, with the extension's infotext line", async () => {
    const list = (await api("GET", "/controlnet/model_list")).body.model_list as string[];
    expect(list).toHaveLength(1);
    const plain = await generate();
    const controlled = await generate({ alwayson_scripts: unit("control_v11p_sd15_canny") });
    expect(controlled.infotext).toContain(
      `ControlNet 0: "Module: canny, Model: ${list[0]}, Weight: 1.0, Resize Mode: Crop and Resize, Processor Res: 512, Threshold A: 100.0, Threshold B: 200.0, Guidance Start: 0.0, Guidance End: 1.0, Pixel Perfect: False, Control Mode: Balanced, Hr Option: Both"`,
    );
    expect(Buffer.compare(plain.pixels, controlled.pixels)).not.toBe(0);
    const byTitle = await generate({ alwayson_scripts: unit(list[0]!) });
    expect(Buffer.compare(byTitle.pixels, controlled.pixels)).toBe(0);
  });

  it("skips the units when a model is missing, as the extension's failed process() is reported and skipped", async () => {
    const plain = await generate();
    const skipped = await generate({ alwayson_scripts: unit("control_v11p_sd15_openpose") });
    expect(skipped.infotext).not.toContain("ControlNet");
    expect(Buffer.compare(plain.pixels, skipped.pixels)).toBe(0);
  });

  it("lists its always-on script in /scripts and /script-info", async () => {
    expect((await api("GET", "/sdapi/v1/scripts")).body.txt2img).toContain("controlnet");
    const info = (await api("GET", "/sdapi/v1/script-info")).body as { name: string; is_alwayson: boolean; is_img2img: boolean }[];
    expect(info).toEqual(expect.arrayContaining([{ name: "controlnet", is_alwayson: true, is_img2img: true, args: [] }]));
  });

  it("answers /controlnet/detect with the preprocessed image and refuses an unknown module", async () => {
    const detected = await api("POST", "/controlnet/detect", { controlnet_module: "canny", controlnet_input_images: [solidPng([0, 0, 0])] });
    expect(detected.status).toBe(200);
    expect(detected.body.info).toBe("Success");
    const png = PNG.sync.read(Buffer.from(detected.body.images[0] as string, "base64"));
    expect(png.width).toBe(32);
    const unknown = await api("POST", "/controlnet/detect", { controlnet_module: "nope", controlnet_input_images: [solidPng([0, 0, 0])] });
    expect(unknown).toMatchObject({ status: 422, body: { detail: "Module not available" } });
  });
});

describe("upscalers", () => {
  it("lists each file in models/ESRGAN by its stem in place of ESRGAN_4x, and runs hires with it", async () => {
    const list = (await api("GET", "/sdapi/v1/upscalers")).body as { name: string; model_path: string | null }[];
    expect(list.slice(0, 3).map((item) => item.name)).toEqual(["None", "Lanczos", "Nearest"]);
    expect(list.map((item) => item.name)).not.toContain("ESRGAN_4x");
    expect(list).toContainEqual(expect.objectContaining({ name: "4x-UltraSharp", model_path: path.join(dataDir, "models/ESRGAN/4x-UltraSharp.pth") }));
    const hires = await api("POST", "/sdapi/v1/txt2img", { ...BASE, enable_hr: true, hr_scale: 1.5, hr_upscaler: "4x-UltraSharp" });
    expect(hires.status).toBe(200);
    expect(JSON.parse(hires.body.info).infotexts[0]).toContain("Hires upscaler: 4x-UltraSharp");
    const unknown = await api("POST", "/sdapi/v1/txt2img", { ...BASE, enable_hr: true, hr_upscaler: "4x-Missing" });
    expect(unknown).toMatchObject({ status: 500, body: { error: "Exception", errors: "could not find upscaler named 4x-Missing" } });
  });
});
