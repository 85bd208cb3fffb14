// What the Worker, CheckpointQueue and Fleet pass to each other over RPC. Expected outcomes are
// plain values (`stale_lease`, `at_capacity`): custom error fields do not survive RPC.
import type { TaskRecord } from "../db/task-records";
import type { WebhookTarget } from "./webhook-outbox";
import type { ClaimedTask, CompleteRequest, FailRequest, Lease, ProgressReport, TaskKind } from "../protocol/node";

/** A pool's settings as the queue and placement need them. */
export interface PoolSettings {
  checkpoint: string;
  concurrencyCap: number;
  timeoutSeconds: number;
  /** Extra sd-webui command-line arguments nodes start sd-webui with. */
  extraArgs: string;
  minGpuMemoryMb: number;
  gpuClass: string | null;
  minNodes: number;
  maxNodes: number;
  loadMs: number;
  downloadMs: number;
  inferenceMs: number;
}

export interface QueuedTask {
  uid: string;
  taskId: string;
  owner: string;
  priority: number;
  /** The claim answer minus the attempt number, fixed at submission. */
  claim: Omit<ClaimedTask, "attempt">;
  /** The task's D1 row when the queue is to write it (see Submission.sync); null when it is already in D1. */
  row: Extract<TaskRecord, { kind: "created" }>["row"] | null;
  /** Where to post the task's end (src/tasks/webhooks.ts), if anywhere. */
  webhook: WebhookTarget | null;
}

export interface QueueSummary extends PoolSettings {
  waiting: number;
  running: number;
  /** Epoch ms of the oldest waiting task, or null. */
  oldestWaitingAt: number | null;
  /** Node ids holding leases now. */
  leaseHolders: string[];
  reportedAt: number;
  /** Orders summaries built in the same millisecond (reports are not awaited, so may overtake). */
  sequence: number;
}

export type ClaimOutcome =
  | { outcome: "claimed"; task: ClaimedTask; lease: Lease; summary: QueueSummary }
  | { outcome: "empty"; summary: QueueSummary }
  | { outcome: "at_capacity"; summary: QueueSummary };

export interface TaskProgress {
  progress: number;
  etaRelative: number;
  state: Record<string, unknown>;
  currentImage: string | null;
  textinfo: string | null;
  updatedAt: number;
}

export type LiveStatus =
  | { state: "waiting"; queuePosition: number; attempts: number }
  | { state: "running"; progress: TaskProgress | null; attempts: number; nodeId: string; cancelRequested: boolean };

export type LeaseCheck = { ok: true; owner: string; taskId: string; kind: TaskKind; inputKeys: string[] } | { ok: false; reason: "stale_lease" };

export type ProgressOutcome = { ok: true; cancel: boolean; leaseExpiresAt: number } | { ok: false; reason: "stale_lease" };

export type EndOutcome = { ok: true; status: "succeeded" | "failed" | "cancelled" | "waiting" } | { ok: false; reason: "stale_lease" };

export type CancelOutcome = "cancelled" | "cancel_requested" | "not_live";

export type NodeProgressReport = ProgressReport;
export type NodeCompletion = Omit<CompleteRequest, "leaseId"> & { imageKeys: string[] };
export type NodeFailure = Omit<FailRequest, "leaseId">;
