// Runs sd-webui as a child process (or watches one started elsewhere): spawn in its own process
// group, wait until GET /sdapi/v1/sd-models answers 200 while racing an early exit and a
// deadline, restart after a crash with exponential backoff, and kill the whole group (python
// plus whatever it started) on stop. Every start error carries the tail of sd-webui's output.
import type { ChildProcess } from "node:child_process";
import { EventEmitter } from "node:events";
import { rmSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { splitCommandLine } from "../command-line.ts";
import { errorMessage, type Logger } from "../logger.ts";
import { WebuiClient } from "./client.ts";
import { WebuiHealth, WebuiStoppedError } from "./health.ts";
import { OutputTail } from "./output-tail.ts";
import { findFreePort, portIsFree } from "./ports.ts";
import { type PidRecord, reapLeftoverGroup, signalGroup, spawnGroupLeader, stopGroup, writePidFile } from "./process-group.ts";

const READY_POLL_MS = 500;
const RESTART_BACKOFF_INITIAL_MS = 1_000;
const RESTART_BACKOFF_MAX_MS = 60_000;
/** A started sd-webui that stops answering this long is killed (and restarted). */
const UNRESPONSIVE_KILL_MS = 120_000;
/** A process that stayed up this long resets the crash backoff. */
const STABLE_RUN_MS = 60_000;
const DEFAULT_KILL_GRACE_MS = 10_000;

export interface SpawnedWebuiOptions {
  mode: "spawn";
  /** Command line; `{port}`, `{data_dir}` and `{models_dir}` are substituted in each word. */
  command: string;
  cwd: string;
  /** 0 picks a free port once; restarts keep it. */
  port: number;
  modelsDir: string;
  dataDir: string;
  env?: NodeJS.ProcessEnv;
  /** Grace between SIGTERM and SIGKILL of the group. */
  killGraceMs?: number;
  /** Log each line sd-webui prints (at info level, scope "webui"). */
  echoOutput?: boolean;
  /** Where the running sd-webui's pid is kept, so a later start can stop one left behind. */
  pidFile?: string;
}

export interface AttachedWebuiOptions {
  mode: "attach";
  url: string;
}

export type WebuiSupervisorOptions = (SpawnedWebuiOptions | AttachedWebuiOptions) & {
  auth?: string;
  startTimeoutMs: number;
  logger: Logger;
  restartBackoffInitialMs?: number;
  restartBackoffMaxMs?: number;
};

export interface WebuiExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Last lines sd-webui printed. */
  tail: string[];
}

/** sd-webui did not become ready; the message includes its last output lines. */
export class WebuiStartError extends Error {
  override name = "WebuiStartError";
  constructor(
    reason: string,
    readonly tail: readonly string[],
  ) {
    super(tail.length > 0 ? `${reason}; last output of sd-webui:\n  ${tail.join("\n  ")}` : `${reason} (sd-webui printed nothing)`);
  }
}

interface RunningChild {
  process: ChildProcess;
  exited: Promise<WebuiExit>;
  hasExited: boolean;
  expectedExit: boolean;
  startedAt: number;
}

export interface WebuiSupervisorEvents {
  /** sd-webui answers (after the first start and after every restart). */
  ready: [];
  /** The sd-webui process ended without being asked to (spawn mode only). */
  crash: [WebuiExit];
}

export class WebuiSupervisor extends EventEmitter<WebuiSupervisorEvents> {
  private readonly health = new WebuiHealth(() => this.emit("ready"));
  private child: RunningChild | null = null;
  private readonly output = new OutputTail();
  private extraArgs = "";
  private port: number | null = null;
  private webuiClient: WebuiClient | null = null;
  private backoffMs: number;
  private recovering: Promise<void> | null = null;
  private readonly killOnExit = () => this.killGroupNow("SIGKILL");
  private readonly log: Logger;

  constructor(private readonly options: WebuiSupervisorOptions) {
    super();
    this.log = options.logger;
    this.backoffMs = options.restartBackoffInitialMs ?? RESTART_BACKOFF_INITIAL_MS;
    if (options.mode === "attach") this.webuiClient = new WebuiClient({ baseUrl: options.url, auth: options.auth });
  }

