// GpuNodeAgent: one GPU node. Registers with the Worker, keeps a heartbeat, long-polls for work
// and runs one task at a time against sd-webui (started and supervised here, or attached to).
// Several agents can run in one process (tests, the end-to-end harness); main.ts is CLI glue.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ZodError } from "zod";
import type { ClaimResponse, RegisterResponse, WebuiCatalog } from "../src/protocol/node.ts";
import { type AgentConfig, type AgentConfigInput, agentConfigSchema } from "./config.ts";
import { GatewayClient, GatewayHttpError, isGatewayStatus, isNodeIdTaken, isNodeReplaced, isTransientGatewayError } from "./gateway-client.ts";
import { detectGpu, type GpuInfo, UNKNOWN_GPU } from "./gpu-info.ts";
import { Heartbeat } from "./heartbeat.ts";
import { createLogger, errorMessage, type Logger } from "./logger.ts";
import { ModelCache } from "./model-cache.ts";
import { pathEndsWith } from "./model-paths.ts";
import { Prefetch } from "./prefetch.ts";
import type { ProgressOutput } from "./progress-bar.ts";
import { defaultRamCheckpoints } from "./ram-checkpoints.ts";
import { TaskRunner } from "./task-runner.ts";
import { WebuiStoppedError } from "./webui/health.ts";
import { LoadedModel } from "./webui/loaded-model.ts";
import { WebuiSupervisor } from "./webui/supervisor.ts";

export const AGENT_VERSION = readAgentVersion();
/** In the models folder: the pid of the sd-webui the agent started (see WebuiSupervisor.reapLeftover). */
export const WEBUI_PID_FILE = ".sdgate-webui.pid";

const BACKOFF_INITIAL_MS = 1_000;
const BACKOFF_MAX_MS = 30_000;
const HARD_STOP_WAIT_MS = 5_000;
/** The protocol's upper bound for a claim's waitMs. */
const MAX_CLAIM_WAIT_MS = 60_000;

export interface GpuNodeAgentDeps {
  /** Defaults to a stderr logger at config.logLevel that hides the token. */
  logger?: Logger;
  /** Download progress bar output; defaults to process.stderr, null for none. */
  progressOutput?: ProgressOutput | null;
  /** Log sd-webui's output lines (spawn mode). Default true. */
  echoWebuiOutput?: boolean;
  /** First delay before restarting a crashed sd-webui (doubles up to 60 s). Default 1000. */
  webuiRestartBackoffMs?: number;
  /** SIGTERM → SIGKILL grace when stopping sd-webui. Default 10000. */
  webuiKillGraceMs?: number;
  /** Base delay between model download retries. Default 1000. */
  downloadRetryDelayMs?: number;
}

export type AgentState = "new" | "starting" | "running" | "draining" | "stopping" | "stopped";

export class GpuNodeAgent {
  readonly config: AgentConfig;
  readonly nodeId: string;
  /** Resolves when the agent has stopped (after stop(), or on a fatal error: see fatalError). */
  readonly closed: Promise<void>;
  /** Set when the agent stopped on its own because it cannot go on (e.g. the token was refused). */
  fatalError: Error | null = null;

  private state: AgentState = "new";
  private readonly log: Logger;
  private readonly gateway: GatewayClient;
  private readonly supervisor: WebuiSupervisor;
  private readonly cache: ModelCache;
  private readonly heartbeat: Heartbeat;
  private readonly prefetch: Prefetch;
  private readonly loadedModel: LoadedModel;
  private gpu: GpuInfo = UNKNOWN_GPU;
  private catalog: WebuiCatalog = {};
  private registration: RegisterResponse | null = null;
  private registering: Promise<void> | null = null;
  /** This process, as the Worker tells it apart from another agent registered under the same node id. */
  private readonly instanceId = randomBytes(12).toString("base64url");
  /** Another agent process registered under our node id: we stop, and leave its registration alone. */
  private replaced = false;
  private restartRequested = false;
  private current: TaskRunner | null = null;
  private loop: Promise<void> | null = null;
  /** Aborts the claim long poll and backoff sleeps. */
  private readonly claimAbort = new AbortController();
  /** Aborts everything (hard stop). */
  private readonly lifetime = new AbortController();
  private stopping: Promise<void> | null = null;
  private starting: Promise<void> | null = null;
  private shuttingDown: Promise<void> | null = null;
  private resolveClosed!: () => void;
  private tasksRun = 0;

