// Steps shared by the sd-webui surface tests: the node side of a task, run through the node protocol.
import { expect } from "vitest";
import type { ClaimResponse } from "../../src/protocol/node";
import { call, json, TINY_PNG } from "./helpers";

export const TINY_PNG_BASE64 = btoa(String.fromCharCode(...TINY_PNG));

export function basic(user: string, password: string): Record<string, string> {
  return { authorization: `Basic ${btoa(`${user}:${password}`)}` };
}

export interface Completion {
  images?: number;
  parameters?: Record<string, unknown>;
  info?: unknown;
  passthroughResult?: { status: number; body: unknown } | null;
}

/** The node uploads `images` PNGs and completes the task with what sd-webui answered. */
export async function completeTask(node: string, claimed: ClaimResponse, done: Completion = {}): Promise<void> {
  const { task, lease } = claimed;
  const images = done.images ?? (done.passthroughResult ? 0 : 1);
  for (let i = 0; i < images; i++) {
    await json(
      await call(`/nodes/tasks/${task.id}/images/${i}`, {
        method: "PUT",
        token: node,
        body: TINY_PNG,
        headers: { "lease-id": lease.id, "content-type": "image/png" },
      }),
      200,
    );
  }
  const body = {
    leaseId: lease.id,
    imageCount: images,
    parameters: done.parameters ?? task.payload,
    info: done.info ?? null,
    passthroughResult: done.passthroughResult ?? null,
  };
  await json(await call(`/nodes/tasks/${task.id}/complete`, { token: node, body }), 200);
}

export async function failTask(
  node: string,
  claimed: ClaimResponse,
  webuiError: { status: number; body: unknown } | null,
  error = "sd-webui refused",
): Promise<void> {
  await json(await call(`/nodes/tasks/${claimed.task.id}/fail`, { token: node, body: { leaseId: claimed.lease.id, error, webuiError } }), 200);
}

export async function reportProgress(node: string, claimed: ClaimResponse, report: Record<string, unknown>): Promise<{ cancel: boolean }> {
  return json<{ cancel: boolean }>(
    await call(`/nodes/tasks/${claimed.task.id}/progress`, { token: node, body: { leaseId: claimed.lease.id, ...report } }),
    200,
  );
}

export async function registerNodeWithCatalog(node: string, nodeId: string, catalog: Record<string, unknown[]>): Promise<void> {
  const body = { nodeId, loadedCheckpoint: null, cachedCheckpoints: [], gpuClass: "test-gpu", gpuMemoryMb: 24_000, catalog };
  await json(await call("/nodes/register", { token: node, body }), 200);
}

/** A decoded base64 image equals the PNG the node uploaded. */
export function expectTinyPng(base64: unknown): void {
  expect(typeof base64).toBe("string");
  expect(base64 as string).not.toMatch(/^data:/);
  expect(Uint8Array.from(atob(base64 as string), (ch) => ch.charCodeAt(0))).toEqual(TINY_PNG);
}

export async function taskIds(token: string): Promise<string[]> {
  const page = await json<{ tasks: Array<{ taskId: string }> }>(await call("/tasks?limit=100", { token }), 200);
  return page.tasks.map((t) => t.taskId);
}
