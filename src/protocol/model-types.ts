// Model types the registry knows, the names the original solution used for them, and the folder
// each type's files go to on a node, relative to sd-webui's data directory (`--data-dir`).
// Shared by the Worker (registry, submit) and the agent (where to put a downloaded file).
import { z } from "zod";

export const MODEL_TYPES = ["checkpoint", "vae", "lora", "controlnet", "embedding", "upscaler"] as const;
export const modelTypeSchema = z.enum(MODEL_TYPES);
export type ModelType = z.infer<typeof modelTypeSchema>;
/** Every type but checkpoint: files a task needs beside its checkpoint. */
export type AddonType = Exclude<ModelType, "checkpoint">;

/** The original solution's type names (and a few common synonyms) → ours. */
export const MODEL_TYPE_ALIASES: Readonly<Record<string, ModelType>> = {
  stableDiffusion: "checkpoint",
  sdVae: "vae",
  lora: "lora",
  lycoris: "lora",
  controlNet: "controlnet",
  textualInversion: "embedding",
  esrgan: "upscaler",
};

/** Our type for a type name as a client may send it (ours or the original's), or null. */
export function normalizeModelType(name: string): ModelType | null {
  if ((MODEL_TYPES as readonly string[]).includes(name)) return name as ModelType;
  return MODEL_TYPE_ALIASES[name] ?? null;
}

/** Where sd-webui (and its ControlNet extension) looks for each type, under its data directory. */
export const MODEL_FOLDER_BY_TYPE: Readonly<Record<ModelType, string>> = {
  checkpoint: "models/Stable-diffusion",
  vae: "models/VAE",
  lora: "models/Lora",
  controlnet: "models/ControlNet",
  embedding: "embeddings",
  upscaler: "models/ESRGAN",
};

/** sd-webui's upscaler folders (one per upscaler family); an upscaler model names one, ESRGAN by default. */
export const UPSCALER_FOLDERS = ["models/ESRGAN", "models/RealESRGAN", "models/SwinIR", "models/LDSR", "models/ScuNET", "models/DAT"] as const;

/** File extensions sd-webui loads model files from. */
export const MODEL_FILE_EXTENSIONS = [".safetensors", ".ckpt", ".pt", ".pth", ".bin"] as const;