  get supervised(): boolean {
    return this.options.mode === "spawn";
  }

  /** What the sd-webui the agent started prints; null for one it attached to (its output is elsewhere). */
  get printed(): OutputTail | null {
    return this.supervised ? this.output : null;
  }

  private isStopped(): boolean {
    return this.health.stopped;
  }

  get ready(): boolean {
    return this.health.ready;
  }

  /** Counts the times sd-webui became ready: anything learnt about it holds for one generation only. */
  get generation(): number {
    return this.health.generation;
  }

  /** Process id of the sd-webui process (group leader), when the agent started one. */
  get pid(): number | undefined {
    return this.child && !this.child.hasExited ? this.child.process.pid : undefined;
  }

  get client(): WebuiClient {
    if (!this.webuiClient) throw new Error("sd-webui has not been started yet");
    return this.webuiClient;
  }

  get url(): string {
    return this.client.baseUrl;
  }

  /** Extra command-line arguments (the pool's) used from the next start on. */
  setExtraArgs(args: string): void {
    this.extraArgs = args;
  }

  /** First start: resolves when sd-webui answers, rejects with WebuiStartError otherwise. */
  async start(): Promise<void> {
    if (this.health.state !== "new") throw new Error(`cannot start sd-webui supervisor in state ${this.health.state}`);
    this.health.starting();
    try {
      if (this.options.mode === "spawn") {
        await this.reapLeftover();
        await this.spawnUntilReady();
      } else await this.waitForAttached(Date.now() + this.options.startTimeoutMs);
      this.health.markReady();
    } catch (error) {
      this.health.startFailed();
      throw error;
    }
  }

  /** Resolves once sd-webui is ready (waiting through restarts); rejects when stopped or aborted. */
  waitReady(signal?: AbortSignal): Promise<void> {
    return this.health.waitReady(signal);
  }

  /**
   * Talking to sd-webui failed (connection refused or dropped). Until it answers again nothing
   * waiting in waitReady() proceeds: a crashed process is restarted by the exit handler, a hung
   * one is killed after a while, an attached one is polled until it is back.
   */
  markUnhealthy(): void {
    if (!this.health.markChecking()) return;
    this.log.warn(`sd-webui at ${this.client.baseUrl} stopped answering; checking on it`);
    this.recovering = this.recheck();
  }

  private async recheck(): Promise<void> {
    const client = this.client;
    const killAt = this.options.mode === "spawn" ? Date.now() + UNRESPONSIVE_KILL_MS : Number.POSITIVE_INFINITY;
    while (this.health.state === "checking") {
      if (await client.isReady()) {
        if (this.health.state === "checking") {
          this.log.info("sd-webui answers again");
          this.health.markReady();
        }
        return;
      }
      if (Date.now() > killAt) {
        this.log.error(`sd-webui has not answered for ${UNRESPONSIVE_KILL_MS / 1000} s; killing it`);
        this.killGroupNow("SIGKILL"); // the exit handler restarts it
        return;
      }
      try {
        await sleep(READY_POLL_MS, undefined, { signal: this.health.stopSignal });
      } catch {
        return;
      }
    }
  }

  /** Restart on request (an admin's restartWebui); only meaningful when the agent started sd-webui. */
  async restart(): Promise<void> {
    if (this.options.mode !== "spawn") {
      this.log.warn("sd-webui restart requested, but the agent is attached to an sd-webui it did not start; ignoring");
      return;
    }
    if (this.isStopped()) throw new WebuiStoppedError();
    if (!this.health.ready) {
      this.log.info("sd-webui restart requested while it is (re)starting; nothing to do");
      return;
    }
    this.log.info("restarting sd-webui");
    this.health.starting();
    if (this.child) await this.killChild(this.child);
    try {
      await this.spawnUntilReady();
      this.health.markReady();
    } catch (error) {
      if (this.isStopped()) throw error;
      this.log.error(`sd-webui did not come back after a restart: ${errorMessage(error)}`);
      this.scheduleRecovery();
      throw error;
    }
  }

