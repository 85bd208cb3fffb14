// Prefetch: checkpoint files a heartbeat answer asks the node to fetch in the background while it
// goes on serving (work for it is coming and too few nodes hold it). One download at a time,
// through the model cache like a task's, only into room the cache has without evicting anything;
// hints that arrive while one runs are dropped (the next heartbeat repeats what is still wanted).
import type { ModelFile } from "../src/protocol/node.ts";
import { errorMessage, type Logger } from "./logger.ts";
import type { CachedFile, ModelCache } from "./model-cache.ts";
import { checkpointPath } from "./model-paths.ts";
import { formatBytes } from "./progress-bar.ts";

export interface PrefetchOptions {
  cache: ModelCache;
  checkpointsDir: string;
  logger: Logger;
  /** A prefetched file is on disk (the Worker should hear of it). */
  onFetched: () => void;
}

export class Prefetch {
  private running: Promise<void> | null = null;
  private downloading: string | null = null;
  private readonly abort = new AbortController();

  constructor(private readonly options: PrefetchOptions) {}

  /** Starts fetching the first named checkpoint not on disk that fits, unless a prefetch runs or it stopped. */
  request(files: readonly ModelFile[]): void {
    if (this.running || this.abort.signal.aborted) return;
    this.running = this.fetchFirst(files).finally(() => (this.running = null));
  }

  /** The checkpoint being fetched, or null: the heartbeat reports it, so the Worker asks other nodes for other files. */
  get fetching(): string | null {
    return this.downloading;
  }

  /** Aborts the download under way (its `.part` stays for the next attempt) and waits for it to end. */
  async stop(): Promise<void> {
    this.abort.abort(new Error("the node is stopping"));
    await this.running;
  }

  private async fetchFirst(files: readonly ModelFile[]): Promise<void> {
    const { cache, checkpointsDir, logger } = this.options;
    for (const file of files) {
      const model: CachedFile = { ...file, type: "checkpoint", path: checkpointPath(checkpointsDir, file) };
      if (cache.find((entry) => entry.path === model.path && entry.sha256 === model.sha256)) continue;
      if (!(await cache.fitsWithoutEvicting(model))) {
        logger.debug(`not prefetching checkpoint ${model.name}: it does not fit without evicting another file`);
        continue;
      }
      if (this.abort.signal.aborted) return;
      logger.info(`prefetching checkpoint ${model.name} (${formatBytes(model.sizeBytes)}) ahead of its work`);
      this.downloading = model.name;
      try {
        await cache.ensure(model, { signal: this.abort.signal, evict: false });
        this.options.onFetched();
      } catch (error) {
        if (!this.abort.signal.aborted) logger.warn(`prefetch of checkpoint ${model.name} failed: ${errorMessage(error)}`);
      } finally {
        this.downloading = null;
      }
      return;
    }
  }
}
