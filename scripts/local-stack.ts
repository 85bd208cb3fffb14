// The whole system on one machine: the Worker in workerd on local D1/R2/Durable Objects with
// migrations applied, and gpu-node agents as child processes, each supervising an sd-webui
// emulator exactly as it would a real sd-webui. Used by `npm start`, the end-to-end tests and
// bench/e2e. The Worker runs in a process of its own (scripts/gateway-process.ts), as
// `wrangler deploy` would upload it. Nothing here imports wrangler or Miniflare: once imported,
// they answer SIGINT and SIGTERM with an immediate exit, which would cut short the graceful
// stop of `npm start`.
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { DEV_ADMIN_TOKEN } from "./dev-secrets.ts";

export const ROOT = path.resolve(import.meta.dirname, "..");
export { DEV_ADMIN_TOKEN };
export const WRANGLER_ENV = { WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" };
/** `node --import <tsx> script`, with tsx resolved from this project so any working directory works. */
const tsxCommand = (script: string) => [process.execPath, "--import", import.meta.resolve("tsx"), path.join(ROOT, script)];

/** Signals every process in the group `pid` leads; a group that is already gone is fine. */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

export interface GatewayOptions {
  /** 0 picks a free port. */
  port?: number;
  /** Local D1/R2/DO state; a fresh temporary folder when absent. */
  persistDir?: string;
  /** Overrides of wrangler.toml [vars], e.g. a short LEASE_MS for tests. */
  vars?: Record<string, string>;
  /** Miniflare's own messages at this level and above; the Worker's console output is always shown unless "none". */
  logLevel?: "none" | "error" | "warn" | "info" | "debug";
}

export interface Gateway {
  url: string;
  persistDir: string;
  stop(): Promise<void>;
}

/**
 * Starts the Worker in a process of its own (scripts/gateway-process.ts), as a server is: the
 * caller's event loop — a test runner, a benchmark's client — does not share its work.
 */
export async function startGateway(options: GatewayOptions = {}): Promise<Gateway> {
  const persistDir = options.persistDir ?? mkdtempSync(path.join(os.tmpdir(), "sdgate-state-"));
  const [node, ...args] = tsxCommand("scripts/gateway-process.ts");
  const child = spawn(node!, [...args, JSON.stringify({ ...options, persistDir })], {
    cwd: ROOT,
    env: { ...process.env, ...WRANGLER_ENV },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    // A group of its own (with the workerd it starts): a Ctrl-C meant for the caller does not cut
    // the Worker away from under it — `npm start` first lets its agent drain and deregister.
    detached: true,
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const removeOwnState = () => {
    if (!options.persistDir) rmSync(persistDir, { recursive: true, force: true });
  };
  const url = await new Promise<string>((resolve, reject) => {
    child.once("message", (message) => resolve((message as { url: string }).url));
    void exited.then((code) => {
      removeOwnState();
      reject(new Error(`the Worker did not start (exit code ${code}); its output is above`));
    });
  });
  /** The caller is exiting without stop(): take the process and its workerd down with it. */
  const killNow = () => signalGroup(child.pid!, "SIGKILL");
  process.on("exit", killNow);
  return {
    url,
    persistDir,
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
      process.off("exit", killNow);
      removeOwnState();
    },
  };
}

/** Whether a server could listen on 127.0.0.1:`port` now (where the Worker listens). */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen({ host: "127.0.0.1", port, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

async function api<T>(gateway: string, token: string, method: string, route: string, body?: unknown, contentType = "application/json"): Promise<T> {
  const res = await fetch(`${gateway}${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": contentType }) },
    body: body === undefined ? undefined : body instanceof Uint8Array ? (body as Uint8Array<ArrayBuffer>) : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${route} answered ${res.status}: ${text}`);
  return (text ? JSON.parse(text) : null) as T;
}

export async function createKey(gateway: string, role: "admin" | "user" | "node" | "scaler", name: string, adminToken = DEV_ADMIN_TOKEN): Promise<string> {
  return (await api<{ token: string }>(gateway, adminToken, "POST", "/keys", { name, role })).token;
}

export interface DemoModel {
  name: string;
  /** Bytes of the stand-in checkpoint file (the emulator only hashes it). */
  sizeBytes: number;
  loadSeconds?: number;
  inferenceSeconds?: number;
}

export const DEMO_MODELS: DemoModel[] = [
  { name: "demo-v1", sizeBytes: 256 * 1024, loadSeconds: 5, inferenceSeconds: 2 },
  { name: "demo-xl", sizeBytes: 512 * 1024, loadSeconds: 12, inferenceSeconds: 4 },
];

/** Deterministic stand-in weights: the same name always gives the same file and sha256. */
export function demoCheckpointBytes(model: DemoModel): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(model.sizeBytes);
  let block = createHash("sha256").update(model.name).digest();
  for (let offset = 0; offset < out.length; offset += block.length) {
    out.set(block.subarray(0, Math.min(block.length, out.length - offset)), offset);
    block = createHash("sha256").update(block).digest();
  }
  return out;
}

/** Registers each model (skipping ones already there) and uploads its file. */
export async function registerModels(gateway: string, models: readonly DemoModel[], adminToken = DEV_ADMIN_TOKEN): Promise<void> {
  const existing = new Set(
    (await api<Array<{ name: string; sha256: string | null }>>(gateway, adminToken, "GET", "/models")).filter((m) => m.sha256).map((m) => m.name),
  );
  for (const model of models) {
    if (existing.has(model.name)) continue;
    await api(gateway, adminToken, "DELETE", `/models/${model.name}`).catch(() => undefined);
    await api(gateway, adminToken, "POST", "/models", { name: model.name, loadSeconds: model.loadSeconds, inferenceSeconds: model.inferenceSeconds });
    await api(gateway, adminToken, "PUT", `/models/${model.name}/file`, demoCheckpointBytes(model), "application/octet-stream");
  }
}

export interface AgentOptions {
  gateway: string;
  token: string;
  nodeId: string;
  /**
   * The agent's own folder: the emulator's models folder (the checkpoint cache) lives in it.
   * Without one, a temporary folder is used and removed once the agent has exited.
   */
  workDir?: string;
  stepMs?: number;
  loadMs?: number;
  /** Start the emulator as if sd-webui-controlnet were installed. Default false. */
  controlnet?: boolean;
  /**
   * Checkpoints sd-webui holds in RAM besides the loaded one (the agent's --ram-checkpoints).
   * Default 0, not the agent's own default from this machine's RAM: every switch then costs
   * --load-ms, as the placement traces and simulator assume for nodes that declare no RAM cache.
   */
  ramCheckpoints?: number;
  gpuClass?: string;
  gpuMemoryMb?: number;
  logLevel?: "debug" | "info" | "warn" | "error" | "silent";
  /** Where the agent's output goes; "inherit" shows it in this terminal. */
  stdio?: "inherit" | "pipe" | "ignore";
  extraArgs?: string[];
}

export interface RunningAgent {
  nodeId: string;
  /** sd-webui's --data-dir: add-ons land in its models/Lora, models/VAE, models/ControlNet, … */
  dataDir: string;
  modelsDir: string;
  process: ChildProcess;
  /** Resolves with the exit code once the agent process has ended. */
  exited: Promise<number | null>;
  output(): string;
  /** SIGTERM once: drain and leave; `hard` also sends a second signal. */
  stop(hard?: boolean): Promise<number | null>;
  /** SIGKILL the agent and everything it started, as a crashed machine would. */
  kill(): Promise<number | null>;
  /** The same, synchronously (for exit handlers). */
  killNow(): void;
}

/** The pid of the sd-webui an agent started, from the record the agent keeps beside the models. */
function webuiPidOf(modelsDir: string): number {
  try {
    return (JSON.parse(readFileSync(path.join(modelsDir, ".sdgate-webui.pid"), "utf8")) as { pid: number }).pid;
  } catch {
    return 0;
  }
}

/** Starts a gpu-node agent that supervises an sd-webui emulator (the same code path as a real sd-webui). */
export function startAgent(options: AgentOptions): RunningAgent {
  const workDir = options.workDir ?? mkdtempSync(path.join(os.tmpdir(), `sdgate-${options.nodeId}-`));
  const modelsDir = path.join(workDir, "models", "Stable-diffusion");
  mkdirSync(modelsDir, { recursive: true });
  const webuiCmd = [
    ...tsxCommand("emulator/main.ts"),
    "--api",
    "--nowebui",
    "--no-download-sd-model",
    "--data-dir",
    "{data_dir}",
    "--port",
    "{port}",
    "--step-ms",
    String(options.stepMs ?? 40),
    "--load-ms",
    String(options.loadMs ?? 500),
    ...(options.controlnet ? ["--controlnet"] : []),
  ]
    .map((w) => (w.includes(" ") ? `"${w}"` : w))
    .join(" ");
  const child = spawn(
    tsxCommand("gpu-node/main.ts")[0]!,
    [
      ...tsxCommand("gpu-node/main.ts").slice(1),
      "--gateway",
      options.gateway,
      "--node-id",
      options.nodeId,
      "--webui-cmd",
      webuiCmd,
      "--webui-dir",
      workDir,
      "--webui-port",
      "0",
      "--models-dir",
      modelsDir,
      "--gpu-class",
      options.gpuClass ?? "emulator",
      "--gpu-memory-mb",
      String(options.gpuMemoryMb ?? 24_000),
      "--log-level",
      options.logLevel ?? "info",
      "--ram-checkpoints",
      String(options.ramCheckpoints ?? 0),
      ...(options.extraArgs ?? []),
    ],
    {
      cwd: ROOT,
      env: { ...process.env, SDGATE_NODE_TOKEN: options.token },
      stdio: options.stdio === "inherit" ? "inherit" : ["ignore", "pipe", "pipe"],
      detached: true,
    },
  );
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code))).then((code) => {
    if (!options.workDir) rmSync(workDir, { recursive: true, force: true });
    return code;
  });
  /** SIGKILL the agent's group and the sd-webui it started (its own group; the agent records its pid). */
  const killNow = () => {
    const webuiPid = webuiPidOf(modelsDir);
    signalGroup(child.pid!, "SIGKILL");
    if (webuiPid > 0) signalGroup(webuiPid, "SIGKILL");
  };
  return {
    nodeId: options.nodeId,
    dataDir: workDir,
    modelsDir,
    process: child,
    exited,
    output: () => output,
    stop: async (hard = false) => {
      child.kill("SIGTERM");
      if (hard) setTimeout(() => child.kill("SIGTERM"), 600).unref();
      return exited;
    },
    killNow,
    kill: async () => {
      killNow();
      return exited;
    },
  };
}
