// Shared steps of the Worker tests: call the Worker in workerd, make keys, models and nodes.
import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";
import type { ClaimResponse, TaskTimings } from "../../src/protocol/node";
import type { CheckpointQueue } from "../../src/queue/checkpoint-queue";
import type { QueuedTask, TenantShare } from "../../src/queue/types";

// The development ADMIN_TOKEN and SIGNING_SECRET: dev.vars (vitest.workers.config.ts), as the Worker sees them.
if (!env.ADMIN_TOKEN || !env.SIGNING_SECRET) throw new Error("the Worker tests need ADMIN_TOKEN and SIGNING_SECRET from dev.vars");
export const ADMIN = env.ADMIN_TOKEN;
export const SIGNING_SECRET = env.SIGNING_SECRET;
export const BASE = "http://sdgate.test";

/** A valid 1×1 PNG. */
export const TINY_PNG = Uint8Array.from(atob("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="), (ch) =>
  ch.charCodeAt(0),
);

/** A PNG larger than the inline limit: the tiny PNG padded with a trailing chunk-free tail. */
export function largePngBase64(bytes = 8192): string {
  const big = new Uint8Array(bytes);
  big.set(TINY_PNG);
  let binary = "";
  for (const b of big) binary += String.fromCharCode(b);
  return btoa(binary);
}

export interface CallOptions {
  method?: string;
  token?: string | null;
  body?: unknown;
  headers?: Record<string, string>;
}

export function call(path: string, options: CallOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: BodyInit | undefined;
  if (options.body instanceof Uint8Array || typeof options.body === "string") body = options.body as BodyInit;
  else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers["content-type"] ??= "application/json";
  }
  return exports.default.fetch(`${BASE}${path}`, { method: options.method ?? (body === undefined ? "GET" : "POST"), headers, body });
}

export async function json<T = Record<string, unknown>>(res: Response, status?: number): Promise<T> {
  const text = await res.text();
  if (status !== undefined) expect(res.status, text).toBe(status);
  return JSON.parse(text) as T;
}

export async function createKey(role: "user" | "admin" | "node" | "scaler", name = `${role}-key`): Promise<string> {
  const res = await call("/keys", { token: ADMIN, body: { name, role } });
  return (await json<{ token: string }>(res, 201)).token;
}

/** Registers a model and uploads a small file for it, so tasks can be submitted. */
export async function createModel(name: string, content = `weights of ${name}`): Promise<{ sha256: string }> {
  await json(await call("/models", { token: ADMIN, body: { name } }), 201);
  const res = await call(`/models/${name}/file`, { method: "PUT", token: ADMIN, body: new TextEncoder().encode(content) });
  return json<{ sha256: string }>(res, 200);
}

export async function registerNode(token: string, nodeId: string, loadedCheckpoint: string | null = null): Promise<void> {
  const res = await call("/nodes/register", {
    token,
    body: { nodeId, loadedCheckpoint, cachedCheckpoints: loadedCheckpoint ? [loadedCheckpoint] : [], gpuClass: "test-gpu", gpuMemoryMb: 24_000 },
  });
  await json(res, 200);
}

export async function claim(token: string, nodeId: string, waitMs = 1000): Promise<ClaimResponse | null> {
  const res = await call(`/nodes/${nodeId}/claim`, { token, body: { waitMs } });
  if (res.status === 204) return null;
  return json<ClaimResponse>(res, 200);
}

export async function submit(token: string, body: Record<string, unknown>, headers: Record<string, string> = {}, path = "/txt2img"): Promise<Response> {
  return call(path, { token, body, headers: { "request-type": "async", ...headers } });
}

export function queueOf(checkpoint: string): DurableObjectStub<CheckpointQueue> {
  return env.CHECKPOINT_QUEUE.get(env.CHECKPOINT_QUEUE.idFromName(checkpoint));
}

/** Moves a queue's clock forward and runs its alarm, as if that much time had passed. */
export async function advanceQueueClock(checkpoint: string, byMs: number): Promise<void> {
  const stub = queueOf(checkpoint);
  await runInDurableObject(stub, (queue: CheckpointQueue) => {
    const base = queue.clock;
    queue.clock = () => base() + byMs;
  });
}

/** A node runs a claimed task to success: progress, one image, complete (reporting `timings`, if given). */
export async function finishTask(token: string, claimed: ClaimResponse, images = 1, timings?: TaskTimings): Promise<void> {
  const { task, lease } = claimed;
  await json(await call(`/nodes/tasks/${task.id}/progress`, { token, body: { leaseId: lease.id, progress: 0.5 } }), 200);
  for (let i = 0; i < images; i++) {
    await json(
      await call(`/nodes/tasks/${task.id}/images/${i}`, {
        method: "PUT",
        token,
        body: TINY_PNG,
        headers: { "lease-id": lease.id, "content-type": "image/png" },
      }),
      200,
    );
  }
  const res = await call(`/nodes/tasks/${task.id}/complete`, {
    token,
    body: { leaseId: lease.id, imageCount: images, parameters: task.payload, info: { seed: 1 }, ...(timings ? { timings } : {}) },
  });
  await json(res, 200);
}

/** A txt2img task as a submission enqueues it (no D1 row, no webhook), for driving a queue over RPC. */
export function queuedTask(
  uid: string,
  owner: string,
  options: { taskId?: string; checkpoint?: string; sha256?: string; priority?: number; tenant?: TenantShare; payload?: Record<string, unknown> } = {},
): QueuedTask {
  const checkpoint = options.checkpoint ?? "test";
  return {
    uid,
    taskId: options.taskId ?? uid,
    owner,
    priority: options.priority ?? 0,
    claim: {
      id: uid,
      kind: "txt2img",
      model: { name: checkpoint, fileName: `${checkpoint}.safetensors`, sha256: options.sha256 ?? "0".repeat(64), sizeBytes: 1 },
      vae: null,
      addons: [],
      payload: options.payload ?? {},
      inputs: [],
      passthrough: null,
      timeoutSeconds: 60,
      keepInterruptedImages: false,
    },
    row: null,
    webhook: null,
    tenant: options.tenant,
  };
}
