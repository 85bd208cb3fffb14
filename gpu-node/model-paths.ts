// Where each model file the agent keeps lives on the node's disk.
//
// Checkpoints are kept one folder per file version: `<checkpoint folder>/<short hash>/<fileName>`
// (the short hash is sd-webui's, the first 10 hex digits of the sha256). A re-uploaded checkpoint
// (same file name, new sha256) is then a different path, which is what makes sd-webui really read
// the new weights, in spawn and attach mode alike: sd-webui v1.9/v1.10 `modules/sd_models.py`
// `reload_model_weights` returns without loading when `sd_model.sd_model_checkpoint ==
// checkpoint_info.filename` (the same full path), `modules/options.py` `Options.set` skips the
// onchange when the option already has the value, and `POST /sdapi/v1/reload-checkpoint` only
// moves the loaded model back to the GPU (`send_model_to_device`) without reading the file.
// sd-webui lists checkpoints recursively (`list_models` → `modelloader.load_models` walks
// subfolders) and names the infotext's `Model:` after the file's stem, so the subfolder changes
// nothing a user sees but the title ("<hash>/name.safetensors [hash]").
//
// Add-ons stay at `<data dir>/<folder>/<fileName>`: sd-webui re-reads them when they change
// (the Lora extension reloads a network whose file's mtime is newer, `networks.load_networks`).
import path from "node:path";
import { MODEL_FOLDER_BY_TYPE, UPSCALER_FOLDERS } from "../src/protocol/model-types.ts";
import type { AddonFile, ModelFile } from "../src/protocol/node.ts";

const SHORT_HASH_CHARS = 10;

/** sd-webui's short hash of a model file: the first 10 hex digits of its sha256. */
export function shortHash(sha256: string): string {
  return sha256.slice(0, SHORT_HASH_CHARS);
}

/** The checkpoint's path relative to the checkpoint folder, with "/" (as it shows in sd-webui's title). */
export function checkpointRelativePath(model: Pick<ModelFile, "fileName" | "sha256">): string {
  return `${shortHash(model.sha256)}/${model.fileName}`;
}

export function checkpointPath(checkpointsDir: string, model: Pick<ModelFile, "fileName" | "sha256">): string {
  return path.join(checkpointsDir, shortHash(model.sha256), model.fileName);
}

/** Every add-on type's folder; never the checkpoint folder, where sd-webui would list a file as a checkpoint. */
const ADDON_FOLDERS: ReadonlySet<string> = new Set([
  ...Object.entries(MODEL_FOLDER_BY_TYPE)
    .filter(([type]) => type !== "checkpoint")
    .map(([, folder]) => folder),
  ...UPSCALER_FOLDERS,
]);

/** Where an add-on goes under sd-webui's data directory; null for a folder sd-webui does not read. */
export function addonPath(dataDir: string, addon: Pick<AddonFile, "folder" | "fileName">): string | null {
  if (!ADDON_FOLDERS.has(addon.folder)) return null;
  return path.join(dataDir, ...addon.folder.split("/"), addon.fileName);
}

/** Whether sd-webui's file path (absolute, either separator) is `relative` under some folder. */
export function pathEndsWith(filePath: string, relative: string): boolean {
  const normalised = filePath.replaceAll("\\", "/");
  return normalised === relative || normalised.endsWith(`/${relative}`);
}
