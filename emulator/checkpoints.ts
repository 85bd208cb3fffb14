// The checkpoint folder as sd-webui sees it: every .safetensors/.ckpt file, hashed (sha256,
// streamed) when scanned, and the aliases by which a request or setting may name it.
import path from "node:path";
import { type FileHashes, listModelFiles } from "./model-files.ts";

const CHECKPOINT_EXTENSIONS = [".safetensors", ".ckpt"];
const VAE_SUFFIXES = [".vae.safetensors", ".vae.ckpt"];

export interface CheckpointInfo {
  /** `"<name> [<shorthash>]"`, what the `sd_model_checkpoint` setting holds. */
  title: string;
  /** Path relative to the models folder, with extension. */
  name: string;
  /** `name` without extension, folder separators replaced by `_`. */
  modelName: string;
  filename: string;
  sha256: string;
  /** First 10 hex digits of sha256. */
  shorthash: string;
  /** sd-webui's old 8-hex hash (sha256 of 64 KiB at offset 1 MiB). */
  legacyHash: string;
}

/** One item of `GET /sdapi/v1/sd-models`. */
export interface SdModelItem {
  title: string;
  model_name: string;
  hash: string;
  sha256: string;
  filename: string;
  config: null;
}

export class CheckpointRegistry {
  private checkpoints: CheckpointInfo[] = [];
  private aliases = new Map<string, CheckpointInfo>();
  constructor(
    readonly modelsDir: string,
    private readonly hashes: FileHashes,
  ) {}

  /** Rescans the folder; files whose size and mtime are unchanged are not hashed again. */
  async refresh(): Promise<void> {
    const files = await listModelFiles(this.modelsDir, CHECKPOINT_EXTENSIONS, VAE_SUFFIXES);
    const found: CheckpointInfo[] = [];
    for (const filename of files) {
      const hashes = await this.hashes.of(filename);
      if (!hashes) continue; // vanished between listing and hashing
      const name = path.relative(path.resolve(this.modelsDir), filename).split(path.sep).join("/");
      const shorthash = hashes.sha256.slice(0, 10);
      found.push({
        title: `${name} [${shorthash}]`,
        name,
        modelName: name.replace(/\.[^./]*$/, "").replaceAll("/", "_"),
        filename,
        sha256: hashes.sha256,
        shorthash,
        legacyHash: hashes.legacyHash,
      });
    }
    found.sort((a, b) => a.title.toLowerCase().localeCompare(b.title.toLowerCase()));
    this.checkpoints = found;
    this.aliases = new Map();
    for (const info of found) {
      const ids = [
        info.legacyHash,
        info.modelName,
        info.title,
        info.name,
        path.basename(info.name, path.extname(info.name)),
        `${info.name} [${info.legacyHash}]`,
        info.shorthash,
        info.sha256,
      ];
      for (const id of ids) if (!this.aliases.has(id)) this.aliases.set(id, info);
    }
  }

  list(): readonly CheckpointInfo[] {
    return this.checkpoints;
  }

  /** Exact alias lookup, as sd-webui's `checkpoint_aliases`. */
  resolve(alias: string): CheckpointInfo | undefined {
    return this.aliases.get(alias);
  }

  static toSdModelItem(info: CheckpointInfo): SdModelItem {
    return {
      title: info.title,
      model_name: info.modelName,
      hash: info.shorthash,
      sha256: info.sha256,
      filename: info.filename,
      config: null,
    };
  }
}
