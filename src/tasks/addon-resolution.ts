// Which of a request's add-on names (./addon-references.ts) are registered models, which are built
// into the nodes' sd-webui (their reported catalogs), and which are neither. Pure.
import type { ModelRow } from "../db/models";
import { type AddonType, normalizeModelType } from "../protocol/model-types";
import type { WebuiCatalog } from "../protocol/node";
import { LATENT_UPSCALE_MODE_NAMES } from "../protocol/sdwebui-defaults";
import type { AddonReference } from "./addon-references";

/**
 * Upscalers every sd-webui has whatever its folders hold: `modules/upscaler.py` (UpscalerNone,
 * UpscalerLanczos, UpscalerNearest) and `shared.latent_upscale_modes` (`modules/shared.py`) for hr_upscaler.
 */
const ALWAYS_BUILT_IN_UPSCALERS = ["None", "Lanczos", "Nearest", ...LATENT_UPSCALE_MODE_NAMES];

export interface ResolvedAddons {
  /** Registered add-ons the request needs, each once. */
  registered: ModelRow[];
  /** Names neither registered nor built in. */
  missing: AddonReference[];
  /** Registered, but with no file yet. */
  notReady: Array<{ ref: AddonReference; model: ModelRow }>;
}

function stem(fileName: string): string {
  return fileName.replace(/\.[^.]+$/, "");
}

function stringsOf(items: readonly unknown[] | undefined, keys: readonly string[]): string[] {
  const names: string[] = [];
  for (const item of items ?? []) {
    if (typeof item === "string") names.push(item);
    else if (item && typeof item === "object") {
      for (const key of keys) {
        const value = (item as Record<string, unknown>)[key];
        if (typeof value === "string") names.push(value);
      }
    }
  }
  return names;
}

/** The names the nodes' sd-webui know for each add-on type without any registered file. */
export function builtInAddonNames(catalog: WebuiCatalog): Record<AddonType, Set<string>> {
  return {
    lora: new Set(stringsOf(catalog.loras, ["name", "alias"])),
    vae: new Set(stringsOf(catalog["sd-vae"], ["model_name"])),
    controlnet: new Set(stringsOf(catalog["controlnet-models"], []).map((m) => m.replace(/\s*\[[0-9a-fA-F]{8,10}\]$/, ""))),
    embedding: new Set(Object.keys((catalog.embeddings?.loaded as Record<string, unknown> | undefined) ?? {})),
    upscaler: new Set([...ALWAYS_BUILT_IN_UPSCALERS, ...stringsOf(catalog.upscalers, ["name"]), ...stringsOf(catalog["latent-upscale-modes"], ["name"])]),
  };
}

/** The registered model of the reference's type it names: by name, file name or file stem. */
export function findRegisteredAddon(models: readonly ModelRow[], ref: AddonReference): ModelRow | null {
  const ofType = models.filter((m) => normalizeModelType(m.type) === ref.type);
  return ofType.find((m) => m.name === ref.name) ?? ofType.find((m) => m.fileName === ref.name) ?? ofType.find((m) => stem(m.fileName) === ref.name) ?? null;
}

export function resolveAddons(refs: readonly AddonReference[], models: readonly ModelRow[], catalog: WebuiCatalog): ResolvedAddons {
  const builtIn = builtInAddonNames(catalog);
  const resolved: ResolvedAddons = { registered: [], missing: [], notReady: [] };
  for (const ref of refs) {
    const model = findRegisteredAddon(models, ref);
    if (!model) {
      if (!builtIn[ref.type].has(ref.name)) resolved.missing.push(ref);
    } else if (!model.sha256) resolved.notReady.push({ ref, model });
    else if (!resolved.registered.some((m) => m.name === model.name)) resolved.registered.push(model);
  }
  return resolved;
}

/** Registered embeddings are found in prompts by their file's stem: sd-webui's name for them. */
export function embeddingNames(models: readonly ModelRow[]): string[] {
  return [...new Set(models.filter((m) => normalizeModelType(m.type) === "embedding").map((m) => stem(m.fileName)))];
}

/** The name sd-webui on a node knows a registered add-on's file by: a VAE's file name, else the file's stem. */
export function webuiAddonName(model: ModelRow): string {
  return normalizeModelType(model.type) === "vae" ? model.fileName : stem(model.fileName);
}
