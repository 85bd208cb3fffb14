// Models in D1: lookups (by name or any sd-webui alias), registration, changes and deletion.
import { eq, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { type AddonType, MODEL_FOLDER_BY_TYPE, type ModelType, normalizeModelType } from "../protocol/model-types";
import type { AddonFile, ModelFile } from "../protocol/node";
import { models, pools } from "./schema";

export type ModelRow = typeof models.$inferSelect;

/** A row's type, normalized (rows registered before types were checked may carry the original's names). */
export function modelType(model: ModelRow): ModelType | null {
  return normalizeModelType(model.type);
}

export function isCheckpoint(model: ModelRow): boolean {
  return modelType(model) === "checkpoint";
}

/** The folder under sd-webui's data directory the model's file goes to on a node. */
export function modelFolder(model: ModelRow): string {
  const type = modelType(model);
  return model.folder ?? (type ? MODEL_FOLDER_BY_TYPE[type] : MODEL_FOLDER_BY_TYPE.checkpoint);
}

/** A checkpoint with a file, as a claim names it. */
export function checkpointFileOf(model: ModelRow & { sha256: string }): ModelFile {
  return { name: model.name, fileName: model.fileName, sha256: model.sha256, sizeBytes: model.sizeBytes ?? 0 };
}

/** An add-on with a file, as a claim names it: where it goes on a node and what it must hash to. */
export function addonFileOf(model: ModelRow & { sha256: string }): AddonFile {
  return { ...checkpointFileOf(model), type: modelType(model) as AddonType, folder: modelFolder(model) };
}

/** Every registered model, or those of one type. */
export async function listModels(db: D1Database, type?: ModelType): Promise<ModelRow[]> {
  const all = await drizzle(db).select().from(models).orderBy(models.name).all();
  return type ? all.filter((m) => modelType(m) === type) : all;
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
    all.find((m) => m.sha256 !== null && (m.sha256 === wanted || (m.sha256.startsWith(wanted) && wanted.length >= 8))) ??
    null
  );
}

/** A model of `type` (any type if not given) by any name sd-webui accepts. */
export async function resolveModel(db: D1Database, alias: string, type?: ModelType): Promise<ModelRow | null> {
  const exact = await findModel(db, alias);
  if (exact && (!type || modelType(exact) === type)) return exact;
  return matchModel(await listModels(db, type), alias);
}

export async function insertModel(db: D1Database, row: ModelRow): Promise<void> {
  await drizzle(db).insert(models).values(row);
}

export async function updateModel(db: D1Database, name: string, changes: Partial<ModelRow>): Promise<void> {
  await drizzle(db).update(models).set(changes).where(eq(models.name, name));
}

/** Deletes the model's row and its pool's, together. */
export async function deleteModel(db: D1Database, name: string): Promise<void> {
  const d = drizzle(db);
  await d.batch([d.delete(pools).where(eq(pools.checkpoint, name)), d.delete(models).where(eq(models.name, name))]);
}

export async function countModels(db: D1Database): Promise<number> {
  return (await drizzle(db).select({ n: sql<number>`count(*)` }).from(models).get())?.n ?? 0;
}
