// Pure rules of a task's life in its queue: lease deadlines and what an ended lease means.

export function leaseDeadline(nowMs: number, leaseMs: number): number {
  return nowMs + leaseMs;
}

export type AfterLostLease = "requeue" | "fail" | "cancel";

/**
 * Why a run ended without a result: the task itself (a retryable error the node reported), or
 * the infrastructure under it (the node was lost or its lease ran out, sd-webui crashed, the node
 * shut down) — which says nothing about the task, so it has its own, larger bound.
 */
export type LossCause = "task" | "infrastructure";

/** A task's runs so far: `attempts` counts claims, `infraLosses` those lost to the infrastructure. */
export interface RunCounts {
  attempts: number;
  infraLosses: number;
}

export interface RetryLimits {
  /** Runs the task itself may fail (retryably) before it fails for good. */
  maxAttempts: number;
  /** Runs the infrastructure may lose before the task fails for good. */
  maxInfraRetries: number;
}

/**
 * A run ended without a result (`runs` counted before this loss): the task goes back to the
 * queue unless it was cancelled or this kind of loss has used up its bound.
 */
export function afterLostLease(cause: LossCause, runs: RunCounts, limits: RetryLimits, cancelRequested: boolean): AfterLostLease {
  if (cancelRequested) return "cancel";
  if (cause === "infrastructure") return runs.infraLosses + 1 <= limits.maxInfraRetries ? "requeue" : "fail";
  return runs.attempts - runs.infraLosses < limits.maxAttempts ? "requeue" : "fail";
}

export function exhaustedReason(cause: LossCause, runs: number, lastError: string | null): string {
  const why = lastError ?? "the node stopped reporting and its lease expired";
  const what = cause === "infrastructure" ? `run${runs === 1 ? "" : "s"} lost to nodes or sd-webui` : `attempt${runs === 1 ? "" : "s"}`;
  return `Gave up after ${runs} ${what}: ${why}`;
}

/** The earliest deadline the queue's alarm must wake for, or null when nothing is leased. */
export function nextAlarmAt(leaseDeadlines: readonly number[]): number | null {
  return leaseDeadlines.length === 0 ? null : Math.min(...leaseDeadlines);
}
