// Which checkpoint and VAE sd-webui has loaded, as far as the agent knows — and the one place that
// changes sd-webui's loaded checkpoint and this knowledge of it. What is known holds for one
// sd-webui run (WebuiSupervisor.generation): a restarted sd-webui is read again. The agent is
// sd-webui's only client, so what it loaded into this very run is still loaded, and the common
// case (same checkpoint, same VAE) costs no call at all.
import type { Logger } from "../logger.ts";
import type { WebuiClient, WebuiOptions } from "./client.ts";

/** One of the agent's checkpoints, as it is loaded into sd-webui. */
export interface LoadedCheckpoint {
  name: string;
  fileName: string;
  sha256: string;
}

/** sd-webui does not list a checkpoint file the agent has put in its folder. */
export class CheckpointNotListedError extends Error {
  override name = "CheckpointNotListedError";
}

export class LoadedModel {
  /** The checkpoint sd-webui has loaded, when it is one of ours. */
  private loaded: LoadedCheckpoint | null = null;
  /** sd-webui's sd_vae as last read or set. */
  private vae: string | null = null;
  /** The sd-webui run `loaded` and `vae` were read or set in; they say nothing about another. -1: none. */
  private run = -1;
  /** sd_vae to go back to when a task names none: sd-webui's own, as first read. */
  private defaultVae = "Automatic";
  private defaultVaeKnown = false;

  /** `checkpointsDir`: the folder sd-webui should find the agent's checkpoints in (for error messages). */
  constructor(private readonly checkpointsDir: string) {}

  get checkpoint(): LoadedCheckpoint | null {
    return this.loaded;
  }

  /** What heartbeats and claims report as loaded. */
  get checkpointName(): string | null {
    return this.loaded?.name ?? null;
  }

  /**
   * After every sd-webui (re)start: reads which checkpoint it loaded (one of ours when `ownFile`
   * knows the file) and its VAE. The first read also learns sd-webui's default VAE.
   */
  async readFrom(client: WebuiClient, run: number, ownFile: (fileName: string) => LoadedCheckpoint | undefined): Promise<void> {
    const options = await client.getOptions();
    if (!this.defaultVaeKnown) {
      this.defaultVae = options.sd_vae ?? "Automatic";
      this.defaultVaeKnown = true;
    }
    const entry = ownFile(checkpointFileName(options.sd_model_checkpoint) ?? "");
    this.loaded = entry ? { name: entry.name, fileName: entry.fileName, sha256: entry.sha256 } : null;
    this.vae = options.sd_vae ?? null;
    this.run = run;
  }

  /** sd-webui's state could not be read: no checkpoint is taken to be loaded. */
  forget(): void {
    this.loaded = null;
  }

  /** `fileName` was (re)written on disk: whatever sd-webui loaded from it before is not that file. */
  fileReplaced(fileName: string): void {
    if (this.loaded?.fileName === fileName) this.loaded = null;
  }

  /**
   * Makes sd-webui run `model` with `vae` (sd-webui's default VAE when null): loads the checkpoint
   * through POST /sdapi/v1/options unless it is loaded already, after refresh-checkpoints so a
   * file just downloaded is listed.
   */
  async load(client: WebuiClient, run: number, model: LoadedCheckpoint, vae: string | null, context: { signal: AbortSignal; log: Logger }): Promise<void> {
    const wantedVae = vae ?? this.defaultVae;
    const known = this.run === run;
    if (known && this.loaded?.fileName === model.fileName && this.loaded.sha256 === model.sha256 && this.vae === wantedVae) return;
    const options = await client.getOptions();
    const change: Record<string, unknown> = {};
    if (!this.holds(options, model)) {
      await client.refreshCheckpoints();
      const entry = (await client.sdModels()).find((candidate) => baseName(candidate.filename) === model.fileName);
      if (!entry) {
        throw new CheckpointNotListedError(
          `sd-webui does not list ${model.fileName} after refresh-checkpoints; is ${this.checkpointsDir} its checkpoint folder?`,
        );
      }
      change.sd_model_checkpoint = entry.title;
    }
    if ((options.sd_vae ?? null) !== wantedVae) change.sd_vae = wantedVae;
    if (Object.keys(change).length > 0) {
      if (change.sd_model_checkpoint)
        context.log.info(`loading checkpoint ${String(change.sd_model_checkpoint)}${change.sd_vae ? ` with VAE ${String(change.sd_vae)}` : ""}`);
      // Unknown until sd-webui has taken the change.
      this.run = -1;
      if (change.sd_model_checkpoint) this.loaded = null;
      await client.setOptions(change, context.signal);
    }
    this.markLoaded(run, model, wantedVae);
  }

  /** Whether sd-webui's options name `model`'s file, and nothing says it is another version of it. */
  private holds(options: WebuiOptions, model: LoadedCheckpoint): boolean {
    return checkpointFileName(options.sd_model_checkpoint) === model.fileName && (this.loaded === null || this.loaded.sha256 === model.sha256);
  }

  private markLoaded(run: number, model: LoadedCheckpoint, vae: string): void {
    this.loaded = { name: model.name, fileName: model.fileName, sha256: model.sha256 };
    this.vae = vae;
    this.run = run;
  }
}

function baseName(filePath: string): string {
  return filePath.split(/[\\/]/).pop() ?? filePath;
}

/** "sub/v1-5.safetensors [6ce0161689]" → "v1-5.safetensors". */
export function checkpointFileName(title: string | null | undefined): string | null {
  if (!title) return null;
  return baseName(title.replace(/\s*\[[0-9a-fA-F]+\]\s*$/, ""));
}
