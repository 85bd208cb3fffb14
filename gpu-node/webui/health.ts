// Where sd-webui stands as its supervisor sees it, and whoever waits for it to answer:
//
//   new → starting → ready ⇄ checking        (checking: it stopped answering and is polled)
//                    ready|checking → recovering → ready   (restarting after a crash)
//   ready → starting → ready                 (a restart on request)
//   any → stopped                            (final)
//
// A failed first start goes back to new. Every arrival at ready starts a new generation:
// anything learnt about sd-webui holds for one generation only.

/** checking: sd-webui stopped answering and is being polled; recovering: restarting after a crash. */
export type WebuiHealthState = "new" | "starting" | "ready" | "checking" | "recovering" | "stopped";

export class WebuiStoppedError extends Error {
  override name = "WebuiStoppedError";
  constructor() {
    super("sd-webui supervisor stopped");
  }
}

export class WebuiHealth {
  private current: WebuiHealthState = "new";
  private readyCount = 0;
  private readonly waiters = new Set<() => void>();
  private readonly stopController = new AbortController();

  /** `onReady` runs on every arrival at ready, before waitReady() callers are released. */
  constructor(private readonly onReady: () => void) {}

  get state(): WebuiHealthState {
    return this.current;
  }

  /** Counts the times sd-webui became ready. */
  get generation(): number {
    return this.readyCount;
  }

  get ready(): boolean {
    return this.current === "ready";
  }

  get stopped(): boolean {
    return this.current === "stopped";
  }

  /** Aborted once stopped: cuts the supervisor's sleeps short. */
  get stopSignal(): AbortSignal {
    return this.stopController.signal;
  }

  /** The first start, or a restart on request of a ready sd-webui. */
  starting(): void {
    if (this.current !== "new" && this.current !== "ready") throw new Error(`cannot start sd-webui in state ${this.current}`);
    this.current = "starting";
  }

  /** The first start failed: it may be tried again. */
  startFailed(): void {
    if (!this.stopped) this.current = "new";
  }

  markReady(): void {
    if (this.stopped) return;
    this.current = "ready";
    this.readyCount += 1;
    this.onReady();
    for (const release of [...this.waiters]) release();
  }

  /** sd-webui stopped answering; false unless it was ready (a check or a recovery is under way). */
  markChecking(): boolean {
    if (this.current !== "ready") return false;
    this.current = "checking";
    return true;
  }

  /** sd-webui is to be restarted after a crash or a failed restart. */
  markRecovering(): void {
    if (!this.stopped) this.current = "recovering";
  }

  /** Final; false when it already was stopped. */
  markStopped(): boolean {
    if (this.stopped) return false;
    this.current = "stopped";
    this.stopController.abort();
    return true;
  }

  /** Resolves once sd-webui is ready (waiting through restarts); rejects when stopped or aborted. */
  waitReady(signal?: AbortSignal): Promise<void> {
    if (this.current === "ready") return Promise.resolve();
    if (this.stopped) return Promise.reject(new WebuiStoppedError());
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        this.waiters.delete(onReady);
        this.stopController.signal.removeEventListener("abort", onStop);
        signal?.removeEventListener("abort", onAbort);
      };
      const onReady = () => {
        cleanup();
        resolve();
      };
      const onStop = () => {
        cleanup();
        reject(new WebuiStoppedError());
      };
      const onAbort = () => {
        cleanup();
        reject(signal!.reason);
      };
      this.waiters.add(onReady);
      this.stopController.signal.addEventListener("abort", onStop, { once: true });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}
