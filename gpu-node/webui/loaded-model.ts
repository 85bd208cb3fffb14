// Which checkpoint and VAE sd-webui has loaded, as far as the agent knows — and the one place that
// changes sd-webui's loaded checkpoint and this knowledge of it. What is known holds for one
// sd-webui run (WebuiSupervisor.generation): a restarted sd-webui is read again. The agent is
// sd-webui's only client, so what it loaded into this very run is still loaded, and the common
// case (same checkpoint, same VAE) costs no call at all.
//
// A load is never taken on trust: sd-webui v1.9/v1.10 answers POST /sdapi/v1/options with 200 even
// when the load failed (`modules/options.py` `Options.set` catches the onchange's exception,
// restores the old value and returns False; `modules/sd_models.py` `reload_model_weights` prints
// "Failed to load checkpoint, restoring previous" and reloads the previous weights). So after
// every load the options are read again: `sd_model_checkpoint` must name the wanted file and
// `sd_checkpoint_hash` (set by `load_model_weights` to the file's sha256) must be its sha256.
//
// sd-webui also holds up to `sd_checkpoints_limit` − 1 other checkpoints in RAM, which it switches
// back to in a second or two instead of reading the file: the agent sets those settings
// (ram-checkpoints.ts) and, as sd-webui lists them nowhere, follows them by replaying each switch it
// asked for (held-models.ts).
import type { Logger } from "../logger.ts";
import { checkpointRelativePath, shortHash } from "../model-paths.ts";
import { ramCheckpointSettings } from "../ram-checkpoints.ts";
import { type WebuiClient, WebuiHttpError, type WebuiOptions } from "./client.ts";
import { HeldModels } from "./held-models.ts";
import type { OutputTail } from "./output-tail.ts";

/** One of the agent's checkpoints, as it is loaded into sd-webui. */
export interface LoadedCheckpoint {
  name: string;
  fileName: string;
  sha256: string;
}

/** The agent's checkpoint at a path relative to the checkpoint folder ("<short hash>/<file>"), if any. */
export type CheckpointLookup = (relativePath: string) => LoadedCheckpoint | undefined;

/** sd-webui does not list a checkpoint file the agent has put in its folder. */
export class CheckpointNotListedError extends Error {
  override name = "CheckpointNotListedError";
}

/** sd-webui did not load the checkpoint, or ran on other weights; `reason` is sd-webui's own account when it gave one. */
export class CheckpointLoadError extends Error {
  override name = "CheckpointLoadError";
  constructor(
    readonly kind: "load_failed" | "wrong_weights",
    readonly checkpoint: LoadedCheckpoint,
    readonly reason: string,
  ) {
    super(`${kind === "load_failed" ? "sd-webui could not load" : "sd-webui did not run on"} checkpoint ${checkpoint.name}: ${reason}`);
  }
}

export interface LoadContext {
  signal: AbortSignal;
  log: Logger;
  /** What the sd-webui the agent started prints (null when attached): where sd-webui says why a load failed. */
  printed: OutputTail | null;
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
  /** The path of the checkpoint sd-webui's options name, ours or not. */
  private loadedPath: string | null = null;
  /** The models sd-webui holds in run `heldRun`. */
  private readonly held = new HeldModels();
  private heldRun = -1;
  /** sd-webui's `sd_checkpoints_limit` as last read. */
  private limit = 1;

  /**
   * `checkpointsDir`: the folder sd-webui should find the agent's checkpoints in (for error
   * messages). `ramCheckpoints`: how many checkpoints sd-webui should hold in RAM besides the
   * loaded one, asked before each load.
   */
  constructor(
    private readonly checkpointsDir: string,
    private readonly lookup: CheckpointLookup,
    private readonly ramCheckpoints: () => number,
  ) {}

  get checkpoint(): LoadedCheckpoint | null {
    return this.loaded;
  }

  /** What heartbeats and claims report as loaded. */
  get checkpointName(): string | null {
    return this.loaded?.name ?? null;
  }

  /**
   * After every sd-webui (re)start, and whenever what it has loaded is in doubt: reads which
   * checkpoint it has (one of ours when the lookup knows the file and the hash agrees) and its VAE.
   * The first read also learns sd-webui's default VAE.
   */
  async readFrom(client: WebuiClient, run: number): Promise<void> {
    this.record(await client.getOptions(), run);
  }

  /** Names of our checkpoints that sd-webui holds in RAM besides the loaded one, most recently used first. */
  get ramCheckpointNames(): string[] {
    if (this.run === -1 || this.heldRun !== this.run) return [];
    const names = this.held.besides(this.loadedPath).flatMap((relative) => this.lookup(relative)?.name ?? []);
    // An older version of the loaded checkpoint (still on disk until the new one is confirmed) is not it.
    return [...new Set(names)].filter((name) => name !== this.loaded?.name);
  }

