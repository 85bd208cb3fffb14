// Models and their pools: lookups, sd-webui-style aliases, and the settings a queue runs with.
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { PoolSettings } from "../queue/types";
import { models, pools } from "./schema";

export type ModelRow = typeof models.$inferSelect;
export type PoolRow = typeof pools.$inferSelect;

/** A pool without a row runs with these. */
export const DEFAULT_POOL = {
  concurrencyCap: 10,
  timeoutSeconds: 600,
  extraArgs: "",
  env: {} as Record<string, string>,
  minGpuMemoryMb: 0,
  gpuClass: null as string | null,
  minNodes: 0,
  maxNodes: 0,
};

/** Assumed download speed of a node pulling a checkpoint from R2, for switch-cost estimates. */
const ASSUMED_DOWNLOAD_BYTES_PER_MS = 100_000;

export async function listModels(db: D1Database): Promise<ModelRow[]> {
  return drizzle(db).select().from(models).orderBy(models.name).all();
}

export async function findModel(db: D1Database, name: string): Promise<ModelRow | null> {
  return (await drizzle(db).select().from(models).where(eq(models.name, name)).get()) ?? null;
}

export function shortHash(sha256: string | null): string | null {
  return sha256 ? sha256.slice(0, 10) : null;
}

/** sd-webui's title for a checkpoint: "<file> [<short hash>]". */
export function checkpointTitle(model: ModelRow): string {
  const hash = shortHash(model.sha256);
  return hash ? `${model.fileName} [${hash}]` : model.fileName;
}

/** Finds a model by any name sd-webui accepts: name, file name (with or without extension), title, short or legacy hash, sha256. */
export function matchModel(all: readonly ModelRow[], alias: string): ModelRow | null {
  const wanted = alias.trim();
  const stripped = wanted.replace(/\s*\[[0-9a-f]{8,10}\]$/, "");
  return (
    all.find((m) => m.name === wanted) ??
    all.find((m) => checkpointTitle(m) === wanted) ??
    all.find((m) => m.fileName === stripped || m.fileName.replace(/\.[^.]+$/, "") === stripped || m.name === stripped) ??
    all.find((m) => m.sha256 !== null && (m.sha256 === wanted || m.sha256.startsWith(wanted) && wanted.length >= 8)) ??
    null
  );
}

export async function resolveModel(db: D1Database, alias: string): Promise<ModelRow | null> {
  return (await findModel(db, alias)) ?? matchModel(await listModels(db), alias);
}

export async function findPool(db: D1Database, checkpoint: string): Promise<PoolRow | null> {
  return (await drizzle(db).select().from(pools).where(eq(pools.checkpoint, checkpoint)).get()) ?? null;
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
