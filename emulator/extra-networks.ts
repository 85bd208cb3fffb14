// The folders beside the checkpoint folder (sd-webui's models/VAE and models/Lora), listed
// afresh on every request, so their refresh routes have nothing to do.
import path from "node:path";
import { listModelFiles, stem } from "./model-files.ts";

const NETWORK_EXTENSIONS = [".safetensors", ".ckpt", ".pt"];

export async function listVaes(modelsDir: string): Promise<{ model_name: string; filename: string }[]> {
  const files = await listModelFiles(path.join(modelsDir, "..", "VAE"), NETWORK_EXTENSIONS);
  return files.map((filename) => ({ model_name: path.basename(filename), filename }));
}

export async function listLoras(modelsDir: string): Promise<{ name: string; alias: string; path: string; metadata: Record<string, never> }[]> {
  const files = await listModelFiles(path.join(modelsDir, "..", "Lora"), NETWORK_EXTENSIONS);
  return files.map((file) => ({ name: stem(file), alias: stem(file), path: file, metadata: {} }));
}
