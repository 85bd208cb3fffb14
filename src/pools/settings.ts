// A pool's settings: what a checkpoint's queue and placement run with, built from its model and
// pool rows, and the defaults of a pool without a row.
import type { ModelRow } from "../db/models";
import type { PoolRow } from "../db/pools";

/** A pool's settings as the queue and placement need them. */
export interface PoolSettings {
  checkpoint: string;
  concurrencyCap: number;
  timeoutSeconds: number;
  /** Extra sd-webui command-line arguments nodes start sd-webui with. */
  extraArgs: string;
  minGpuMemoryMb: number;
  gpuClass: string | null;
  minNodes: number;
  maxNodes: number;
  loadMs: number;
  downloadMs: number;
  inferenceMs: number;
}

/** A pool without a row runs with these. */
const DEFAULT_POOL = {
  concurrencyCap: 10,
  timeoutSeconds: 600,
  extraArgs: "",
  env: {} as Record<string, string>,
  minGpuMemoryMb: 0,
  gpuClass: null as string | null,
  minNodes: 0,
  maxNodes: 0,
};

const { env: _env, ...defaultConstraints } = DEFAULT_POOL;

/** What a queue that was never configured (nor enqueued to) runs with. */
export const UNCONFIGURED_POOL: PoolSettings = { checkpoint: "", ...defaultConstraints, loadMs: 0, downloadMs: 0, inferenceMs: 0 };

/** Assumed download speed of a node pulling a checkpoint from R2, for switch-cost estimates. */
const ASSUMED_DOWNLOAD_BYTES_PER_MS = 100_000;

/** The row a pool without one is taken to have. */
export function defaultPoolRow(checkpoint: string): PoolRow {
  return { checkpoint, ...DEFAULT_POOL, updatedAt: 0 };
}

export function poolSettings(model: ModelRow, pool: PoolRow | null): PoolSettings {
  const p = pool ?? DEFAULT_POOL;
  return {
    checkpoint: model.name,
    concurrencyCap: p.concurrencyCap,
    timeoutSeconds: p.timeoutSeconds,
    extraArgs: p.extraArgs,
    minGpuMemoryMb: p.minGpuMemoryMb,
    gpuClass: p.gpuClass,
    minNodes: p.minNodes,
    maxNodes: p.maxNodes,
    loadMs: model.loadSeconds * 1000,
    downloadMs: Math.round((model.sizeBytes ?? 0) / ASSUMED_DOWNLOAD_BYTES_PER_MS),
    inferenceMs: model.inferenceSeconds * 1000,
  };
}
