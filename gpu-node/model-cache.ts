// The node's model cache: every file the agent downloads through the Worker — checkpoints and
// add-ons alike, each at the path model-paths.ts gives it — resumed from `<file>.part` with a
// Range request, checked against its sha256, and kept under one disk budget by evicting the least
// recently used file, never one that is loaded or used by the task at hand. Calls for the same
// path run one after the other (a task that needs the file a prefetch is fetching waits for that
// download instead of writing the same `.part`). The agent's bookkeeping lives in
// `.sdgate-cache.json` in sd-webui's data directory; files it did not download are left alone.
import { createHash, type Hash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import type { ModelType } from "../src/protocol/model-types.ts";
import type { ModelFile } from "../src/protocol/node.ts";
import { isGatewayStatus, isTransientGatewayError } from "./gateway-client.ts";
import { errorMessage, type Logger } from "./logger.ts";
import { checkpointPath } from "./model-paths.ts";
import { formatBytes, ProgressBar, type ProgressOutput } from "./progress-bar.ts";

export const CACHE_INDEX_FILE = ".sdgate-cache.json";
export const PART_SUFFIX = ".part";
const DOWNLOAD_ATTEMPTS = 5;

const cacheEntrySchema = z.object({
  name: z.string(),
  type: z.string(),
  /** Absolute path of the file. */
  path: z.string(),
  sha256: z.string(),
  sizeBytes: z.number().int().nonnegative(),
  lastUsedAt: z.number(),
});
export type CacheEntry = z.infer<typeof cacheEntrySchema>;
const cacheIndexSchema = z.object({ version: z.literal(2), entries: z.array(cacheEntrySchema) });

/** The index of agents that kept checkpoints flat in their folder. */
const flatIndexSchema = z.object({
  version: z.literal(1),
  entries: z.array(z.object({ name: z.string(), fileName: z.string(), sha256: z.string(), sizeBytes: z.number(), lastUsedAt: z.number() })),
});

/** A model file and where it belongs on disk. */
export interface CachedFile extends ModelFile {
  type: ModelType;
  /** Absolute path the file is kept at. */
  path: string;
}

/** A model could not be made available; `retryable` says whether another attempt may succeed. */
export class ModelCacheError extends Error {
  override name = "ModelCacheError";
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

/** Opens the model's bytes from `offset` (the gateway client's modelFile). */
export type ModelSource = (name: string, offset: number, signal?: AbortSignal) => Promise<Response>;

export interface ModelCacheOptions {
  /** Where the index is kept (sd-webui's data directory). */
  dir: string;
  budgetBytes: number;
  source: ModelSource;
  logger: Logger;
  /** Where the download progress bar goes; null for none. */
  progressOutput: ProgressOutput | null;
  /** Base delay between download retries. */
  retryDelayMs?: number;
  /** The checkpoint folder: an index an older agent kept there (flat files) is taken over once. */
  checkpointsDir?: string;
}

export interface EnsureOptions {
  signal?: AbortSignal;
  /** Paths that must not be evicted (the loaded checkpoint, the task's other files). */
  protect?: Iterable<string>;
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  /** false: fail rather than evict, and leave older versions of the model on disk (a prefetch). Default true. */
  evict?: boolean;
}

type Progress = NonNullable<EnsureOptions["onProgress"]>;

/** An ensure() under way for a path, and the progress listeners of the calls waiting for it. */
interface PendingEnsure {
  model: CachedFile;
  settled: Promise<void>;
  listeners: Set<Progress>;
}

export class ModelCache {
  private entries = new Map<string, CacheEntry>();
  /** The index write in progress (writes never overlap). */
  private saving: Promise<void> = Promise.resolve();
  /** By target path. */
  private readonly pending = new Map<string, PendingEnsure>();
  private readonly log: Logger;

  constructor(private readonly options: ModelCacheOptions) {
    this.log = options.logger;
  }

  get dir(): string {
    return this.options.dir;
  }

  /** Loads the index and forgets entries whose file is gone or has another size. */
  async init(): Promise<void> {
    await fs.mkdir(this.options.dir, { recursive: true });
    let stored: CacheEntry[] = [];
    try {
      const text = await fs.readFile(this.indexPath(), "utf8");
      const parsed = cacheIndexSchema.safeParse(JSON.parse(text));
      if (parsed.success) stored = parsed.data.entries;
      else this.log.warn(`ignoring unreadable ${CACHE_INDEX_FILE}`);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") this.log.warn(`ignoring ${CACHE_INDEX_FILE}: ${errorMessage(error)}`);
    }
    this.entries.clear();
    for (const entry of stored) {
      const size = await fileSize(entry.path);
      if (size === entry.sizeBytes) this.entries.set(entry.path, entry);
    }
    if (this.options.checkpointsDir) await this.adoptFlatCheckpoints(this.options.checkpointsDir);
    await this.save();
  }

  /**
   * Agents before versioned checkpoint folders kept `<checkpoints>/<fileName>` with a version-1
   * index beside them: each such file moves to its version folder (a rename) and joins this cache.
   */
  private async adoptFlatCheckpoints(checkpointsDir: string): Promise<void> {
    const legacyIndex = path.join(checkpointsDir, CACHE_INDEX_FILE);
    if (legacyIndex === this.indexPath()) return;
    let entries: z.infer<typeof flatIndexSchema>["entries"];
    try {
      const parsed = flatIndexSchema.safeParse(JSON.parse(await fs.readFile(legacyIndex, "utf8")));
      if (!parsed.success) return;
      entries = parsed.data.entries;
    } catch {
      return;
    }
    for (const entry of entries) {
      const from = path.join(checkpointsDir, entry.fileName);
      if ((await fileSize(from)) !== entry.sizeBytes) continue;
      const to = checkpointPath(checkpointsDir, entry);
      await fs.mkdir(path.dirname(to), { recursive: true });
      await fs.rename(from, to);
      this.entries.set(to, { name: entry.name, type: "checkpoint", path: to, sha256: entry.sha256, sizeBytes: entry.sizeBytes, lastUsedAt: entry.lastUsedAt });
      this.log.info(`moved ${entry.fileName} to its version folder ${path.relative(checkpointsDir, to)}`);
    }
    await fs.rm(legacyIndex, { force: true });
  }

  /** Registered names of the checkpoints (or of the add-ons) on disk. */
  cachedNames(kind: "checkpoint" | "addon"): string[] {
    const names = [...this.entries.values()].filter((entry) => (entry.type === "checkpoint") === (kind === "checkpoint")).map((entry) => entry.name);
    return [...new Set(names)].sort();
  }

  /** Sizes of the checkpoint files on disk. */
  checkpointSizes(): number[] {
    return [...this.entries.values()].filter((entry) => entry.type === "checkpoint").map((entry) => entry.sizeBytes);
  }

  /** The first entry `matches` accepts. */
  find(matches: (entry: CacheEntry) => boolean): CacheEntry | undefined {
    return [...this.entries.values()].find(matches);
  }

  usedBytes(): number {
    let total = 0;
    for (const entry of this.entries.values()) total += entry.sizeBytes;
    return total;
  }

  /** Makes sure the model's file is on disk; downloads it when needed. */
  async ensure(model: CachedFile, options: EnsureOptions = {}): Promise<{ path: string; downloaded: boolean }> {
    assertPlainFileName(model.fileName);
    let earlier = this.pending.get(model.path);
    while (earlier) {
      // Whatever the earlier call's outcome (on disk, or stopped with a `.part` to resume), look again.
      await this.follow(earlier, options);
      earlier = this.pending.get(model.path);
    }
    const listeners = new Set<Progress>(options.onProgress ? [options.onProgress] : []);
    const onProgress: Progress = (done, total) => {
      for (const listener of listeners) listener(done, total);
    };
    const work = this.ensureNow(model, { ...options, onProgress });
    const settled = work.then(ignore, ignore).then(() => {
      this.pending.delete(model.path);
    });
    this.pending.set(model.path, { model, settled, listeners });
    return work;
  }

  /** Waits for another call's ensure() of the same path, passing its download progress on. */
  private async follow(earlier: PendingEnsure, options: EnsureOptions): Promise<void> {
    const { signal, onProgress } = options;
    signal?.throwIfAborted();
    if (onProgress) earlier.listeners.add(onProgress);
    try {
      await settledOrAborted(earlier.settled, signal);
    } finally {
      if (onProgress) earlier.listeners.delete(onProgress);
    }
  }

  /** Whether the model's file would fit the budget and the free disk beside the files kept, evicting none. */
  async fitsWithoutEvicting(model: CachedFile): Promise<boolean> {
    if (this.bytesOverBudget(model) > 0) return false;
    const { neededBytes, freeBytes } = await diskRoom(model);
    return freeBytes === null || freeBytes >= neededBytes;
  }

  private async ensureNow(model: CachedFile, options: EnsureOptions): Promise<{ path: string; downloaded: boolean }> {
    const target = model.path;
    const entry = this.entries.get(target);
    const onDisk = await fileSize(target);
    if (entry && entry.sha256 === model.sha256 && onDisk === entry.sizeBytes) {
      this.touch(entry, model.name);
      return { path: target, downloaded: false };
    }
    if (onDisk !== null && !entry) {
      // A file the agent did not download (placed by hand): use it if it is the right one.
      const digest = await hashFile(target);
      if (digest !== model.sha256) {
        throw new ModelCacheError(
          `${target} exists but is not model ${model.name} (sha256 ${digest}, expected ${model.sha256}); move it out of the models folder`,
          false,
        );
      }
      this.log.info(`adopting ${target} already on disk as ${model.name}`);
      this.touch({ name: model.name, type: model.type, path: target, sha256: model.sha256, sizeBytes: onDisk, lastUsedAt: 0 }, model.name);
      return { path: target, downloaded: false };
    }

    const protect = new Set(options.protect ?? []);
    protect.add(target);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const evict = options.evict ?? true;
    await this.makeRoom(model, protect, evict);
    await this.download(model, options);
    if (evict) await this.dropOtherVersions(model, protect);
    return { path: target, downloaded: true };
  }

  /**
   * A new version of a model is in use: its older files (kept at other paths) are of no more use.
   * A loaded checkpoint's file stays until another is loaded (sd-webui reloads it after a failed load).
   */
  async dropOtherVersions(model: CachedFile, protect: ReadonlySet<string> = new Set()): Promise<void> {
    for (const entry of [...this.entries.values()]) {
      if (entry.name !== model.name || entry.type !== model.type || entry.path === model.path || protect.has(entry.path)) continue;
      this.log.info(`removing the previous version of ${entry.name} (${entry.path})`);
      await this.remove(entry);
    }
  }

  private async remove(entry: CacheEntry): Promise<void> {
    await fs.rm(entry.path, { force: true });
    // A checkpoint's version folder goes with its only file.
    await fs.rmdir(path.dirname(entry.path)).catch(() => undefined);
    this.entries.delete(entry.path);
    await this.save();
  }

  /** Marks a file used now. The index is written behind the task: the time of use only orders evictions. */
  private touch(entry: CacheEntry, name: string): void {
    this.entries.set(entry.path, { ...entry, name, lastUsedAt: Date.now() });
    this.save().catch((error: unknown) => this.log.warn(`cannot write ${CACHE_INDEX_FILE}: ${errorMessage(error)}`));
  }

  /**
   * Evicts least recently used files until the model fits the budget (with `evict` false, fails
   * instead); fails when the disk has no room for it.
   */
  private async makeRoom(model: CachedFile, protect: Set<string>, evict: boolean): Promise<void> {
    const candidates = evict ? [...this.entries.values()].filter((entry) => !protect.has(entry.path)).sort((a, b) => a.lastUsedAt - b.lastUsedAt) : [];
    while (this.bytesOverBudget(model) > 0 && candidates.length > 0) {
      const victim = candidates.shift()!;
      this.log.info(`evicting ${victim.path} (${victim.name}, ${formatBytes(victim.sizeBytes)}) to stay under the cache budget`);
      await this.remove(victim);
    }
    if (this.bytesOverBudget(model) > 0) {
      const doesNotFit = `model ${model.name} (${formatBytes(model.sizeBytes)}) does not fit the cache budget of ${formatBytes(this.options.budgetBytes)}`;
      if (!evict) throw new ModelCacheError(`${doesNotFit} without evicting another file`, true);
      this.log.warn(`${doesNotFit} beside the files in use; downloading it anyway`);
    }
    const { neededBytes, freeBytes } = await diskRoom(model);
    if (freeBytes !== null && freeBytes < neededBytes) {
      throw new ModelCacheError(
        `not enough disk space for model ${model.name}: ${formatBytes(neededBytes)} needed, ${formatBytes(freeBytes)} free in ${path.dirname(model.path)}`,
        true,
      );
    }
  }

  /** By how many bytes the files kept, the downloads under way for other paths and this model would exceed the budget (≤ 0: it fits). */
  private bytesOverBudget(model: CachedFile): number {
    const replaced = this.entries.get(model.path)?.sizeBytes ?? 0;
    let incoming = 0;
    for (const [target, pending] of this.pending) {
      if (target !== model.path && !this.entries.has(target)) incoming += pending.model.sizeBytes;
    }
    return this.usedBytes() + incoming - replaced + model.sizeBytes - this.options.budgetBytes;
  }

  private async download(model: CachedFile, options: EnsureOptions): Promise<void> {
    const partPath = model.path + PART_SUFFIX;
    const retryDelayMs = this.options.retryDelayMs ?? 1_000;
    let lastError: unknown = null;
    for (let attempt = 0; attempt < DOWNLOAD_ATTEMPTS; attempt++) {
      if (attempt > 0) {
        const delayMs = retryDelayMs * 2 ** (attempt - 1);
        this.log.warn(`download of ${model.name} interrupted (${errorMessage(lastError)}); resuming in ${delayMs} ms`);
        await sleep(delayMs, undefined, { signal: options.signal });
      }
      try {
        const { digest, resumed } = await this.downloadOnce(model, partPath, options);
        if (digest !== model.sha256) {
          await fs.rm(partPath, { force: true });
          if (resumed) {
            // The bytes kept from an earlier attempt may be the bad ones: one more try from scratch.
            lastError = new StreamError(`resumed file of ${model.name} failed its checksum; downloading it again from the start`);
            continue;
          }
          throw new ModelCacheError(`checksum mismatch for model ${model.name}: expected sha256 ${model.sha256}, downloaded file has ${digest}`, false);
        }
        const sizeBytes = (await fileSize(partPath)) ?? 0;
        await fs.rename(partPath, model.path);
        this.touch({ name: model.name, type: model.type, path: model.path, sha256: model.sha256, sizeBytes, lastUsedAt: 0 }, model.name);
        this.log.info(`model ${model.name} downloaded and verified (${formatBytes(sizeBytes)})`);
        return;
      } catch (error) {
        if (options.signal?.aborted) throw options.signal.reason ?? error;
        if (error instanceof ModelCacheError) throw error;
        if (isGatewayStatus(error, 404)) throw new ModelCacheError(`model ${model.name} is not available from the gateway (404)`, false);
        if (!isTransientGatewayError(error) && !isStreamError(error)) {
          throw new ModelCacheError(`download of model ${model.name} failed: ${errorMessage(error)}`, true);
        }
        lastError = error;
      }
    }
    throw new ModelCacheError(`download of model ${model.name} failed after ${DOWNLOAD_ATTEMPTS} attempts: ${errorMessage(lastError)}`, true);
  }

  /** One request: continues `.part` when the gateway honours the Range; returns the whole file's sha256. */
  private async downloadOnce(model: ModelFile, partPath: string, options: EnsureOptions): Promise<{ digest: string; resumed: boolean }> {
    let offset = (await fileSize(partPath)) ?? 0;
    if (offset > 0 && offset === model.sizeBytes) {
      // Complete but never verified (the agent stopped in between): check it without a request.
      const digest = await hashFile(partPath);
      if (digest === model.sha256) return { digest, resumed: true };
    }
    if (offset >= model.sizeBytes) {
      await fs.rm(partPath, { force: true });
      offset = 0;
    }
    const res = await this.options.source(model.name, offset, options.signal);
    let append = false;
    if (offset > 0 && res.status === 206) {
      const start = parseContentRangeStart(res.headers.get("content-range"));
      if (start === offset) append = true;
      else {
        await res.body?.cancel();
        await fs.rm(partPath, { force: true });
        throw new StreamError(`gateway answered range from ${start} instead of ${offset}; starting over`);
      }
    } else if (res.status !== 200) {
      await res.body?.cancel();
      throw new StreamError(`unexpected status ${res.status} for the model file`);
    }
    if (!res.body) throw new StreamError("the model file answer has no body");
    const startAt = append ? offset : 0;
    const hash = createHash("sha256");
    if (append) await hashInto(hash, partPath);
    this.log.info(
      append
        ? `resuming download of ${model.name} at ${formatBytes(offset)} of ${formatBytes(model.sizeBytes)}`
        : `downloading model ${model.name} (${formatBytes(model.sizeBytes)})`,
    );
    const bar = new ProgressBar(`model ${model.name}`, model.sizeBytes, this.options.progressOutput, startAt);
    let done = startAt;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        done += chunk.length;
        bar.update(done);
        options.onProgress?.(done, model.sizeBytes);
        callback(null, chunk);
      },
    });
    try {
      await pipeline(
        Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>),
        meter,
        createWriteStream(partPath, { flags: append ? "a" : "w" }),
        { signal: options.signal },
      );
    } catch (error) {
      bar.finish(`stopped at ${formatBytes(done)}`);
      if (options.signal?.aborted) throw options.signal.reason ?? error;
      throw new StreamError(errorMessage(error));
    }
    bar.finish(`${formatBytes(done)} received`);
    return { digest: hash.digest("hex"), resumed: append };
  }

  /** Waits for the index writes under way (before the agent exits). */
  async flush(): Promise<void> {
    await this.saving.catch(() => undefined);
  }

  private indexPath(): string {
    return path.join(this.options.dir, CACHE_INDEX_FILE);
  }

  /** Writes the index (entries as they are when the write starts), one write at a time. */
  private save(): Promise<void> {
    const write = async () => {
      const tmp = `${this.indexPath()}.${process.pid}.tmp`;
      await fs.writeFile(tmp, JSON.stringify({ version: 2, entries: [...this.entries.values()] }, null, 2));
      await fs.rename(tmp, this.indexPath());
    };
    this.saving = this.saving.then(write, write);
    return this.saving;
  }
}