  constructor(input: AgentConfigInput, deps: GpuNodeAgentDeps = {}) {
    this.config = agentConfigSchema.parse(input);
    this.nodeId = this.config.nodeId;
    const secrets = [this.config.token, ...(this.config.webuiAuth ? [this.config.webuiAuth, this.config.webuiAuth.split(":").slice(1).join(":")] : [])];
    this.log = deps.logger ?? createLogger({ level: this.config.logLevel, secrets, scope: this.nodeId });
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.gateway = new GatewayClient({
      baseUrl: this.config.gatewayUrl,
      token: this.config.token,
      userAgent: `sdgate-gpu-node/${AGENT_VERSION}`,
      logger: this.log.child("gateway"),
    });
    const common = {
      auth: this.config.webuiAuth,
      startTimeoutMs: this.config.webuiStartTimeoutS * 1000,
      logger: this.log.child("supervisor"),
      restartBackoffInitialMs: deps.webuiRestartBackoffMs,
    };
    this.supervisor = this.config.webuiUrl
      ? new WebuiSupervisor({ ...common, mode: "attach", url: this.config.webuiUrl })
      : new WebuiSupervisor({
          ...common,
          mode: "spawn",
          command: this.config.webuiCmd,
          cwd: this.config.webuiDir,
          port: this.config.webuiPort,
          modelsDir: this.config.modelsDir,
          dataDir: this.config.dataDir,
          pidFile: path.join(this.config.modelsDir, WEBUI_PID_FILE),
          echoOutput: deps.echoWebuiOutput ?? true,
          killGraceMs: deps.webuiKillGraceMs,
        });
    this.loadedModel = new LoadedModel(
      this.config.modelsDir,
      (relative) => {
        const entry = this.cache.find((candidate) => candidate.type === "checkpoint" && pathEndsWith(candidate.path, relative));
        return entry && { name: entry.name, fileName: path.basename(entry.path), sha256: entry.sha256 };
      },
      () => this.config.ramCheckpoints ?? defaultRamCheckpoints(os.totalmem(), this.cache.checkpointSizes()),
    );
    this.cache = new ModelCache({
      dir: this.config.dataDir,
      checkpointsDir: this.config.modelsDir,
      budgetBytes: Math.floor(this.config.cacheBudgetGb * 1024 ** 3),
      source: (name, offset, signal) => this.gateway.modelFile(name, offset, signal),
      logger: this.log.child("models"),
      progressOutput: deps.progressOutput === undefined ? process.stderr : deps.progressOutput,
      retryDelayMs: deps.downloadRetryDelayMs,
    });
    this.prefetch = new Prefetch({
      cache: this.cache,
      checkpointsDir: this.config.modelsDir,
      logger: this.log.child("prefetch"),
      onFetched: () => this.heartbeat.beatNow(),
    });
    this.heartbeat = new Heartbeat({
      gateway: this.gateway,
      nodeId: this.nodeId,
      logger: this.log.child("heartbeat"),
      snapshot: () => this.snapshot(),
      onUnknownNode: () => void this.reRegister().catch(() => undefined),
      onReplaced: () => this.onReplaced(),
      onRestartRequested: () => {
        if (!this.restartRequested) this.log.info("the gateway asked for an sd-webui restart; restarting when idle");
        this.restartRequested = true;
      },
      onDrainRequested: () => {
        if (this.state !== "running") return;
        this.log.info("the fleet is scaling in and chose this node: finishing the current task, then leaving");
        void this.stop({ drain: true });
      },
      onPrefetchRequested: (files) => {
        if (this.state === "running") this.prefetch.request(files);
      },
    });
  }

  get status(): AgentState {
    return this.state;
  }

  /** Base URL of the sd-webui this agent uses (after start). */
  get webuiUrl(): string {
    return this.supervisor.url;
  }

  /** Process id of the sd-webui the agent started (process group leader), if any. */
  get webuiPid(): number | undefined {
    return this.supervisor.pid;
  }

  get currentTaskId(): string | null {
    return this.current?.task.id ?? null;
  }

  /** Tasks that reached an outcome since start. */
  get completedRuns(): number {
    return this.tasksRun;
  }

