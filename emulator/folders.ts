// Where the emulator looks for each kind of model file: sd-webui's `--data-dir` layout
// (modules/paths_internal.py: models under DATA/models, embeddings under DATA/embeddings), with
// the checkpoint folder overridable as sd-webui's `--ckpt-dir`.
import path from "node:path";
import { MODEL_FOLDER_BY_TYPE, type ModelType, UPSCALER_FOLDERS } from "../src/protocol/model-types.ts";

export interface ModelFolders {
  readonly dataDir: string;
  readonly byType: Readonly<Record<ModelType, string>>;
  /** Every upscaler family's folder (ESRGAN, RealESRGAN, SwinIR, …). */
  readonly upscalers: readonly string[];
}

/**
 * `dataDir` is sd-webui's data directory; `checkpointDir` (--ckpt-dir, or the emulator's older
 * --models-dir) replaces DATA/models/Stable-diffusion. Without a data directory the checkpoint
 * folder is taken to sit in one (DATA/models/Stable-diffusion), as the older command line assumed.
 */
export function resolveFolders(dataDir: string | undefined, checkpointDir: string | undefined): ModelFolders {
  if (dataDir === undefined && checkpointDir === undefined) throw new Error("the emulator needs a data directory or a checkpoint folder");
  const data = path.resolve(dataDir ?? path.join(checkpointDir!, "..", ".."));
  const byType = Object.fromEntries(Object.entries(MODEL_FOLDER_BY_TYPE).map(([type, folder]) => [type, path.join(data, folder)])) as Record<ModelType, string>;
  if (checkpointDir !== undefined) byType.checkpoint = path.resolve(checkpointDir);
  return { dataDir: data, byType, upscalers: UPSCALER_FOLDERS.map((folder) => path.join(data, folder)) };
}
