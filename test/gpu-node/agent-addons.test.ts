// Add-ons as a node operator sees them: a task that needs a LoRA, a VAE and a ControlNet model on a
// node that has none of them downloads each into sd-webui's folder for it, sd-webui lists them
// without a restart, the node reports them, and the next task downloads nothing.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { startEmulator } from "../../emulator/server.ts";
import type { GpuNodeAgent } from "../../gpu-node/agent.ts";
import {
  agentFor,
  agentTestTeardown,
  checkpointsDirOf,
  decodePng,
  fileSha256,
  modelBytes,
  safetensorsBytes,
  solidPng,
  supervisedEmulator,
  tempDir,
} from "./support/fixtures.ts";
import { TestGateway } from "./support/test-gateway.ts";

const { cleanups, gateways } = agentTestTeardown();

const LORA = "blingdbox_v1_mix";
const VAE = "clear-vae";
const CONTROLNET = "control_v11p_sd15_canny";
const EMBEDDING = "bad-hands-5";

async function setup(): Promise<{ gateway: TestGateway; dataDir: string; emulatorUrl: string; agent: GpuNodeAgent }> {
  const dataDir = await tempDir("addons-data");
  const emulator = await startEmulator({ port: 0, dataDir, apiOnly: true, controlnet: true, stepMs: 5, loadMs: 10 });
  cleanups.push(() => emulator.close());
  const gateway = await TestGateway.start();
  cleanups.push(() => gateway.close());
  gateways.push(gateway);
  gateway.addModel({ name: "base-v1", bytes: modelBytes(64 * 1024, 41) });
  gateway.addModel({ name: LORA, type: "lora", bytes: safetensorsBytes("lora", 1) });
  gateway.addModel({ name: VAE, type: "vae", bytes: safetensorsBytes("vae", 2) });
  gateway.addModel({ name: CONTROLNET, type: "controlnet", bytes: safetensorsBytes("controlnet", 3) });
  gateway.addModel({ name: EMBEDDING, type: "embedding", bytes: safetensorsBytes("embedding", 4) });
  const agent = agentFor(gateway, { nodeId: "addons-node", webuiUrl: emulator.url, dataDir });
  cleanups.push(() => agent.stop({ drain: false }));
  await agent.start();
  return { gateway, dataDir, emulatorUrl: emulator.url, agent };
}

function withAddons(gateway: TestGateway, prompt: string) {
  const control = solidPng(64, 64, [10, 200, 10]).toString("base64");
  return gateway.waitForEnd(
    gateway.enqueue({
      kind: "txt2img",
      model: "base-v1",
      addons: [LORA, VAE, CONTROLNET, EMBEDDING],
      vae: `${VAE}.safetensors`,
      payload: {
        prompt: `${prompt} <lora:${LORA}:0.8>`,
        negative_prompt: EMBEDDING,
        steps: 3,
        width: 64,
        height: 64,
        seed: 7,
        alwayson_scripts: { controlnet: { args: [{ enabled: true, module: "canny", model: CONTROLNET, image: control }] } },
      },
    }),
  );
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return (await res.json()) as T;
}