  /**
   * Registers, brings sd-webui up and starts the heartbeat and the work loop. Resolves once the
   * node is taking work; rejects when it cannot start (the token is refused, sd-webui fails).
   */
  start(): Promise<void> {
    if (this.state !== "new") return Promise.reject(new Error(`agent already ${this.state}`));
    this.state = "starting";
    this.starting = this.runStart();
    return this.starting;
  }

  private async runStart(): Promise<void> {
    try {
      this.gpu = await this.resolveGpu();
      await this.cache.init();
      // sd-webui's checkpoint folder holds the pid file before sd-webui would create it.
      await mkdir(this.config.modelsDir, { recursive: true });
      this.log.info(
        `node ${this.nodeId}: GPU ${this.gpu.gpuClass} (${this.gpu.gpuMemoryMb} MB), models in ${this.config.modelsDir}, ` +
          (this.supervisor.supervised ? "starting sd-webui" : `sd-webui at ${this.config.webuiUrl}`),
      );
      if (!this.supervisor.supervised) {
        await this.supervisor.start();
        await this.onWebuiReady();
      }
      await this.register();
      if (this.supervisor.supervised) {
        this.supervisor.setExtraArgs(this.registration!.webuiExtraArgs);
        await this.supervisor.start();
        await this.onWebuiReady();
      }
    } catch (error) {
      this.log.error(`cannot start: ${errorMessage(error)}`);
      await this.shutdown({ deregister: this.registration !== null });
      throw error;
    }
    if (this.stopping) {
      // stop() was called while starting
      await this.shutdown({ deregister: true });
      return;
    }
    this.supervisor.on("ready", () => void this.onWebuiReady().catch((error) => this.log.warn(errorMessage(error))));
    this.heartbeat.start(this.registration!.heartbeatIntervalMs);
    this.state = "running";
    this.loop = this.workLoop();
    this.log.info(`node ${this.nodeId} is taking work`);
  }

  /**
   * drain (default): stop claiming, finish the current task, deregister, stop sd-webui.
   * drain false: interrupt the current task (failed as retryable), deregister, stop at once.
   * A second call with drain false escalates a drain in progress.
   */
  stop(options: { drain?: boolean } = {}): Promise<void> {
    const drain = options.drain ?? true;
    if (!drain) this.hardAbort();
    if (this.stopping) return this.stopping;
    if (this.state === "new" || this.state === "stopped") {
      this.state = "stopped";
      this.resolveClosed();
      return Promise.resolve();
    }
    this.stopping = this.runStop(drain);
    return this.stopping;
  }

  private hardAbort(): void {
    this.lifetime.abort(new Error("stopped"));
    this.claimAbort.abort(new Error("stopped"));
    this.current?.abortNow("the node is shutting down");
  }

  private async runStop(drain: boolean): Promise<void> {
    const wasStarting = this.state === "starting";
    this.state = drain ? "draining" : "stopping";
    this.claimAbort.abort(new Error("stopping"));
    void this.prefetch.stop();
    if (wasStarting) {
      // Cut the start short (registration retries, sd-webui start); start() cleans up.
      this.lifetime.abort(new Error("stopped while starting"));
      await this.supervisor.stop();
      await this.starting?.catch(() => undefined);
      return;
    }
    if (drain) {
      this.log.info(this.current ? `draining: finishing task ${this.current.task.id}, then leaving` : "draining: no task running, leaving");
      this.heartbeat.beatNow();
      await this.loop;
    } else {
      this.log.info("stopping now");
      await Promise.race([this.loop, sleep(HARD_STOP_WAIT_MS)]);
    }
    await this.shutdown({ deregister: true });
  }

  private shutdown(options: { deregister: boolean }): Promise<void> {
    this.shuttingDown ??= this.runShutdown(options);
    return this.shuttingDown;
  }

  private async runShutdown(options: { deregister: boolean }): Promise<void> {
    await this.heartbeat.stop();
    await this.prefetch.stop();
    if (options.deregister && this.registration && !this.replaced) {
      try {
        await this.gateway.deregister(this.nodeId, this.instanceId);
        this.log.info("deregistered");
      } catch (error) {
        this.log.warn(`deregister failed: ${errorMessage(error)}`);
      }
    }
    await this.supervisor.stop();
    await this.cache.flush();
    this.state = "stopped";
    this.resolveClosed();
  }

