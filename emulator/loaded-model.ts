// The checkpoint sd-webui has in memory, loaded as modules/sd_models.py `reload_model_weights`
// does (v1.10): nothing is read when the loaded model already comes from the same file path — so
// a file changed in place keeps its old weights and hash until another path is loaded — and a
// file that cannot be read as a checkpoint fails the load, keeps the previous weights and prints
// sd-webui's lines. Loading takes `loadMs`; callers hold the queue lock, as sd-webui's
// `reload_model_weights` runs under it.
import { setTimeout as sleep } from "node:timers/promises";
import type { CheckpointInfo, CheckpointRegistry } from "./checkpoints.ts";
import { pythonException, type WebuiError } from "./errors.ts";
import { readModelFileKind } from "./model-file-kind.ts";
import type { OptionsStore } from "./options-store.ts";

/** The weights in memory: a copy of the checkpoint's details as they were when it was loaded. */
export type LoadedCheckpoint = Readonly<Pick<CheckpointInfo, "title" | "name" | "modelName" | "stem" | "filename" | "sha256" | "shorthash">>;

export class LoadedModel {
  current: LoadedCheckpoint | null = null;
  /** Loads that cost `loadMs` (the no-delay load at start-up is not counted). */
  loads = 0;

  constructor(
    private readonly options: OptionsStore,
    private readonly checkpoints: CheckpointRegistry,
    private readonly loadMs: number,
    private readonly closing: AbortSignal,
  ) {}

  /** At start-up: the model is simply there, as if sd-webui had finished launching. */
  async setInitial(info: CheckpointInfo): Promise<void> {
    await this.checkpoints.markHashed(info);
    this.current = { ...info };
    this.options.set("sd_checkpoint_hash", info.sha256);
  }

  /**
   * Loads `info` unless the model in memory comes from the same path. Throws sd-webui's
   * exception (after printing what it prints) when the file is not a readable checkpoint; the
   * previous weights stay.
   */
  async ensure(info: CheckpointInfo): Promise<void> {
    if (this.current?.filename === info.filename) return;
    await sleep(this.loadMs, undefined, { signal: this.closing });
    const failure = await loadFailure(info);
    if (failure) throw failure;
    await this.checkpoints.markHashed(info);
    console.log(`Loading weights [${info.shorthash}] from ${info.filename}`);
    this.current = { ...info };
    this.loads++;
    this.options.set("sd_checkpoint_hash", info.sha256);
    console.log("Weights loaded in 0.1s (emulated).");
  }

  /**
   * v1.10's unload-checkpoint / reload-checkpoint only move the model to the CPU and back
   * (`send_model_to_cpu` / `send_model_to_device`): the weights stay and nothing is re-read.
   */
  onDevice = true;
}

/**
 * Why sd-webui would fail to load `info`: a file safetensors cannot read fails in
 * `get_checkpoint_state_dict` (before the try, so no "restoring previous" line); a readable file
 * that holds no checkpoint fails in `load_model_weights`, which prints "Failed to load
 * checkpoint, restoring previous" and reloads the previous weights.
 */
async function loadFailure(info: CheckpointInfo): Promise<WebuiError | null> {
  let kind: Awaited<ReturnType<typeof readModelFileKind>>;
  try {
    kind = await readModelFileKind(info.filename);
  } catch (error) {
    return pythonException("FileNotFoundError", `[Errno 2] No such file or directory: '${info.filename}' (${String(error)})`);
  }
  if (kind.kind === "unreadable") return pythonException(kind.errorName, kind.message);
  if (kind.type === "checkpoint") return null;
  console.log("Failed to load checkpoint, restoring previous");
  return pythonException(
    "RuntimeError",
    'Error(s) in loading state_dict for LatentDiffusion:\n\tMissing key(s) in state_dict: "model.diffusion_model.input_blocks.0.0.weight"',
  );
}

/**
 * sd-webui's `select_checkpoint`: the checkpoint the settings name, else the first one found
 * (printing that it falls back).
 */
export function selectCheckpoint(checkpoints: CheckpointRegistry, options: OptionsStore): CheckpointInfo {
  const setting = options.get("sd_model_checkpoint");
  const named = typeof setting === "string" ? checkpoints.resolve(setting) : undefined;
  if (named) return named;
  const fallback = checkpoints.list()[0];
  if (!fallback) {
    throw pythonException(
      "FileNotFoundError",
      `No checkpoints found. When searching for checkpoints, looked at:\n - directory ${checkpoints.modelsDir}\n` +
        "Can't run without a checkpoint. Find and place a .ckpt or .safetensors file into any of those locations.",
    );
  }
  if (typeof setting === "string") console.log(`Checkpoint ${setting} not found; loading fallback ${fallback.title}`);
  return fallback;
}