describe("gpu-node add-ons", () => {
  it("downloads a task's LoRA, VAE and ControlNet model into sd-webui's folders, makes sd-webui list them, and reuses them", async () => {
    const { gateway, dataDir, emulatorUrl } = await setup();

    const first = await withAddons(gateway, "a glass teapot");
    expect(first.status).toBe("succeeded");
    expect(decodePng(first.images.get(0)!.bytes)).toEqual({ width: 64, height: 64 });
    // Each file in the folder sd-webui reads for its type, verified.
    for (const [name, folder] of [
      [LORA, "models/Lora"],
      [VAE, "models/VAE"],
      [CONTROLNET, "models/ControlNet"],
      [EMBEDDING, "embeddings"],
    ] as const) {
      expect(gateway.downloadsOf(name)).toHaveLength(1);
      expect(await fileSha256(path.join(dataDir, folder, `${name}.safetensors`))).toBe(gateway.models.get(name)!.sha256);
    }
    // sd-webui applied each of them: its infotext names them with their hashes.
    const infotext = (first.complete?.info as { infotexts?: string[] } | null)?.infotexts?.[0] ?? "";
    expect(infotext).toMatch(new RegExp(`Lora hashes: "${LORA}: [0-9a-f]{12}"`));
    expect(infotext).toContain(`VAE hash: ${gateway.models.get(VAE)!.sha256.slice(0, 10)}`);
    expect(infotext).toContain(`VAE: ${VAE}.safetensors`);
    expect(infotext).toMatch(new RegExp(`TI hashes: "${EMBEDDING}: [0-9a-f]{12}"`));
    expect(infotext).toMatch(new RegExp(`ControlNet 0: "Module: canny, Model: ${CONTROLNET} \\[[0-9a-f]{8}\\]`));
    expect(infotext).toContain(`Model hash: ${gateway.models.get("base-v1")!.sha256.slice(0, 10)}`);

    // sd-webui was told about them (the emulator, like sd-webui, rescans only when asked).
    const loras = await getJson<{ name: string }[]>(`${emulatorUrl}/sdapi/v1/loras`);
    expect(loras.map((lora) => lora.name)).toContain(LORA);
    const vaes = await getJson<{ model_name: string }[]>(`${emulatorUrl}/sdapi/v1/sd-vae`);
    expect(vaes.map((vae) => vae.model_name)).toContain(`${VAE}.safetensors`);
    const controlnet = await getJson<{ model_list: string[] }>(`${emulatorUrl}/controlnet/model_list?update=false`);
    expect(controlnet.model_list.some((title) => title.startsWith(`${CONTROLNET} [`))).toBe(true);

    // The Worker learns what the node holds, and sd-webui's catalog with the new files in it.
    const beat = await gateway.waitFor("a heartbeat with the add-ons and the new catalog", () =>
      gateway
        .node("addons-node")
        .heartbeats.findLast((h) => h.cachedAddons.length === 4 && h.catalog?.["controlnet-models"]?.some((title) => title.startsWith(CONTROLNET)) === true),
    );
    expect(beat.cachedAddons).toEqual([LORA, CONTROLNET, VAE, EMBEDDING].sort());
    expect(beat.cachedCheckpoints).toEqual(["base-v1"]);
    expect(((beat.catalog?.loras ?? []) as { name: string }[]).map((lora) => lora.name)).toContain(LORA);
    expect(beat.catalog?.["controlnet-modules"]).toContain("canny");
    expect(Object.keys(beat.catalog?.options ?? {})).toContain("sd_model_checkpoint");
    expect(beat.catalog?.embeddings).toHaveProperty("loaded");

    // The second task finds everything on disk.
    const second = await withAddons(gateway, "a glass teapot, again");
    expect(second.status).toBe("succeeded");
    for (const name of [LORA, VAE, CONTROLNET, EMBEDDING, "base-v1"]) expect(gateway.downloadsOf(name)).toHaveLength(1);
    const claim = gateway.node("addons-node");
    expect(claim.registrations[0]?.cachedAddons).toEqual([]);
  });

  it("keeps the checkpoint folder apart: the checkpoint under its own version folder, nothing else in it", async () => {
    const { gateway, dataDir } = await setup();
    expect((await withAddons(gateway, "a lamp")).status).toBe("succeeded");
    const checkpoint = gateway.models.get("base-v1")!;
    expect(await fileSha256(path.join(checkpointsDirOf(dataDir), checkpoint.sha256.slice(0, 10), checkpoint.fileName))).toBe(checkpoint.sha256);
    expect(await fileSha256(path.join(checkpointsDirOf(dataDir), `${LORA}.safetensors`))).toBeNull();
  });

  it("restarts a supervised sd-webui for a new upscaler (it lists upscalers only at start), once", async () => {
    const dataDir = await tempDir("addons-spawn");
    const gateway = await TestGateway.start();
    cleanups.push(() => gateway.close());
    gateways.push(gateway);
    gateway.addModel({ name: "base-v1", bytes: modelBytes(32 * 1024, 43) });
    gateway.addModel({ name: "4x-sharp", type: "upscaler", fileName: "4x-sharp.pth", bytes: modelBytes(8 * 1024, 44) });
    const agent = agentFor(gateway, {
      nodeId: "upscaler-node",
      ...supervisedEmulator({ stepMs: 5, loadMs: 10 }),
      dataDir,
    });
    cleanups.push(() => agent.stop({ drain: false }));
    await agent.start();
    const pidBefore = agent.webuiPid;

    const upscale = () =>
      gateway.waitForEnd(
        gateway.enqueue({ kind: "txt2img", model: "base-v1", addons: ["4x-sharp"], payload: { prompt: "a map", steps: 2, width: 64, height: 64 } }),
        30_000,
      );
    expect((await upscale()).status).toBe("succeeded");
    expect(await fileSha256(path.join(dataDir, "models/ESRGAN/4x-sharp.pth"))).toBe(gateway.models.get("4x-sharp")!.sha256);
    const pidAfter = agent.webuiPid;
    expect(pidAfter).toBeDefined();
    expect(pidAfter).not.toBe(pidBefore);
    const upscalers = await getJson<{ name: string }[]>(`${agent.webuiUrl}/sdapi/v1/upscalers`);
    expect(upscalers.map((upscaler) => upscaler.name)).toContain("4x-sharp");

    expect((await upscale()).status).toBe("succeeded");
    expect(agent.webuiPid).toBe(pidAfter);
    expect(gateway.downloadsOf("4x-sharp")).toHaveLength(1);
  });
});
