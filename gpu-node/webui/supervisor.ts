// Runs sd-webui as a child process (or watches one started elsewhere): spawn in its own process
// group, wait until GET /sdapi/v1/sd-models answers 200 while racing an early exit and a
// deadline, restart after a crash with exponential backoff, and kill the whole group (python
// plus whatever it started) on stop. Every start error carries the tail of sd-webui's output.
import { spawn, type ChildProcess } from "node:child_process";
import { EventEmitter } from "node:events";
import { rmSync } from "node:fs";
import fs from "node:fs/promises";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { splitCommandLine } from "../command-line.ts";
import { errorMessage, type Logger } from "../logger.ts";
import { WebuiClient } from "./client.ts";

const OUTPUT_TAIL_LINES = 40;
const READY_POLL_MS = 500;
const RESTART_BACKOFF_INITIAL_MS = 1_000;
const RESTART_BACKOFF_MAX_MS = 60_000;
/** A started sd-webui that stops answering this long is killed (and restarted). */
const UNRESPONSIVE_KILL_MS = 120_000;
/** A process that stayed up this long resets the crash backoff. */
const STABLE_RUN_MS = 60_000;

export interface SpawnedWebuiOptions {
  mode: "spawn";
  /** Command line; `{port}` and `{models_dir}` are substituted in each word. */
  command: string;
  cwd: string;
  /** 0 picks a free port once; restarts keep it. */
  port: number;
  modelsDir: string;
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

export class WebuiStoppedError extends Error {
  override name = "WebuiStoppedError";
  constructor() {
    super("sd-webui supervisor stopped");
  }
}

/** checking: sd-webui stopped answering and is being polled; recovering: restarting after a crash. */
type State = "new" | "starting" | "ready" | "checking" | "recovering" | "stopped";

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
  private state: State = "new";
  /** Counts the times sd-webui became ready: anything learnt about it holds for one generation only. */
  generation = 0;
  private child: RunningChild | null = null;
  private tail: string[] = [];
  private extraArgs = "";
  private port: number | null = null;
  private webuiClient: WebuiClient | null = null;
  private backoffMs: number;
  private readonly stopController = new AbortController();
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

  private isStopped(): boolean {
    return this.state === "stopped";
  }

  get ready(): boolean {
    return this.state === "ready";
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
    if (this.state !== "new") throw new Error(`cannot start sd-webui supervisor in state ${this.state}`);
    this.state = "starting";
    try {
      if (this.options.mode === "spawn") {
        await this.reapLeftover();
        await this.spawnUntilReady();
      } else await this.waitForAttached(Date.now() + this.options.startTimeoutMs);
      this.markReady();
    } catch (error) {
      if (!this.isStopped()) this.state = "new";
      throw error;
    }
  }

