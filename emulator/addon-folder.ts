// One add-on folder as sd-webui lists it (models/Lora, models/VAE, models/ControlNet,
// embeddings): every model file under it, recursively, as of the last refresh. A file copied in
// later is seen only after the matching refresh, as with sd-webui's own lists.
import path from "node:path";
import { MODEL_FILE_EXTENSIONS } from "../src/protocol/model-types.ts";
import { type FileHashes, listModelFiles, stem } from "./model-files.ts";

export interface AddonFile {
  /** File name without extension (how prompts, units and lists name it). */
  name: string;
  /** File name with extension (how the sd_vae option names a VAE). */
  basename: string;
  filename: string;
  sha256: string;
  /** sd-webui's old 8-hex model_hash, which ControlNet shows in its model names. */
  legacyHash: string;
}

export class AddonFolder {
  private files: AddonFile[] = [];

  constructor(
    readonly dir: string,
    private readonly hashes: FileHashes,
    private readonly extensions: readonly string[] = MODEL_FILE_EXTENSIONS,
  ) {}

  async refresh(): Promise<void> {
    const found: AddonFile[] = [];
    for (const filename of await listModelFiles(this.dir, this.extensions)) {
      const hashes = await this.hashes.of(filename);
      if (!hashes) continue;
      found.push({ name: stem(filename), basename: path.basename(filename), filename, sha256: hashes.sha256, legacyHash: hashes.legacyHash });
    }
    this.files = found;
  }

  list(): readonly AddonFile[] {
    return this.files;
  }

  /** Exact name (stem) lookup. */
  find(name: string): AddonFile | undefined {
    return this.files.find((file) => file.name === name);
  }
}
