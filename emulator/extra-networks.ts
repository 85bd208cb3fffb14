// The catalog reads of the add-on folders, in sd-webui's shapes: GET /sdapi/v1/loras
// (extensions-builtin/Lora/lora_script.py create_lora_json), /sdapi/v1/sd-vae (modules/api/api.py
// get_sd_vaes) and /sdapi/v1/embeddings (get_embeddings: {loaded, skipped}).
import type { AddonFolder } from "./addon-folder.ts";

/** The text-encoder width of an SD 1.x embedding vector. */
const EMBEDDING_VECTOR_WIDTH = 768;

export function listVaes(folder: AddonFolder): { model_name: string; filename: string }[] {
  return folder.list().map((file) => ({ model_name: file.basename, filename: file.filename }));
}

export function listLoras(folder: AddonFolder): { name: string; alias: string; path: string; metadata: Record<string, never> }[] {
  return folder.list().map((file) => ({ name: file.name, alias: file.name, path: file.filename, metadata: {} }));
}

/** The fake files carry no training checkpoint, so `sd_checkpoint` is null as for an embedding saved without one. */
export function listEmbeddings(folder: AddonFolder) {
  const loaded = Object.fromEntries(
    folder.list().map((file) => [
      file.name,
      {
        step: null,
        sd_checkpoint: null,
        sd_checkpoint_name: null,
        shape: EMBEDDING_VECTOR_WIDTH,
        vectors: 1,
      },
    ]),
  );
  return { loaded, skipped: {} };
}