  private async failFatally(error: Error, options: { drain: boolean } = { drain: true }): Promise<void> {
    if (this.fatalError || this.stopping) return;
    this.fatalError = error;
    this.log.error(`stopping: ${error.message}`);
    await this.stop(options);
  }

  private onReplaced(): void {
    if (this.replaced) return;
    this.replaced = true;
    // The new registration released our leases: a task still running here can only be refused.
    void this.failFatally(new Error(`another agent process registered as node ${this.nodeId}; give each agent its own --node-id`), { drain: false });
  }

  // ---- registration ------------------------------------------------------------------------------

  private async resolveGpu(): Promise<GpuInfo> {
    const { gpuClass, gpuMemoryMb } = this.config;
    const detected = gpuClass === undefined || gpuMemoryMb === undefined ? await detectGpu() : null;
    return {
      gpuClass: gpuClass ?? detected?.gpuClass ?? UNKNOWN_GPU.gpuClass,
      gpuMemoryMb: gpuMemoryMb ?? detected?.gpuMemoryMb ?? UNKNOWN_GPU.gpuMemoryMb,
    };
  }

  /** POST /nodes/register, retrying while the Worker is unreachable; 4xx other than 429 is fatal. */
  private async register(): Promise<void> {
    let delayMs = BACKOFF_INITIAL_MS;
    while (true) {
      try {
        const answer = await this.gateway.register({
          nodeId: this.nodeId,
          instanceId: this.instanceId,
          agentVersion: AGENT_VERSION,
          catalog: this.catalog,
          loadedCheckpoint: this.loadedModel.checkpointName,
          cachedCheckpoints: this.cache.cachedNames("checkpoint"),
          cachedAddons: this.cache.cachedNames("addon"),
          ramCheckpoints: this.loadedModel.ramCheckpointNames,
          gpuClass: this.gpu.gpuClass,
          gpuMemoryMb: this.gpu.gpuMemoryMb,
          group: this.config.group,
        });
        this.registration = answer;
        this.heartbeat.setInterval(answer.heartbeatIntervalMs);
        this.log.info(`registered with ${this.config.gatewayUrl} (heartbeat every ${answer.heartbeatIntervalMs} ms)`);
        return;
      } catch (error) {
        if (isNodeIdTaken(error)) {
          throw new Error(
            `node id ${this.nodeId} belongs to another node key; give this agent its own --node-id, or have an admin release the id (DELETE /nodes/${this.nodeId})`,
          );
        }
        if (!isTransientGatewayError(error)) {
          throw error instanceof GatewayHttpError ? new Error(`the gateway refused to register this node: ${error.message}`) : error;
        }
        this.log.warn(`cannot reach the gateway to register (${errorMessage(error)}); retrying in ${delayMs} ms`);
        await sleep(delayMs, undefined, { signal: AbortSignal.any([this.lifetime.signal, this.claimAbort.signal]) });
        delayMs = Math.min(delayMs * 2, BACKOFF_MAX_MS);
      }
    }
  }

  /** The Worker answered 404 for this node: register again (once, however many callers ask). */
  private reRegister(): Promise<void> {
    if (!this.registering) {
      this.log.warn("the gateway does not know this node any more; registering again");
      this.registering = this.register()
        .catch((error: unknown) => {
          // Not awaited: stopping waits for the work loop, which may be waiting for this.
          if (!this.lifetime.signal.aborted && !this.claimAbort.signal.aborted) {
            void this.failFatally(error instanceof Error ? error : new Error(String(error)));
          }
          throw error;
        })
        .finally(() => (this.registering = null));
    }
    return this.registering;
  }

  // ---- sd-webui state ----------------------------------------------------------------------------

  /**
   * After every sd-webui (re)start: how many checkpoints it holds in RAM, which checkpoint it
   * loaded, its catalog for the next heartbeat.
   */
  private async onWebuiReady(): Promise<void> {
    const client = this.supervisor.client;
    const generation = this.supervisor.generation;
    await this.loadedModel
      .holdInRam(client, this.lifetime.signal)
      .catch((error: unknown) => this.log.warn(`cannot set which checkpoints sd-webui holds in RAM: ${errorMessage(error)}`));
    try {
      await this.loadedModel.readFrom(client, generation);
    } catch (error) {
      this.log.warn(`cannot read sd-webui's options: ${errorMessage(error)}`);
      this.loadedModel.forget();
    }
    await this.refreshCatalog();
  }