  /** Stops supervising; kills the process group when the agent started sd-webui. */
  async stop(): Promise<void> {
    if (!this.health.markStopped()) return;
    if (this.child) await this.killChild(this.child);
    process.off("exit", this.killOnExit);
    await this.recovering?.catch(() => undefined);
  }

  /** Sends a signal to sd-webui's process group right away (used on a hard stop). */
  killGroupNow(signal: NodeJS.Signals): void {
    const child = this.child;
    if (child && !child.hasExited && child.process.pid !== undefined) signalGroup(child.process.pid, signal);
  }

  private async resolvePort(): Promise<number> {
    const options = this.options as SpawnedWebuiOptions;
    if (this.port === null) this.port = options.port === 0 ? await findFreePort() : options.port;
    return this.port;
  }

  private async spawnUntilReady(): Promise<void> {
    const options = this.options as SpawnedWebuiOptions & WebuiSupervisorOptions;
    const port = await this.resolvePort();
    if (!this.webuiClient) this.webuiClient = new WebuiClient({ baseUrl: `http://127.0.0.1:${port}`, auth: options.auth });
    const substitute = (word: string) =>
      word.replaceAll("{port}", String(port)).replaceAll("{data_dir}", options.dataDir).replaceAll("{models_dir}", options.modelsDir);
    const argv = [...splitCommandLine(options.command), ...splitCommandLine(this.extraArgs)].map(substitute);
    const [program, ...args] = argv;
    if (!program) throw new WebuiStartError("the sd-webui command is empty", []);

    if (options.port !== 0 && !(await portIsFree(port))) {
      throw new WebuiStartError(
        `port ${port} is already in use: is an sd-webui from an earlier run still running? Stop it, pick another --webui-port, or attach to it with --webui-url`,
        [],
      );
    }
    this.output.clear();
    this.log.info(`starting sd-webui: ${argv.join(" ")} (in ${options.cwd})`);
    const env = { ...(options.env ?? process.env) };
    // sd-webui and its extensions have no business with the node token.
    delete env.SDGATE_NODE_TOKEN;
    const child = spawnGroupLeader(program, args, { cwd: options.cwd, env });
    const running: RunningChild = {
      process: child,
      hasExited: false,
      expectedExit: false,
      startedAt: Date.now(),
      exited: new Promise<WebuiExit>((resolve) => {
        let spawnError: Error | null = null;
        child.once("error", (error) => {
          spawnError = error;
          this.output.append(`[${errorMessage(error)}]`);
          // A failed spawn emits no "exit"; "close" follows once the pipes are closed.
        });
        child.once("close", (code, signal) => {
          running.hasExited = true;
          if (options.pidFile) rmSync(options.pidFile, { force: true });
          resolve({ code: code ?? (spawnError ? 127 : null), signal, tail: this.output.lines() });
        });
      }),
    };
    this.child = running;
    if (options.pidFile && child.pid !== undefined) {
      const record: PidRecord = { pid: child.pid, argv, startedAt: new Date().toISOString() };
      await writePidFile(options.pidFile, record).catch((error) => this.log.warn(`cannot write ${options.pidFile}: ${errorMessage(error)}`));
    }
    process.off("exit", this.killOnExit);
    process.on("exit", this.killOnExit);
    this.captureOutput(child);
    running.exited.then((exit) => this.onChildExit(running, exit));

    const deadline = Date.now() + options.startTimeoutMs;
    const exitedEarly = running.exited.then((exit) => ({ exit }));
    const client = this.webuiClient;
    while (true) {
      if (this.isStopped()) throw new WebuiStoppedError();
      const outcome = await Promise.race([exitedEarly, client.isReady(Math.min(5_000, Math.max(deadline - Date.now(), 1))).then((ready) => ({ ready }))]);
      if ("exit" in outcome) {
        if (this.isStopped()) throw new WebuiStoppedError();
        throw new WebuiStartError(`sd-webui exited before it was ready (${describeExit(outcome.exit)})`, outcome.exit.tail);
      }
      if (outcome.ready) {
        this.log.info(`sd-webui is ready at ${client.baseUrl} (pid ${child.pid})`);
        return;
      }
      if (Date.now() >= deadline) {
        await this.killChild(running);
        throw new WebuiStartError(`sd-webui was not ready after ${Math.round(options.startTimeoutMs / 1000)} s`, this.output.lines());
      }
      const exit = await Promise.race([exitedEarly, sleep(READY_POLL_MS).then(() => null)]);
      if (exit) {
        if (this.isStopped()) throw new WebuiStoppedError();
        throw new WebuiStartError(`sd-webui exited before it was ready (${describeExit(exit.exit)})`, exit.exit.tail);
      }
    }
  }

