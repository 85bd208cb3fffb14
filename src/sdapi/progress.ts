// sd-webui's global state, per caller: GET /sdapi/v1/progress and POST /sdapi/v1/interrupt act on
// the caller's own current job — its most recent running task, else its most recent waiting one
// (generations and upscales; passthrough calls are not jobs). Progress is sd-webui's §2.5 shape,
// built from the live progress the node reports.
import type { TaskRow } from "../db/tasks";
import type { LiveStatus } from "../queue/types";

export interface WebuiProgress {
  progress: number;
  eta_relative: number;
  state: Record<string, unknown>;
  current_image: string | null;
  textinfo: string | null;
}

const IDLE_STATE = {
  skipped: false,
  interrupted: false,
  stopping_generation: false,
  job: "",
  job_count: 0,
  job_timestamp: "0",
  job_no: 0,
  sampling_step: 0,
  sampling_steps: 0,
};

/** What sd-webui answers when nothing runs (clients such as `waitForReady` test progress 0 and job_count 0). */
export function idleProgress(): WebuiProgress {
  return { progress: 0, eta_relative: 0, state: { ...IDLE_STATE }, current_image: null, textinfo: null };
}

/** sd-webui's job_timestamp: local "YYYYMMDDhhmmss" (here UTC). */
export function jobTimestamp(epochMs: number): string {
  return new Date(epochMs).toISOString().replace(/[-:T]/g, "").slice(0, 14);
}

function rawBase64(image: string | null): string | null {
  if (!image) return null;
  return image.startsWith("data:") ? image.slice(image.indexOf(",") + 1) : image;
}

export function progressAnswer(task: TaskRow | null, live: LiveStatus | null, skipCurrentImage: boolean): WebuiProgress {
  if (!task || !live) return idleProgress();
  if (live.state === "waiting") {
    return {
      progress: 0,
      eta_relative: 0,
      // job_count 1: a queued job is not "idle" to clients that wait for progress 0 and job_count 0.
      state: { ...IDLE_STATE, job: "queued", job_count: 1, job_timestamp: jobTimestamp(task.createdAt) },
      current_image: null,
      textinfo: `In queue: ${live.queuePosition}`,
    };
  }
  const report = live.progress;
  const reported = report?.state ?? {};
  const state: Record<string, unknown> = {
    ...IDLE_STATE,
    job: task.kind,
    job_count: 1,
    job_timestamp: jobTimestamp(task.startedAt ?? task.createdAt),
    ...reported,
  };
  // The node may still be loading the model while sd-webui itself reports idle: still a job.
  if (typeof state.job_count !== "number" || state.job_count === 0) state.job_count = 1;
  if (live.cancelRequested) state.interrupted = true;
  return {
    // sd-webui starts a running job at 0.01, never 0.
    progress: Math.min(1, Math.max(0.01, report?.progress ?? 0)),
    eta_relative: report?.etaRelative ?? 0,
    state,
    current_image: skipCurrentImage ? null : rawBase64(report?.currentImage ?? null),
    textinfo: report?.textinfo ?? null,
  };
}
