// What clients read about a task: its result (fresh signed URLs on every read) and its progress
// (the live state its queue reported while it waits or runs, final once it has ended).
import type { Config } from "../config";
import type { TaskRow } from "../db/tasks";
import type { LiveStatus } from "../queue/types";
import { signImageUrl } from "../storage/signed-url";

export function signedUrls(origin: string, config: Config, keys: readonly string[]): Promise<string[]> {
  return Promise.all(keys.map((key) => signImageUrl(origin, key, config)));
}

function message(task: TaskRow): string | undefined {
  if (task.status === "failed" || task.status === "cancelled") return task.error ?? undefined;
  return undefined;
}

/** The task's images while they are kept; none once retention or DELETE /tasks/{id} removed them. */
function keptImages(task: TaskRow): string[] {
  return task.imagesExpiredAt ? [] : task.imageKeys;
}

export async function resultView(origin: string, config: Config, task: TaskRow) {
  return {
    taskId: task.taskId,
    status: task.status,
    images: keptImages(task),
    ossUrl: await signedUrls(origin, config, keptImages(task)),
    imagesExpiredAt: task.imagesExpiredAt ? new Date(task.imagesExpiredAt).toISOString() : null,
    parameters: task.parameters ?? task.request,
    info: task.info ?? {},
    ...(task.passthroughResult ? { result: task.passthroughResult } : {}),
    ...(message(task) ? { message: message(task) } : {}),
    checkpoint: task.checkpoint,
    attempts: task.attempts,
    timings: {
      ...(task.startedAt ? { queuedMs: task.startedAt - task.createdAt } : {}),
      ...(task.startedAt && task.finishedAt ? { runMs: task.finishedAt - task.startedAt } : {}),
      ...(task.timings ?? {}),
    },
    createdAt: new Date(task.createdAt).toISOString(),
    startedAt: task.startedAt ? new Date(task.startedAt).toISOString() : null,
    finishedAt: task.finishedAt ? new Date(task.finishedAt).toISOString() : null,
  };
}

/** The submit answer of the original API: `{taskId, status, ossUrl[]}`. */
export async function submitView(origin: string, config: Config, task: TaskRow) {
  return {
    taskId: task.taskId,
    status: task.status,
    ossUrl: await signedUrls(origin, config, keptImages(task)),
    ...(message(task) ? { message: message(task) } : {}),
  };
}

export function progressView(task: TaskRow, live: LiveStatus | null) {
  const base = { taskId: task.taskId, attempts: task.attempts };
  if (live?.state === "waiting") {
    return {
      ...base,
      status: "waiting",
      progress: 0,
      etaRelative: 0,
      state: { job: "waiting in queue" },
      currentImage: null,
      queuePosition: live.queuePosition,
    };
  }
  if (live?.state === "running") {
    const p = live.progress;
    return {
      ...base,
      status: "running",
      progress: p?.progress ?? 0,
      etaRelative: p?.etaRelative ?? 0,
      state: { ...(p?.state ?? {}), ...(live.cancelRequested ? { cancelRequested: true } : {}) },
      currentImage: p?.currentImage ?? null,
      textinfo: p?.textinfo ?? null,
    };
  }
  return {
    ...base,
    status: task.status,
    progress: task.status === "succeeded" ? 1 : 0,
    etaRelative: 0,
    state: { job: task.status },
    currentImage: null,
    ...(message(task) ? { message: message(task) } : {}),
  };
}
