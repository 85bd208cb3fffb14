// GET /memory and GET /cmd-flags: plausible numbers and flags for an API-only sd-webui on a
// 24 GB GPU.
import os from "node:os";
import path from "node:path";
import type { EmulatorContext } from "./context.ts";

const GPU_TOTAL_BYTES = 24 * 1024 ** 3;
const GPU_BASELINE_BYTES = 600 * 1024 ** 2;
/** An SD 1.5 checkpoint in fp16 with its text encoder and VAE. */
const LOADED_MODEL_BYTES = 2.6 * 1024 ** 3;

export function memory(ctx: EmulatorContext) {
  const rss = process.memoryUsage().rss;
  const ramTotal = os.totalmem();
  const allocated = ctx.model.current && ctx.model.onDevice ? LOADED_MODEL_BYTES : 0;
  const reserved = allocated ? allocated + 512 * 1024 ** 2 : 0;
  const gpuUsed = GPU_BASELINE_BYTES + reserved;
  const pair = (current: number, peak: number) => ({ current, peak });
  return {
    ram: { free: ramTotal - rss, used: rss, total: ramTotal },
    cuda: {
      system: { free: GPU_TOTAL_BYTES - gpuUsed, used: gpuUsed, total: GPU_TOTAL_BYTES },
      active: pair(allocated, allocated * 1.6),
      allocated: pair(allocated, allocated * 1.6),
      reserved: pair(reserved, reserved * 1.6),
      inactive: pair(reserved - allocated, reserved - allocated),
      events: { retries: 0, oom: 0 },
    },
  };
}

export function cmdFlags(ctx: EmulatorContext) {
  const { dataDir, byType } = ctx.folders;
  return {
    api: true,
    nowebui: ctx.apiOnly,
    listen: ctx.host === "0.0.0.0" || ctx.host === "::",
    port: ctx.port,
    api_auth: ctx.authEnabled ? "<hidden>" : null,
    api_log: false,
    api_server_stop: false,
    ckpt_dir: byType.checkpoint,
    vae_dir: byType.vae,
    lora_dir: byType.lora,
    hypernetwork_dir: path.join(dataDir, "models", "hypernetworks"),
    embeddings_dir: byType.embedding,
    data_dir: dataDir,
    xformers: false,
    medvram: false,
    lowvram: false,
    no_half: false,
    no_half_vae: false,
    precision: "autocast",
    skip_torch_cuda_test: false,
    disable_safe_unpickle: false,
    timeout_keep_alive: 30,
  };
}