  /** After every sd-webui (re)start: sets how many checkpoints it holds in RAM (when its settings say otherwise). */
  async holdInRam(client: WebuiClient, signal?: AbortSignal): Promise<void> {
    const change = this.ramSettingsChange(await client.getOptions());
    if (Object.keys(change).length > 0) await client.setOptions(change, signal);
  }

  /** sd-webui's state could not be read: no checkpoint is taken to be loaded. */
  forget(): void {
    this.loaded = null;
    this.run = -1;
  }

  /**
   * Makes sd-webui run `model` with `vae` (sd-webui's default VAE when null): loads the checkpoint
   * through POST /sdapi/v1/options unless it is loaded already, after refresh-checkpoints so a
   * file just downloaded is listed, then confirms sd-webui really has it. Throws
   * CheckpointLoadError (with the node's state corrected) when it does not.
   */
  async load(client: WebuiClient, run: number, model: LoadedCheckpoint, vae: string | null, context: LoadContext): Promise<void> {
    const wantedVae = vae ?? this.defaultVae;
    const known = this.run === run;
    if (known && this.loaded?.fileName === model.fileName && this.loaded.sha256 === model.sha256 && this.vae === wantedVae) return;
    const options = await client.getOptions();
    const change: Record<string, unknown> = {};
    const wanted = checkpointRelativePath(model);
    if (titlePath(options.sd_model_checkpoint) !== wanted) {
      await client.refreshCheckpoints();
      const entry = (await client.sdModels()).find((candidate) => titlePath(candidate.filename) === wanted || titlePath(candidate.title) === wanted);
      if (!entry) {
        throw new CheckpointNotListedError(`sd-webui does not list ${wanted} after refresh-checkpoints; is ${this.checkpointsDir} its checkpoint folder?`);
      }
      change.sd_model_checkpoint = entry.title;
    }
    if ((options.sd_vae ?? null) !== wantedVae) change.sd_vae = wantedVae;
    if (Object.keys(change).length === 0) {
      // The option names the file but other weights are in memory (a request's override_settings
      // loaded them and restored only the option): setting the same value again is a no-op
      // (Options.set), but the next generation loads it (processing.process_images calls
      // sd_models.reload_model_weights, which loads when the path differs). The result's hash confirms it.
      if (!hashAgrees(options, model)) context.log.info(`sd-webui holds other weights than ${wanted}; its next generation loads them`);
      this.record(options, run);
      return;
    }
    const loading = change.sd_model_checkpoint !== undefined;
    if (loading) context.log.info(`loading checkpoint ${String(change.sd_model_checkpoint)}${change.sd_vae ? ` with VAE ${String(change.sd_vae)}` : ""}`);
    // Unknown until sd-webui has taken the change.
    this.forget();
    const mark = context.printed?.mark() ?? 0;
    try {
      // The RAM settings go first, so that this very switch holds what sd-webui should hold (set_config
      // sets the options in the request's order; a lowered limit unloads the models over it at this switch).
      await client.setOptions(loading ? { ...this.ramSettingsChange(options), ...change } : change, context.signal);
    } catch (error) {
      // sd-webui refuses a title it does not know (500 "model ... not found"); anything else is not about the file.
      if (!(loading && error instanceof WebuiHttpError)) throw error;
      await this.readFrom(client, run);
      throw new CheckpointLoadError("load_failed", model, error.message);
    }
    const after = await client.getOptions();
    this.record(after, run);
    if (loading && holds(after, model)) this.held.switchedTo(wanted, this.limit);
    if (loading && !holds(after, model)) {
      this.held.failedSwitchTo(wanted, this.limit);
      const said = loadFailureReason(context.printed?.since(mark) ?? []);
      const kept = after.sd_model_checkpoint ? `sd-webui kept ${after.sd_model_checkpoint} loaded` : "sd-webui has no checkpoint loaded";
      throw new CheckpointLoadError("load_failed", model, said ?? `${kept} after being asked for ${String(change.sd_model_checkpoint)}`);
    }
  }

  /** A generation in sd-webui run `run` answered with `model`'s hash: that is what it has loaded. */
  ranOn(run: number, model: LoadedCheckpoint): void {
    if (this.run !== run) return;
    this.loaded = { name: model.name, fileName: model.fileName, sha256: model.sha256 };
    this.loadedPath = checkpointRelativePath(model);
    // The generation itself switched when the option named the file but other weights were loaded.
    if (this.heldRun === run) this.held.switchedTo(this.loadedPath, this.limit);
  }