  private async waitForAttached(deadline: number): Promise<void> {
    const client = this.client;
    let logged = false;
    while (true) {
      if (this.health.stopSignal.aborted) throw new WebuiStoppedError();
      if (await client.isReady(Math.min(5_000, Math.max(deadline - Date.now(), 1)))) return;
      if (Date.now() >= deadline) {
        throw new WebuiStartError(`sd-webui at ${client.baseUrl} did not answer GET /sdapi/v1/sd-models within the start timeout`, []);
      }
      if (!logged) {
        this.log.info(`waiting for sd-webui at ${client.baseUrl}`);
        logged = true;
      }
      await sleep(READY_POLL_MS, undefined, { signal: this.health.stopSignal }).catch(() => undefined);
    }
  }

  private onChildExit(child: RunningChild, exit: WebuiExit): void {
    if (child.expectedExit || this.child !== child) return;
    // Start errors are reported by spawnUntilReady; only a process that was up counts as a crash.
    if (this.health.state !== "ready" && this.health.state !== "checking") return;
    this.log.error(`sd-webui exited unexpectedly (${describeExit(exit)}); last output:\n  ${exit.tail.join("\n  ")}`);
    // Whatever it started (workers holding the port or GPU memory) goes with it.
    if (child.process.pid !== undefined) signalGroup(child.process.pid, "SIGKILL");
    if (Date.now() - child.startedAt > STABLE_RUN_MS) this.backoffMs = this.options.restartBackoffInitialMs ?? RESTART_BACKOFF_INITIAL_MS;
    this.health.markRecovering();
    this.emit("crash", exit);
    this.scheduleRecovery();
  }

  private scheduleRecovery(): void {
    if (this.isStopped()) return;
    this.health.markRecovering();
    this.recovering = this.recover();
  }

  private async recover(): Promise<void> {
    const maxMs = this.options.restartBackoffMaxMs ?? RESTART_BACKOFF_MAX_MS;
    while (this.health.state === "recovering") {
      const delayMs = this.backoffMs;
      this.backoffMs = Math.min(this.backoffMs * 2, maxMs);
      this.log.info(`restarting sd-webui in ${delayMs} ms`);
      try {
        await sleep(delayMs, undefined, { signal: this.health.stopSignal });
      } catch {
        return;
      }
      try {
        await this.spawnUntilReady();
        this.health.markReady();
        return;
      } catch (error) {
        if (this.isStopped()) return;
        this.log.error(`sd-webui restart failed: ${errorMessage(error)}`);
      }
    }
  }

  /**
   * An sd-webui left running by an earlier agent that died without cleaning up (SIGKILL, power
   * loss) holds the port and GPU memory: its pid file names it.
   */
  private async reapLeftover(): Promise<void> {
    const options = this.options as SpawnedWebuiOptions;
    if (options.pidFile) await reapLeftoverGroup(options.pidFile, options.killGraceMs ?? DEFAULT_KILL_GRACE_MS, this.log);
  }

  private async killChild(child: RunningChild): Promise<void> {
    child.expectedExit = true;
    const pid = child.process.pid;
    if (pid === undefined) return;
    const graceMs = (this.options as SpawnedWebuiOptions).killGraceMs ?? DEFAULT_KILL_GRACE_MS;
    await stopGroup(pid, child.exited, graceMs, () => this.log.warn(`sd-webui (group ${pid}) did not stop within ${graceMs} ms; killing it`));
  }

  private captureOutput(child: ChildProcess): void {
    const echo = this.options.mode === "spawn" && this.options.echoOutput !== false;
    this.output.follow([child.stdout, child.stderr], echo ? this.log.child("webui") : null);
  }
}

function describeExit(exit: WebuiExit): string {
  return exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
}