  /** Resolves once sd-webui is ready (waiting through restarts); rejects when stopped or aborted. */
  waitReady(signal?: AbortSignal): Promise<void> {
    if (this.state === "ready") return Promise.resolve();
    if (this.isStopped()) return Promise.reject(new WebuiStoppedError());
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        this.off("ready", onReady);
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
      this.on("ready", onReady);
      this.stopController.signal.addEventListener("abort", onStop, { once: true });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * Talking to sd-webui failed (connection refused or dropped). Until it answers again nothing
   * waiting in waitReady() proceeds: a crashed process is restarted by the exit handler, a hung
   * one is killed after a while, an attached one is polled until it is back.
   */
  markUnhealthy(): void {
    if (this.state !== "ready") return;
    this.state = "checking";
    this.log.warn(`sd-webui at ${this.client.baseUrl} stopped answering; checking on it`);
    this.recovering = this.recheck();
  }

  private async recheck(): Promise<void> {
    const client = this.client;
    const killAt = this.options.mode === "spawn" ? Date.now() + UNRESPONSIVE_KILL_MS : Number.POSITIVE_INFINITY;
    while (this.state === "checking") {
      if (await client.isReady()) {
        if (this.state === "checking") {
          this.log.info("sd-webui answers again");
          this.markReady();
        }
        return;
      }
      if (Date.now() > killAt) {
        this.log.error(`sd-webui has not answered for ${UNRESPONSIVE_KILL_MS / 1000} s; killing it`);
        this.killGroupNow("SIGKILL"); // the exit handler restarts it
        return;
      }
      try {
        await sleep(READY_POLL_MS, undefined, { signal: this.stopController.signal });
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
    if (this.state !== "ready") {
      this.log.info("sd-webui restart requested while it is (re)starting; nothing to do");
      return;
    }
    this.log.info("restarting sd-webui");
    this.state = "starting";
    if (this.child) await this.killChild(this.child);
    try {
      await this.spawnUntilReady();
      this.markReady();
    } catch (error) {
      if (this.isStopped()) throw error;
      this.log.error(`sd-webui did not come back after a restart: ${errorMessage(error)}`);
      this.scheduleRecovery();
      throw error;
    }
  }

  /** Stops supervising; kills the process group when the agent started sd-webui. */
  async stop(): Promise<void> {
    if (this.isStopped()) return;
    this.state = "stopped";
    this.stopController.abort();
    if (this.child) await this.killChild(this.child);
    process.off("exit", this.killOnExit);
    await this.recovering?.catch(() => undefined);
  }

  /** Sends a signal to sd-webui's process group right away (used on a hard stop). */
  killGroupNow(signal: NodeJS.Signals): void {
    const child = this.child;
    if (child && !child.hasExited && child.process.pid !== undefined) signalGroup(child.process.pid, signal);
  }

  private markReady(): void {
    if (this.isStopped()) return;
    this.state = "ready";
    this.generation += 1;
    this.emit("ready");
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
    const substitute = (word: string) => word.replaceAll("{port}", String(port)).replaceAll("{models_dir}", options.modelsDir);
    const argv = [...splitCommandLine(options.command), ...splitCommandLine(this.extraArgs)].map(substitute);
    const [program, ...args] = argv;
    if (!program) throw new WebuiStartError("the sd-webui command is empty", []);

    if (options.port !== 0 && !(await portIsFree(port))) {
      throw new WebuiStartError(
        `port ${port} is already in use: is an sd-webui from an earlier run still running? Stop it, pick another --webui-port, or attach to it with --webui-url`,
        [],
      );
    }
    this.tail = [];
    this.log.info(`starting sd-webui: ${argv.join(" ")} (in ${options.cwd})`);
    const env = { ...(options.env ?? process.env) };
    // sd-webui and its extensions have no business with the node token.
    delete env.SDGATE_NODE_TOKEN;
    const child = spawn(program, args, { cwd: options.cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    const running: RunningChild = {
      process: child,
      hasExited: false,
      expectedExit: false,
      startedAt: Date.now(),
      exited: new Promise<WebuiExit>((resolve) => {
        let spawnError: Error | null = null;
        child.once("error", (error) => {
          spawnError = error;
          this.appendOutput(`[${errorMessage(error)}]`);
          // A failed spawn emits no "exit"; "close" follows once the pipes are closed.
        });
        child.once("close", (code, signal) => {
          running.hasExited = true;
          if (options.pidFile) rmSync(options.pidFile, { force: true });
          resolve({ code: code ?? (spawnError ? 127 : null), signal, tail: [...this.tail] });
        });
      }),
    };
    this.child = running;
    if (options.pidFile && child.pid !== undefined) {
      const record: PidRecord = { pid: child.pid, argv, startedAt: new Date().toISOString() };
      await fs.writeFile(options.pidFile, JSON.stringify(record)).catch((error) => this.log.warn(`cannot write ${options.pidFile}: ${errorMessage(error)}`));
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
      const outcome = await Promise.race([
        exitedEarly,
        client.isReady(Math.min(5_000, Math.max(deadline - Date.now(), 1))).then((ready) => ({ ready })),
      ]);
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
        throw new WebuiStartError(`sd-webui was not ready after ${Math.round(options.startTimeoutMs / 1000)} s`, this.tail);
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
      if (this.stopController.signal.aborted) throw new WebuiStoppedError();
      if (await client.isReady(Math.min(5_000, Math.max(deadline - Date.now(), 1)))) return;
      if (Date.now() >= deadline) {
        throw new WebuiStartError(`sd-webui at ${client.baseUrl} did not answer GET /sdapi/v1/sd-models within the start timeout`, []);
      }
      if (!logged) {
        this.log.info(`waiting for sd-webui at ${client.baseUrl}`);
        logged = true;
      }
      await sleep(READY_POLL_MS, undefined, { signal: this.stopController.signal }).catch(() => undefined);
    }
  }

  private onChildExit(child: RunningChild, exit: WebuiExit): void {
    if (child.expectedExit || this.child !== child) return;
    // Start errors are reported by spawnUntilReady; only a process that was up counts as a crash.
    if (this.state !== "ready" && this.state !== "checking") return;
    this.log.error(`sd-webui exited unexpectedly (${describeExit(exit)}); last output:\n  ${exit.tail.join("\n  ")}`);
    // Whatever it started (workers holding the port or GPU memory) goes with it.
    if (child.process.pid !== undefined) signalGroup(child.process.pid, "SIGKILL");
    if (Date.now() - child.startedAt > STABLE_RUN_MS) this.backoffMs = this.options.restartBackoffInitialMs ?? RESTART_BACKOFF_INITIAL_MS;
    this.state = "recovering";
    this.emit("crash", exit);
    this.scheduleRecovery();
  }

  private scheduleRecovery(): void {
    if (this.isStopped()) return;
    this.state = "recovering";
    this.recovering = this.recover();
  }

  private async recover(): Promise<void> {
    const maxMs = this.options.restartBackoffMaxMs ?? RESTART_BACKOFF_MAX_MS;
    while (this.state === "recovering") {
      const delayMs = this.backoffMs;
      this.backoffMs = Math.min(this.backoffMs * 2, maxMs);
      this.log.info(`restarting sd-webui in ${delayMs} ms`);
      try {
        await sleep(delayMs, undefined, { signal: this.stopController.signal });
      } catch {
        return;
      }
      try {
        await this.spawnUntilReady();
        this.markReady();
        return;
      } catch (error) {
        if (this.isStopped()) return;
        this.log.error(`sd-webui restart failed: ${errorMessage(error)}`);
      }
    }
  }

  /**
   * An sd-webui left running by an earlier agent that died without cleaning up (SIGKILL, power
   * loss) holds the port and GPU memory. Its pid file names it; it is stopped only when the
   * process still runs the command that was recorded (a reused pid is left alone).
   */
  private async reapLeftover(): Promise<void> {
    const pidFile = (this.options as SpawnedWebuiOptions).pidFile;
    if (!pidFile) return;
    let record: PidRecord;
    try {
      record = JSON.parse(await fs.readFile(pidFile, "utf8")) as PidRecord;
    } catch {
      return;
    }
    const cmdline = await fs.readFile(`/proc/${record.pid}/cmdline`, "utf8").catch(() => null);
    const running = cmdline?.split("\0").filter(Boolean).join("\0");
    if (typeof record.pid === "number" && Array.isArray(record.argv) && running === record.argv.join("\0") && groupAlive(record.pid)) {
      this.log.warn(`stopping sd-webui (pid ${record.pid}) left over from an earlier run`);
      signalGroup(record.pid, "SIGTERM");
      const deadline = Date.now() + ((this.options as SpawnedWebuiOptions).killGraceMs ?? 10_000);
      while (groupAlive(record.pid) && Date.now() < deadline) await sleep(100);
      if (groupAlive(record.pid)) signalGroup(record.pid, "SIGKILL");
      while (groupAlive(record.pid) && Date.now() < deadline + 5_000) await sleep(100);
    }
    await fs.rm(pidFile, { force: true });
  }

  private async killChild(child: RunningChild): Promise<void> {
    child.expectedExit = true;
    const pid = child.process.pid;
    if (pid === undefined) return;
    const graceMs = (this.options as SpawnedWebuiOptions).killGraceMs ?? 10_000;
    const deadline = Date.now() + graceMs;
    if (!signalGroup(pid, "SIGTERM")) {
      await Promise.race([child.exited, sleep(1_000)]);
      return;
    }
    await Promise.race([child.exited, sleep(graceMs)]);
    // The leader may be gone while others in its group linger.
    while (groupAlive(pid) && Date.now() < deadline) await sleep(100);
    if (groupAlive(pid)) {
      this.log.warn(`sd-webui (group ${pid}) did not stop within ${graceMs} ms; killing it`);
      signalGroup(pid, "SIGKILL");
    }
    await Promise.race([child.exited, sleep(5_000)]);
  }

  private captureOutput(child: ChildProcess): void {
    const echo = this.options.mode === "spawn" && this.options.echoOutput !== false;
    const webuiLog = this.log.child("webui");
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      let partial = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => {
        const lines = (partial + chunk).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) {
          const text = lastCarriageSegment(line);
          this.appendOutput(text);
          if (echo && text.trim()) webuiLog.info(text);
        }
        // Progress bars redraw with \r and may never end a line: keep the tail current anyway.
        if (partial.length > 4096) {
          this.appendOutput(lastCarriageSegment(partial));
          partial = "";
        }
      });
      stream.on("end", () => {
        if (partial.trim()) this.appendOutput(lastCarriageSegment(partial));
        partial = "";
      });
    }
  }

  private appendOutput(line: string): void {
    const text = line.trimEnd();
    if (!text) return;
    this.tail.push(text.length > 500 ? `${text.slice(0, 500)}…` : text);
    if (this.tail.length > OUTPUT_TAIL_LINES) this.tail.splice(0, this.tail.length - OUTPUT_TAIL_LINES);
  }
}

function lastCarriageSegment(line: string): string {
  const segments = line.split("\r").filter((segment) => segment.trim() !== "");
  return segments[segments.length - 1] ?? "";
}

function describeExit(exit: WebuiExit): string {
  return exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
}

interface PidRecord {
  pid: number;
  argv: string[];
  startedAt: string;
}

function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once("error", () => resolve(false));
    server.listen(port, "0.0.0.0", () => server.close(() => resolve(true)));
  });
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