function ignore(): void {}

/** Resolves when `settled` does; rejects with the signal's reason if it aborts first. */
function settledOrAborted(settled: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return settled;
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    void settled.then(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
  });
}

/** The bytes the model's download still needs (beyond its `.part`), and the free disk where it goes (null when unknown). */
async function diskRoom(model: CachedFile): Promise<{ neededBytes: number; freeBytes: number | null }> {
  const partBytes = (await fileSize(model.path + PART_SUFFIX)) ?? 0;
  return { neededBytes: model.sizeBytes - partBytes, freeBytes: await freeDiskBytes(path.dirname(model.path)) };
}

class StreamError extends Error {
  override name = "StreamError";
}

function isStreamError(error: unknown): boolean {
  return error instanceof StreamError;
}

function assertPlainFileName(fileName: string): void {
  if (!fileName || fileName !== path.basename(fileName) || fileName.includes("\\") || fileName.startsWith(".") || fileName.endsWith(PART_SUFFIX)) {
    throw new ModelCacheError(`refusing model file name "${fileName}": it must be a plain file name`, false);
  }
}

function parseContentRangeStart(header: string | null): number | null {
  const match = header?.match(/^bytes (\d+)-\d+\/(\d+|\*)$/);
  return match ? Number(match[1]) : null;
}

async function fileSize(filePath: string): Promise<number | null> {
  try {
    const stat = await fs.stat(filePath);
    return stat.isFile() ? stat.size : null;
  } catch {
    return null;
  }
}

async function hashInto(hash: Hash, filePath: string): Promise<void> {
  for await (const chunk of createReadStream(filePath)) hash.update(chunk as Buffer);
}

async function hashFile(filePath: string): Promise<string> {
  const hash = createHash("sha256");
  await hashInto(hash, filePath);
  return hash.digest("hex");
}

/** Free bytes on the disk that holds `dir`, or would once it is made (its nearest existing parent's). */
async function freeDiskBytes(dir: string): Promise<number | null> {
  for (let at = dir; ; at = path.dirname(at)) {
    try {
      const stats = await fs.statfs(at);
      return stats.bavail * stats.bsize;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT" || path.dirname(at) === at) return null;
    }
  }
}