  /** The RAM settings sd-webui should have and does not. */
  private ramSettingsChange(options: WebuiOptions): Record<string, unknown> {
    const wanted = ramCheckpointSettings(this.ramCheckpoints());
    return Object.fromEntries(Object.entries(wanted).filter(([key, value]) => options[key] !== value));
  }

  /** Takes sd-webui's options as the truth about what it has loaded. */
  private record(options: WebuiOptions, run: number): void {
    if (!this.defaultVaeKnown) {
      this.defaultVae = options.sd_vae ?? "Automatic";
      this.defaultVaeKnown = true;
    }
    const relative = titlePath(options.sd_model_checkpoint);
    const entry = relative ? this.lookup(relative) : undefined;
    this.loaded = entry && hashAgrees(options, entry) ? { name: entry.name, fileName: entry.fileName, sha256: entry.sha256 } : null;
    this.loadedPath = relative;
    this.vae = options.sd_vae ?? null;
    this.run = run;
    const limit = Number(options.sd_checkpoints_limit);
    this.limit = Number.isFinite(limit) ? limit : 1;
    if (this.heldRun !== run) {
      // A new run holds only what it loaded at start.
      this.held.reset(relative);
      this.heldRun = run;
    }
  }
}

/** Whether sd-webui's options say `model`'s file version is loaded. */
function holds(options: WebuiOptions, model: LoadedCheckpoint): boolean {
  return titlePath(options.sd_model_checkpoint) === checkpointRelativePath(model) && hashAgrees(options, model);
}

/** sd_checkpoint_hash, when sd-webui reports it, is the loaded file's sha256. */
function hashAgrees(options: WebuiOptions, model: LoadedCheckpoint): boolean {
  const hash = options.sd_checkpoint_hash;
  return !hash || hash === model.sha256;
}

/**
 * The last two segments of a checkpoint title or path, with "/" — where the agent keeps a
 * checkpoint version ("<short hash>/<file>"): "abc/v1-5.safetensors [6ce0161689]" → "abc/v1-5.safetensors".
 */
export function titlePath(title: string | null | undefined): string | null {
  if (!title) return null;
  const segments = title
    .replace(/\s*\[[0-9a-fA-F]+\]\s*$/, "")
    .split(/[\\/]/)
    .filter(Boolean);
  return segments.length > 0 ? segments.slice(-2).join("/") : null;
}

const LOAD_FAILED_LINE = "Failed to load checkpoint, restoring previous";
/** A Python exception line: "RuntimeError: …", "safetensors_rust.SafetensorError: …". */
const EXCEPTION_LINE = /^[A-Za-z_][\w.]*(Error|Exception)\b.*:/;

/**
 * sd-webui's own words for a failed load, from what it printed: its "Failed to load checkpoint,
 * restoring previous" line (sd_models.reload_model_weights) with the exception line nearest to it.
 * A file safetensors cannot read fails before that line is printed: then the exception alone
 * (from the traceback `errors.display` prints for the failed option change).
 */
export function loadFailureReason(lines: readonly string[]): string | null {
  const at = lines.findLastIndex((line) => line.includes(LOAD_FAILED_LINE));
  if (at < 0) {
    return lines.findLast((line) => EXCEPTION_LINE.test(line.trim()))?.trim() ?? null;
  }
  const before = lines
    .slice(0, at)
    .findLast((line) => EXCEPTION_LINE.test(line.trim()))
    ?.trim();
  const after = lines
    .slice(at + 1)
    .find((line) => EXCEPTION_LINE.test(line.trim()))
    ?.trim();
  const exception = before ?? after;
  return exception ? `${LOAD_FAILED_LINE}: ${exception}` : LOAD_FAILED_LINE;
}

/**
 * Whether a generation's `info` names `model`'s weights: sd-webui's `sd_model_hash` is the loaded
 * file's short hash (`modules/processing.py` Processed.js; `sd_models.CheckpointInfo.calculate_shorthash`).
 * Returns what is wrong, or null.
 */
export function resultHashProblem(info: unknown, model: LoadedCheckpoint): string | null {
  const hash = info && typeof info === "object" ? (info as { sd_model_hash?: unknown }).sd_model_hash : undefined;
  if (typeof hash !== "string" || hash === "") return "sd-webui's answer does not say which weights made it (no sd_model_hash in info)";
  if (hash.toLowerCase() !== shortHash(model.sha256)) return `sd-webui made the images with model hash ${hash}, not ${shortHash(model.sha256)}`;
  return null;
}
