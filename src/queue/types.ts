// What the Worker, CheckpointQueue and Fleet pass to each other over RPC, and the queue's RPC
// methods (what its stub offers, without importing the Durable Object class). Expected outcomes
// are plain values (`stale_lease`, `at_capacity`): custom error fields do not survive RPC.
import type { TaskEnding, TaskRecord } from "../db/task-records";
import type { PoolSettings } from "../pools/settings";
import type { AddonFile, ClaimedTask, CompleteRequest, FailRequest, Lease, ModelFile, ProgressReport, TaskKind } from "../protocol/node";

/** Where a task's end is posted (src/tasks/webhooks.ts signs it). */
export interface WebhookTarget {
  url: string;
  /** The Worker's origin as the client called it: image URLs in the event point there. */
  origin: string;
  owner: string;
}

/**
 * How a key shares the GPUs with other keys (issue 14): set by an admin per key, carried with
 * each of its tasks. Absent on a task: DEFAULT_TENANT_SHARE.
 */
export interface TenantShare {
  /** Relative share of a queue's work when several keys wait (deficit round robin); > 0. */
  weight: number;
  /** Admin-set class: waiting work of a higher class is served before any lower class. */
  priorityClass: number;
  /** The most tasks of this key running at once (null: no limit). */
  maxRunning: number | null;
}

export const DEFAULT_TENANT_SHARE: TenantShare = { weight: 1, priorityClass: 0, maxRunning: null };

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
  /** The owner key's share (absent: DEFAULT_TENANT_SHARE). */
  tenant?: TenantShare;
}

export interface QueueSummary extends PoolSettings {
  /** Tasks waiting that could be claimed now (an owner at its maxRunning holds its work back). */
  waiting: number;
  running: number;
  /** Epoch ms of the oldest waiting task, or null. */
  oldestWaitingAt: number | null;
  /** Node ids holding leases now. */
  leaseHolders: string[];
  /** Add-on model names the next task to be claimed needs (Fleet lets a node that holds them claim first). */
  nextTaskAddons: string[];
  /** Owners here with a maxRunning: their running tasks here (Fleet sums them over queues). */
  limitedOwnersRunning: Record<string, number>;
  /** The maxRunning of each owner in limitedOwnersRunning. */
  limitedOwnersMax: Record<string, number>;
  /** Tasks ever enqueued here (monotonic): arrivals per interval are differences. */
  arrivals: number;
  reportedAt: number;
  /** Orders summaries built in the same millisecond (reports are not awaited, so may overtake). */
  sequence: number;
}

export interface ClaimOptions {
  /** Owners at their running limit across all queues (Fleet's sum): none of their tasks goes out. */
  excludeOwners?: string[];
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

export type LeaseCheck =
  | { ok: true; owner: string; taskId: string; kind: TaskKind; inputKeys: string[]; nodeId: string }
  | { ok: false; reason: "stale_lease" };

export type ProgressOutcome = { ok: true; cancel: boolean; leaseExpiresAt: number } | { ok: false; reason: "stale_lease" };

export type EndOutcome = { ok: true; status: "succeeded" | "failed" | "cancelled" | "waiting" } | { ok: false; reason: "stale_lease" };

export type CancelOutcome = "cancelled" | "cancel_requested" | "not_live";

export type NodeProgressReport = ProgressReport;
export type NodeCompletion = Omit<CompleteRequest, "leaseId"> & { imageKeys: string[] };
export type NodeFailure = Omit<FailRequest, "leaseId">;

/** CheckpointQueue's RPC methods (src/queue/checkpoint-queue.ts documents each). */
export interface CheckpointQueueRpc {
  configure(pool: PoolSettings): Promise<QueueSummary>;
  enqueue(task: QueuedTask, pool: PoolSettings): Promise<{ queuePosition: number }>;
  claim(nodeId: string, options?: ClaimOptions): Promise<ClaimOutcome>;
  checkLease(uid: string, leaseId: string): Promise<LeaseCheck>;
  progress(uid: string, leaseId: string, report: NodeProgressReport): Promise<ProgressOutcome>;
  complete(uid: string, leaseId: string, result: NodeCompletion): Promise<EndOutcome>;
  fail(uid: string, leaseId: string, failure: NodeFailure): Promise<EndOutcome>;
  cancel(uid: string): Promise<CancelOutcome>;
  endUnqueued(uids: string[], ending: { status: "failed" | "cancelled"; error: string }): Promise<string[]>;
  summary(): Promise<QueueSummary>;
  retire(reason: string): Promise<{ cancelled: number; cancelling: number }>;
  failWaiting(reason: string, sha256: string): Promise<{ failed: number }>;
  replaceCheckpointFile(file: ModelFile): Promise<{ updated: number }>;
  replaceAddonFile(file: AddonFile): Promise<{ updated: number }>;
  status(uid: string): Promise<LiveStatus | null>;
  waitForEnd(uid: string, timeoutMs: number): Promise<TaskEnding | "not_live" | "timeout">;
  releaseNode(nodeId: string): Promise<number>;
  cancelOwner(owner: string, reason: string): Promise<{ cancelled: number; cancelling: number }>;
}
