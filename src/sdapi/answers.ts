// sd-webui's answers built from an ended task: generation `{images, parameters, info: "<json>"}`,
// extras `{html_info, image}` / `{html_info, images}`, a passthrough's answer as the node got it,
// and sd-webui's own error answer when the node failed the task with one.

import { encodeBase64 } from "../crypto";
import type { TaskRow } from "../db/tasks";
import { replayPassthroughResult, type StoredPassthroughResult } from "../tasks/passthrough-images";
import { webuiErrorBody } from "./errors";

export interface WebuiAnswer {
  status: number;
  body: unknown;
}

/** Output images as raw base64, in order; an object that has gone missing is left out. */
export async function readImagesBase64(bucket: R2Bucket, keys: readonly string[]): Promise<string[]> {
  const images = await Promise.all(
    keys.map(async (key) => {
      const object = await bucket.get(key);
      return object ? encodeBase64(await object.arrayBuffer()) : null;
    }),
  );
  return images.filter((image): image is string => image !== null);
}

/** sd-webui sends `info` as a JSON string; the node gave it to us parsed (or as a string it could not parse). */
function infoString(info: unknown): string {
  if (typeof info === "string") return info;
  return JSON.stringify(info ?? {});
}

function failure(task: TaskRow): WebuiAnswer {
  if (task.webuiError) return { status: task.webuiError.status, body: task.webuiError.body };
  if (task.status === "cancelled") return { status: 500, body: webuiErrorBody(500, task.error ?? "The task was cancelled", "RuntimeError") };
  return { status: 500, body: webuiErrorBody(500, task.error ?? "The task failed", "RuntimeError") };
}

/** sd-webui's parameter echo as the client would see it: `force_task_id` is the one the client sent, not the node's. */
function clientParameters(task: TaskRow): Record<string, unknown> {
  if (!task.parameters) return task.request;
  if (!("force_task_id" in task.parameters)) return task.parameters;
  return { ...task.parameters, force_task_id: task.request.force_task_id ?? null };
}

export function stillRunningAnswer(task: TaskRow, waitedMs: number): WebuiAnswer {
  const detail = `Task ${task.taskId} is still ${task.status} after ${Math.round(waitedMs / 1000)} s; its result will be at /tasks/${encodeURIComponent(task.taskId)}/result`;
  return { status: 504, body: webuiErrorBody(504, detail) };
}

/**
 * The answer sd-webui would have given for this task. A cancelled (interrupted) generation answers
 * 200 with what it had, as sd-webui does after an interrupt.
 */
export async function taskAnswer(bucket: R2Bucket, task: TaskRow, waitedMs: number): Promise<WebuiAnswer> {
  if (task.status === "waiting" || task.status === "running") return stillRunningAnswer(task, waitedMs);
  if (task.status === "failed") return failure(task);
  if (task.kind === "passthrough") {
    if (!task.passthroughResult) return failure(task);
    return replayPassthroughResult(bucket, task.passthroughResult as StoredPassthroughResult);
  }
  const images = await readImagesBase64(bucket, task.imageKeys);
  switch (task.kind) {
    case "extras":
      return { status: 200, body: { html_info: typeof task.info === "string" ? task.info : "", image: images[0] ?? null } };
    case "extras_batch":
      return { status: 200, body: { html_info: typeof task.info === "string" ? task.info : "", images } };
    default:
      return { status: 200, body: { images, parameters: clientParameters(task), info: infoString(task.info) } };
  }
}

/** A JSON Response with any status a node reported (null-body statuses get no body). */
export function answerResponse(answer: WebuiAnswer, headers: Record<string, string> = {}): Response {
  const status = answer.status >= 200 && answer.status <= 599 ? answer.status : 502;
  if (status === 204 || status === 205 || status === 304) return new Response(null, { status, headers });
  return new Response(JSON.stringify(answer.body ?? null), { status, headers: { "content-type": "application/json", ...headers } });
}
