// Shared helpers for the agent tests: their common teardown, temp folders, model bytes, PNGs, and
// agents wired to a test gateway with fast timings. Set SDGATE_TEST_LOG=1 to see the agents' logs.
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { PNG } from "pngjs";
import { afterEach, expect } from "vitest";
import { GpuNodeAgent, type GpuNodeAgentDeps } from "../../../gpu-node/agent.ts";
import type { AgentConfigInput } from "../../../gpu-node/config.ts";
import { createLogger, type Logger, silentLogger } from "../../../gpu-node/logger.ts";
import type { ModelType } from "../../../src/protocol/model-types.ts";
import type { TestGateway } from "./test-gateway.ts";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const TSX_CLI = path.join(REPO_ROOT, "node_modules/tsx/dist/cli.mjs");

/** The emulator as a child process, for supervisor tests (the agent substitutes the placeholders). */
export function emulatorCommand(options: { stepMs: number; loadMs: number; controlnet?: boolean }): string {
  return (
    `"${process.execPath}" "${TSX_CLI}" emulator/main.ts --api --nowebui --no-download-sd-model --data-dir {data_dir} --port {port} ` +
    `--step-ms ${options.stepMs} --load-ms ${options.loadMs}${options.controlnet ? " --controlnet" : ""}`
  );
}

/** Agent settings that have it start and supervise the emulator itself, as it would start sd-webui. */
export function supervisedEmulator(options: { stepMs: number; loadMs: number }): { webuiCmd: string; webuiDir: string; webuiPort: number } {
  return { webuiCmd: emulatorCommand(options), webuiDir: REPO_ROOT, webuiPort: 0 };
}

/** sd-webui's checkpoint folder under its data directory (the agent's default for --models-dir). */
export function checkpointsDirOf(dataDir: string): string {
  return path.join(dataDir, "models", "Stable-diffusion");
}

export function testLogger(scope: string): Logger {
  return process.env.SDGATE_TEST_LOG ? createLogger({ level: "debug", scope }) : silentLogger;
}

const tempDirs: string[] = [];

export async function tempDir(prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `sdgate-${prefix}-`));
  tempDirs.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  await Promise.all(tempDirs.splice(0).map((dir) => fs.rm(dir, { recursive: true, force: true })));
}

/**
 * The agent tests' common teardown: registers an afterEach that runs `cleanups` (last pushed
 * first), checks every gateway in `gateways` saw only well-formed requests, and removes the temp
 * folders. Call once at a test file's top level; push to the arrays it returns.
 */
export function agentTestTeardown(): { cleanups: (() => Promise<void>)[]; gateways: TestGateway[] } {
  const cleanups: (() => Promise<void>)[] = [];
  const gateways: TestGateway[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    // Every request the agents made was well-formed.
    for (const gateway of gateways.splice(0)) expect(gateway.protocolErrors).toEqual([]);
    await removeTempDirs();
  });
  return { cleanups, gateways };
}

/** Deterministic pseudo-random bytes standing in for a checkpoint file. */
export function modelBytes(size: number, seed: number): Buffer {
  const bytes = Buffer.alloc(size);
  let state = seed * 2654435761 + 1;
  for (let i = 0; i < size; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    bytes[i] = state >>> 24;
  }
  return bytes;
}

/**
 * A safetensors file with no tensors whose metadata says which kind of model it is, the way the
 * emulator reads model files (`__metadata__.sdgate_emulator_type`, emulator/model-file-kind.ts):
 * an add-on, or a LoRA posing as a checkpoint that sd-webui fails to load.
 */
export function safetensorsBytes(type: ModelType, seed: number): Buffer {
  const header = Buffer.from(JSON.stringify({ __metadata__: { sdgate_emulator_type: type, seed: String(seed) } }));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([length, header]);
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

export async function fileSha256(filePath: string): Promise<string | null> {
  try {
    return sha256(await fs.readFile(filePath));
  } catch {
    return null;
  }
}

export async function exists(filePath: string): Promise<boolean> {
  try {
    await fs.stat(filePath);
    return true;
  } catch {
    return false;
  }
}

/** A small solid-colour PNG (an input image). */
export function solidPng(width: number, height: number, rgb: [number, number, number]): Buffer {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) {
    png.data[i * 4] = rgb[0];
    png.data[i * 4 + 1] = rgb[1];
    png.data[i * 4 + 2] = rgb[2];
    png.data[i * 4 + 3] = 255;
  }
  return PNG.sync.write(png);
}

export function decodePng(bytes: Buffer): { width: number; height: number } {
  const png = PNG.sync.read(bytes);
  return { width: png.width, height: png.height };
}

/** A data URI or raw base64 image → bytes. */
export function imageBytes(image: string): Buffer {
  const comma = image.startsWith("data:") ? image.indexOf(",") : -1;
  return Buffer.from(comma >= 0 ? image.slice(comma + 1) : image, "base64");
}

export function agentFor(
  gateway: TestGateway,
  config: Omit<AgentConfigInput, "gatewayUrl" | "token" | "dataDir"> & { token?: string; dataDir: string },
  deps: GpuNodeAgentDeps = {},
): GpuNodeAgent {
  return new GpuNodeAgent(
    {
      gatewayUrl: gateway.url,
      token: gateway.token,
      gpuClass: "test-gpu",
      gpuMemoryMb: 8192,
      progressIntervalMs: 100,
      ...config,
    },
    {
      logger: testLogger(String(config.nodeId ?? "agent")),
      progressOutput: null,
      echoWebuiOutput: false,
      webuiRestartBackoffMs: 200,
      webuiKillGraceMs: 3_000,
      downloadRetryDelayMs: 50,
      ...deps,
    },
  );
}

export const MB = 1024 * 1024;
export const GB = 1024 * MB;
