// The checkpoint sd-webui has in memory, loaded as modules/sd_models.py `reload_model_weights`
// does (v1.10): nothing is read when the loaded model already comes from the same file path — so
// a file changed in place keeps its old weights and hash until another path is loaded — and a
// file that cannot be read as a checkpoint fails the load, keeps the previous weights and prints
// sd-webui's lines. Callers hold the queue lock, as sd-webui's `reload_model_weights` runs under it.
//
// Checkpoints held in RAM, as v1.10 keeps them (modules/sd_models.py, options in
// modules/shared_options.py):
// - `sd_checkpoints_limit` (int, default 1): `model_data.loaded_sd_models`, whole models, most
//   recently used first. `reuse_model_from_already_loaded` switches to one of them without reading
//   the file ("Using already loaded model …"; the others sit in RAM with `sd_checkpoints_keep_in_cpu`,
//   default True, else in VRAM); below the limit a new model is created, at the limit the least
//   recently used one is reused for the new weights; models over the limit (after the setting was
//   lowered) are unloaded at the next switch.
// - `sd_checkpoint_cache` (int, default 0; "obsolete" in the settings): `checkpoints_loaded`, state
//   dicts in LRU order counting the loaded one, trimmed to the setting after every load. It is keyed
//   by CheckpointInfo objects, which POST /refresh-checkpoints (`list_models`) replaces, so a
//   refresh empties it in effect; the emulator keys it by its registry's objects likewise.
// Nothing in sd-webui's API lists what is held. A load from the file takes `loadMs`, a switch to a
// checkpoint held in RAM `ramLoadMs`.
import { setTimeout as sleep } from "node:timers/promises";
import type { CheckpointInfo, CheckpointRegistry } from "./checkpoints.ts";
import { pythonException, type WebuiError } from "./errors.ts";
import { readModelFileKind } from "./model-file-kind.ts";
import type { OptionsStore } from "./options-store.ts";

/** The weights in memory: a copy of the checkpoint's details as they were when it was loaded. */
export type LoadedCheckpoint = Readonly<Pick<CheckpointInfo, "title" | "name" | "modelName" | "stem" | "filename" | "sha256" | "shorthash">>;

export class LoadedModel {
  current: LoadedCheckpoint | null = null;
  /** Loads from the file, which cost `loadMs` (the no-delay load at start-up is not counted). */
  loads = 0;
  /** Switches to a checkpoint held in RAM, which cost `ramLoadMs`. */
  ramLoads = 0;
  /** `model_data.loaded_sd_models`: the loaded model first, then the others most recently used first. */
  private models: LoadedCheckpoint[] = [];
  /** `checkpoints_loaded`: least recently used first. */
  private stateDicts: CheckpointInfo[] = [];

  constructor(
    private readonly options: OptionsStore,
    private readonly checkpoints: CheckpointRegistry,
    private readonly delays: { loadMs: number; ramLoadMs: number },
    private readonly closing: AbortSignal,
  ) {}

  /** At start-up: the model is simply there, as if sd-webui had finished launching (`load_model`). */
  async setInitial(info: CheckpointInfo): Promise<void> {
    await this.checkpoints.markHashed(info);
    this.current = { ...info };
    this.models = [this.current];
    this.cacheStateDict(info);
    this.options.set("sd_checkpoint_hash", info.sha256);
  }

  /** Titles of the checkpoints held in RAM besides the loaded one, most recently used first (for tests). */
  heldInRam(): string[] {
    const held = [...this.models.slice(1).map((model) => model.title), ...this.stateDicts.toReversed().map((info) => info.title)];
    return [...new Set(held)].filter((title) => title !== this.current?.title);
  }

  /**
   * Loads `info` unless the model in memory comes from the same path. Throws sd-webui's
   * exception (after printing what it prints) when the file is not a readable checkpoint; the
   * previous weights stay.
   */
  async ensure(info: CheckpointInfo): Promise<void> {
    if (this.current?.filename === info.filename) return;
    const limit = this.numberOption("sd_checkpoints_limit");
    const models = this.modelsWithin(limit, info);
    this.models = models;
    const held = models.find((model) => model.filename === info.filename);
    if (held) {
      await sleep(this.delays.ramLoadMs, undefined, { signal: this.closing });
      this.switchTo(held, [held, ...models.filter((model) => model !== held)]);
      this.ramLoads++;
      console.log(`Using already loaded model ${held.title}: done in 0.1s (emulated)`);
      return;
    }
    // Below the limit a new model is created; at it the least recently used one takes the weights.
    const kept = limit > 1 && models.length < limit ? models : models.slice(0, -1);
    const cached = this.stateDicts.includes(info);
    await sleep(cached ? this.delays.ramLoadMs : this.delays.loadMs, undefined, { signal: this.closing });
    const failure = cached ? null : await loadFailure(info);
    if (failure) throw failure;
    await this.checkpoints.markHashed(info);
    console.log(`Loading weights [${info.shorthash}] from ${cached ? "cache" : info.filename}`);
    if (cached) this.ramLoads++;
    else this.loads++;
    const loaded = { ...info };
    this.switchTo(loaded, [loaded, ...kept]);
    this.cacheStateDict(info);
    console.log("Weights loaded in 0.1s (emulated).");
  }

  /** The loaded models after `reuse_model_from_already_loaded` dropped those over `limit` (never `wanted`). */
  private modelsWithin(limit: number, wanted: CheckpointInfo): LoadedCheckpoint[] {
    const models = [...this.models];
    for (let i = models.length - 1; i >= 0; i--) {
      const model = models[i]!;
      if (model.filename === wanted.filename || !(models.length > limit && limit > 0)) continue;
      console.log(`Unloading model ${models.length} over the limit of ${limit}: ${model.title}`);
      models.splice(i, 1);
    }
    return models;
  }

  private switchTo(model: LoadedCheckpoint, models: LoadedCheckpoint[]): void {
    this.current = model;
    this.models = models;
    this.options.set("sd_checkpoint_hash", model.sha256);
  }

  /** `load_model_weights`: caches the state dict when the cache is on, then trims it to the setting. */
  private cacheStateDict(info: CheckpointInfo): void {
    const size = this.numberOption("sd_checkpoint_cache");
    const others = this.stateDicts.filter((entry) => entry !== info);
    this.stateDicts = size > 0 ? [...others, info] : others;
    while (this.stateDicts.length > size) this.stateDicts.shift();
  }

  private numberOption(key: string): number {
    const value = Number(this.options.get(key));
    return Number.isFinite(value) ? value : 0;
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
