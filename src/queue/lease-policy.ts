// Pure rules of a task's life in its queue: lease deadlines and what an ended lease means.

export function leaseDeadline(nowMs: number, leaseMs: number): number {
  return nowMs + leaseMs;
}

export type AfterLostLease = "requeue" | "fail" | "cancel";

/**
 * A lease ran out (node died, network cut) or the node gave up with a retryable error: the task
 * goes back to the queue unless it was cancelled or has used all its attempts (claims).
 */
export function afterLostLease(attempts: number, maxAttempts: number, cancelRequested: boolean): AfterLostLease {
  if (cancelRequested) return "cancel";
  return attempts < maxAttempts ? "requeue" : "fail";
}

export function exhaustedReason(attempts: number, lastError: string | null): string {
  const why = lastError ?? "the node stopped reporting and its lease expired";
  return `Gave up after ${attempts} attempt${attempts === 1 ? "" : "s"}: ${why}`;
}

/** The earliest deadline the queue's alarm must wake for, or null when nothing is leased. */
export function nextAlarmAt(leaseDeadlines: readonly number[]): number | null {
  return leaseDeadlines.length === 0 ? null : Math.min(...leaseDeadlines);
}
