// sd-webui's add-on lists as sdgate answers them: the registered add-ons (with a file) merged
// with what the nodes' sd-webui have built in (their reported catalogs), in sd-webui's item
// shapes. A registered add-on a node already reported keeps the node's item. Pure.
import { type ModelRow, modelFolder, modelType } from "../db/models";
import type { WebuiCatalog } from "../protocol/node";

function stem(fileName: string): string {
  return fileName.replace(/\.[^.]+$/, "");
}

function registered(models: readonly ModelRow[], type: NonNullable<ReturnType<typeof modelType>>): ModelRow[] {
  return models.filter((m) => m.sha256 && modelType(m) === type);
}

function stringField(item: unknown, key: string): string | null {
  const value = item && typeof item === "object" ? (item as Record<string, unknown>)[key] : undefined;
  return typeof value === "string" ? value : null;
}

/** The catalog's items, then each registered item whose key no catalog item has. */
function merged(reported: readonly unknown[], own: readonly unknown[], key: (item: unknown) => string | null): unknown[] {
  const seen = new Set(reported.map(key));
  return [...reported, ...own.filter((item) => !seen.has(key(item)))];
}

/** `GET /sdapi/v1/loras`: the Lora extension's `{name, alias, path, metadata}` (`extensions-builtin/Lora/scripts/lora_script.py`). */
export function loraList(models: readonly ModelRow[], catalog: WebuiCatalog): unknown[] {
  const reported = (catalog.loras ?? []).map((item) => (item && typeof item === "object" && !("metadata" in item) ? { ...item, metadata: {} } : item));
  const own = registered(models, "lora").map((m) => ({
    name: stem(m.fileName),
    alias: stem(m.fileName),
    path: `${modelFolder(m)}/${m.fileName}`,
    metadata: {},
  }));
  return merged(reported, own, (item) => stringField(item, "name"));
}

/** `GET /sdapi/v1/sd-vae`: `SDVaeItem {model_name, filename}`; model_name is the file's name, as `modules/sd_vae.py` keys `vae_dict`. */
export function vaeList(models: readonly ModelRow[], catalog: WebuiCatalog): unknown[] {
  const own = registered(models, "vae").map((m) => ({ model_name: m.fileName, filename: `${modelFolder(m)}/${m.fileName}` }));
  return merged(catalog["sd-vae"] ?? [], own, (item) => stringField(item, "model_name"));
}

/** The upscaler family sd-webui names (`UpscalerItem.model_name`) for each upscaler folder. */
const UPSCALER_FAMILY_BY_FOLDER: Readonly<Record<string, string>> = {
  "models/ESRGAN": "ESRGAN",
  "models/RealESRGAN": "RealESRGAN",
  "models/SwinIR": "SwinIR",
  "models/LDSR": "LDSR",
  "models/ScuNET": "ScuNET",
  "models/DAT": "DAT",
};

/** `GET /sdapi/v1/upscalers`: `UpscalerItem {name, model_name, model_path, model_url, scale}` (`modules/api/models.py`); a file's upscaler is named by its stem. */
export function upscalerList(models: readonly ModelRow[], catalog: WebuiCatalog): unknown[] {
  const own = registered(models, "upscaler").map((m) => ({
    name: stem(m.fileName),
    model_name: UPSCALER_FAMILY_BY_FOLDER[modelFolder(m)] ?? null,
    model_path: `${modelFolder(m)}/${m.fileName}`,
    model_url: null,
    // sd-webui's UpscalerData default scale (`modules/upscaler.py`).
    scale: 4,
  }));
  return merged(catalog.upscalers ?? [], own, (item) => stringField(item, "name"));
}

/**
 * `GET /sdapi/v1/embeddings`: `EmbeddingsResponse {loaded, skipped}` (`modules/api/models.py`).
 * A registered embedding no node has loaded yet is listed under `loaded` by its file's stem
 * (sd-webui's name for it) with what only loading it tells (`shape`, `vectors`, `step`) unknown.
 */
export function embeddingList(models: readonly ModelRow[], catalog: WebuiCatalog): { loaded: Record<string, unknown>; skipped: Record<string, unknown> } {
  const reported = catalog.embeddings ?? {};
  const loaded = { ...((reported.loaded as Record<string, unknown> | undefined) ?? {}) };
  const skipped = { ...((reported.skipped as Record<string, unknown> | undefined) ?? {}) };
  for (const m of registered(models, "embedding")) {
    const name = stem(m.fileName);
    if (!(name in loaded) && !(name in skipped)) loaded[name] = { step: null, sd_checkpoint: null, sd_checkpoint_name: null, shape: null, vectors: null };
  }
  return { loaded, skipped };
}

const HASH_SUFFIX = /\s*\[[0-9a-fA-F]{8,10}\]$/;

/**
 * `GET /controlnet/model_list`: `{model_list}` of `"<stem> [<hash>]"` (sd-webui-controlnet
 * `scripts/global_state.py` `get_all_models`). Its hash is sd-webui's legacy `model_hash` (a
 * slice of the file), which only a node can compute: a registered model no node reported yet is
 * listed by its stem, which ControlNet units accept too (`cn_models_names`).
 */
export function controlNetModelList(models: readonly ModelRow[], catalog: WebuiCatalog): { model_list: string[] } {
  const reported = catalog["controlnet-models"] ?? [];
  const names = new Set(reported.map((entry) => entry.replace(HASH_SUFFIX, "")));
  const own = registered(models, "controlnet")
    .map((m) => stem(m.fileName))
    .filter((name) => !names.has(name));
  return { model_list: [...reported, ...own] };
}
