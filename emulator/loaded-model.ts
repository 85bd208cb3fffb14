// The checkpoint sd-webui has in memory. Loading a different one takes `loadMs`; callers hold
// the queue lock, as sd-webui's `reload_model_weights` runs under it.
import { setTimeout as sleep } from "node:timers/promises";
import type { CheckpointInfo, CheckpointRegistry } from "./checkpoints.ts";
import { pythonException } from "./errors.ts";
import type { OptionsStore } from "./options-store.ts";

export class LoadedModel {
  current: CheckpointInfo | null = null;
  /** Loads that cost `loadMs` (the no-delay load at start-up is not counted). */
  loads = 0;

  constructor(
    private readonly options: OptionsStore,
    private readonly loadMs: number,
    private readonly closing: AbortSignal,
  ) {}

  /** At start-up: the model is simply there, as if sd-webui had finished launching. */
  setInitial(info: CheckpointInfo): void {
    this.current = info;
    this.options.set("sd_checkpoint_hash", info.sha256);
  }

  /** Loads `info` unless it is already the loaded checkpoint. */
  async ensure(info: CheckpointInfo): Promise<void> {
    if (this.current?.filename === info.filename && this.current.sha256 === info.sha256) return;
    await sleep(this.loadMs, undefined, { signal: this.closing });
    this.current = info;
    this.loads++;
    this.options.set("sd_checkpoint_hash", info.sha256);
  }

  unload(): void {
    this.current = null;
  }
}

/** sd-webui's `select_checkpoint`: the checkpoint the settings name, else the first one found. */
export function selectCheckpoint(checkpoints: CheckpointRegistry, options: OptionsStore): CheckpointInfo {
  const setting = options.get("sd_model_checkpoint");
  const chosen = (typeof setting === "string" ? checkpoints.resolve(setting) : undefined) ?? checkpoints.list()[0];
  if (!chosen) {
    throw pythonException(
      "FileNotFoundError",
      `No checkpoints found. When searching for checkpoints, looked at:\n - directory ${checkpoints.modelsDir}\n` +
        "Can't run without a checkpoint. Find and place a .ckpt or .safetensors file into any of those locations.",
    );
  }
  return chosen;
}