  /** Reads sd-webui's catalog again and sends it with the next heartbeat. */
  private async refreshCatalog(): Promise<void> {
    this.catalog = await this.supervisor.client.catalog();
    this.heartbeat.sendCatalog(this.catalog);
    this.heartbeat.beatNow();
  }

  private snapshot() {
    return {
      status: this.state === "draining" || this.state === "stopping" ? ("draining" as const) : this.current ? ("busy" as const) : ("idle" as const),
      currentTaskId: this.current?.task.id ?? null,
      loadedCheckpoint: this.loadedModel.checkpointName,
      cachedCheckpoints: this.cache.cachedNames("checkpoint"),
      cachedAddons: this.cache.cachedNames("addon"),
      ramCheckpoints: this.loadedModel.ramCheckpointNames,
      fetchingCheckpoint: this.prefetch.fetching,
      gpuClass: this.gpu.gpuClass,
      gpuMemoryMb: this.gpu.gpuMemoryMb,
      instanceId: this.instanceId,
    };
  }

  // ---- the work loop -----------------------------------------------------------------------------

  private async workLoop(): Promise<void> {
    const signal = this.claimAbort.signal;
    let delayMs = BACKOFF_INITIAL_MS;
    let failingSince: number | null = null;
    while (this.state === "running") {
      try {
        if (this.restartRequested) {
          this.restartRequested = false;
          await this.supervisor.restart().catch((error) => this.log.error(`sd-webui restart failed: ${errorMessage(error)}`));
        }
        await this.supervisor.waitReady(signal);
        if (this.registering) await this.registering;
        const claim = await this.gateway.claim(
          this.nodeId,
          {
            waitMs: Math.min(this.registration!.claimWaitMs, MAX_CLAIM_WAIT_MS),
            loadedCheckpoint: this.loadedModel.checkpointName,
            cachedCheckpoints: this.cache.cachedNames("checkpoint"),
            cachedAddons: this.cache.cachedNames("addon"),
            ramCheckpoints: this.loadedModel.ramCheckpointNames,
            instanceId: this.instanceId,
          },
          signal,
        );
        if (failingSince !== null) this.log.info("claiming works again");
        failingSince = null;
        delayMs = BACKOFF_INITIAL_MS;
        if (claim) await this.runTask(claim);
      } catch (error) {
        if (this.state !== "running") break;
        if (error instanceof WebuiStoppedError) break;
        if (isGatewayStatus(error, 404)) {
          await this.reRegister().catch(() => undefined);
          continue;
        }
        if (isNodeReplaced(error)) {
          this.onReplaced();
          break;
        }
        if (error instanceof GatewayHttpError && (error.status === 401 || error.status === 403)) {
          void this.failFatally(new Error(`the gateway refused the node token: ${error.message}`));
          break;
        }
        const what = error instanceof ZodError ? `unexpected claim answer: ${error.message}` : errorMessage(error);
        if (failingSince === null) this.log.warn(`claim failed (${what}); backing off`);
        else this.log.debug(`claim failed again (${what})`);
        failingSince ??= Date.now();
        try {
          await sleep(delayMs, undefined, { signal });
        } catch {
          break;
        }
        delayMs = Math.min(delayMs * 2, BACKOFF_MAX_MS);
      }
    }
  }

  private async runTask(claim: ClaimResponse): Promise<void> {
    const runner = new TaskRunner(
      {
        gateway: this.gateway,
        supervisor: this.supervisor,
        cache: this.cache,
        loadedModel: this.loadedModel,
        logger: this.log,
        progressIntervalMs: this.config.progressIntervalMs,
        dataDir: this.config.dataDir,
        checkpointsDir: this.config.modelsDir,
        onAddonsArrived: () => void this.refreshCatalog().catch((error) => this.log.warn(`cannot read sd-webui's catalog: ${errorMessage(error)}`)),
      },
      claim,
    );
    // No extra heartbeat around a task: the claim told Fleet the node is busy, and the next claim
    // tells it what the node has loaded; extra beats would only queue behind claims at Fleet.
    this.current = runner;
    try {
      if (this.lifetime.signal.aborted) runner.abortNow("the node is shutting down");
      await runner.run();
    } finally {
      this.current = null;
      this.tasksRun++;
    }
  }
}

function readAgentVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: unknown };
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
}
