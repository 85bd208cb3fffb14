// The checkpoint folder as sd-webui sees it: every .safetensors/.ckpt file (subfolders too), and
// the aliases by which a request or setting may name it.
import path from "node:path";
import type { HashCache } from "./hash-cache.ts";
import { type FileHashes, listModelFiles, stem } from "./model-files.ts";

const CHECKPOINT_EXTENSIONS = [".safetensors", ".ckpt"];
const VAE_SUFFIXES = [".vae.safetensors", ".vae.ckpt"];

export interface CheckpointInfo {
  /** `"<name> [<shorthash>]"` once hashed, else `"<name>"`: what the `sd_model_checkpoint` setting holds. */
  title: string;
  /** Path relative to the models folder, with extension. */
  name: string;
  /** `name` without extension, folder separators replaced by `_`. */
  modelName: string;
  /** The file's stem (sd-webui's `name_for_extra`), the infotext's `Model:`. */
  stem: string;
  filename: string;
  /** The file's real sha256 (what a load computes); sd-webui shows it only once hashed. */
  sha256: string;
  /** First 10 hex digits of sha256. */
  shorthash: string;
  /** Whether sd-webui knows the hash (computed at a load, or its cache still valid). */
  hashKnown: boolean;
  /** sd-webui's old 8-hex hash (sha256 of 64 KiB at offset 1 MiB). */
  legacyHash: string;
}

/** One item of `GET /sdapi/v1/sd-models`. */
export interface SdModelItem {
  title: string;
  model_name: string;
  hash: string | null;
  sha256: string | null;
  filename: string;
  config: null;
}

/**
 * modules/sd_models.py `CheckpointInfo`: the title carries ` [shorthash]` only once the file's
 * sha256 is known — from the hash cache (valid while the file's mtime is unchanged) or computed by
 * `calculate_shorthash` when the checkpoint is loaded — so a file that was never loaded is listed
 * without a hash and cannot be named by it.
 */
export class CheckpointRegistry {
  private checkpoints: CheckpointInfo[] = [];
  private aliases = new Map<string, CheckpointInfo>();
  constructor(
    readonly modelsDir: string,
    private readonly hashes: FileHashes,
    private readonly hashCache: HashCache,
  ) {}

  /** Rescans the folder (the emulator hashes every file for itself; sd-webui shows only cached hashes). */
  async refresh(): Promise<void> {
    const files = await listModelFiles(this.modelsDir, CHECKPOINT_EXTENSIONS, VAE_SUFFIXES);
    const found: CheckpointInfo[] = [];
    for (const filename of files) {
      const hashes = await this.hashes.of(filename);
      if (!hashes) continue; // vanished between listing and hashing
      const name = path.relative(path.resolve(this.modelsDir), filename).split(path.sep).join("/");
      const hashKnown = (await this.hashCache.get(`checkpoint/${name}`, hashes.mtimeMs)) === hashes.sha256;
      const shorthash = hashes.sha256.slice(0, 10);
      found.push({
        title: hashKnown ? `${name} [${shorthash}]` : name,
        name,
        modelName: name.replace(/\.[^./]*$/, "").replaceAll("/", "_"),
        stem: stem(filename),
        filename,
        sha256: hashes.sha256,
        shorthash,
        hashKnown,
        legacyHash: hashes.legacyHash,
      });
    }
    found.sort((a, b) => a.title.toLowerCase().localeCompare(b.title.toLowerCase()));
    this.checkpoints = found;
    this.aliases = new Map();
    for (const info of found) this.register(info);
  }

  /** `calculate_shorthash` at load: the hash becomes known, the title gains it, and the hash aliases work. */
  async markHashed(info: CheckpointInfo): Promise<void> {
    const hashes = await this.hashes.of(info.filename);
    if (!hashes || hashes.sha256 !== info.sha256) return;
    await this.hashCache.set(`checkpoint/${info.name}`, hashes.mtimeMs, hashes.sha256);
    if (info.hashKnown) return;
    info.hashKnown = true;
    info.title = `${info.name} [${info.shorthash}]`;
    this.register(info);
  }

  private register(info: CheckpointInfo): void {
    const ids = [info.legacyHash, info.modelName, info.title, info.name, info.stem, `${info.name} [${info.legacyHash}]`];
    if (info.hashKnown) ids.push(info.shorthash, info.sha256, `${info.name} [${info.shorthash}]`);
    for (const id of ids) if (!this.aliases.has(id)) this.aliases.set(id, info);
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
      hash: info.hashKnown ? info.shorthash : null,
      sha256: info.hashKnown ? info.sha256 : null,
      filename: info.filename,
      config: null,
    };
  }
}
