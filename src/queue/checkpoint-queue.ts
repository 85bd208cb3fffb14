// CheckpointQueue: one Durable Object per checkpoint (idFromName(checkpoint)), the source of truth
// for its live work: waiting tasks in priority/FIFO order, leases held by nodes under the pool's
// concurrency cap, progress of running tasks, and waiters of sync requests. Waiting work is
// handed out in fair shares among its owners (./fair-share.ts), from counters kept per owner, so
// no operation reads the whole backlog. One alarm drives
// lease expiry. Every transition is mirrored to the task's D1 row through an outbox
// (./d1-outbox.ts), so none waits on D1 and none is lost when D1 fails. A task's end is posted
// to its webhook, if it has one, through a second outbox (./webhook-outbox.ts).
import { DurableObject } from "cloudflare:workers";
import { readConfig } from "../config";
import type { TaskEnding, TaskRecord } from "../db/task-records";
import { fleetStub } from "../fleet/stub";
import { logLine } from "../log";
import { type PoolSettings, UNCONFIGURED_POOL } from "../pools/settings";
import type { AddonFile, ClaimedTask, ModelFile } from "../protocol/node";
import { migrateSqlStorage } from "../sql-storage-migrations";
import { D1Outbox } from "./d1-outbox";
import { atRunningLimit, nextOwner, type OwnerShare, strideOf, tasksServedBefore } from "./fair-share";
import { newLeaseId } from "./lease-id";
import { afterLostLease, exhaustedReason, type LossCause, leaseDeadline, nextAlarmAt } from "./lease-policy";
import { QUEUE_STORAGE_STEPS } from "./storage-schema";
import {
  type CancelOutcome,
  type CheckpointQueueRpc,
  type ClaimOptions,
  type ClaimOutcome,
  DEFAULT_TENANT_SHARE,
  type EndOutcome,
  type LeaseCheck,
  type LiveStatus,
  type NodeCompletion,
  type NodeFailure,
  type NodeProgressReport,
  type ProgressOutcome,
  type QueuedTask,
  type QueueSummary,
  type TaskProgress,
} from "./types";
import { WEBHOOK_TIMEOUT_MS, WebhookOutbox } from "./webhook-outbox";

interface Row extends Record<string, SqlStorageValue> {
  uid: string;
  task_id: string;
  owner: string;
  priority: number;
  seq: number;
  enqueued_at: number;
  status: "waiting" | "running";
  attempts: number;
  lease_id: string | null;
  lease_expires_at: number | null;
  node_id: string | null;
  cancel_requested: number;
  claim: string;
  progress: string | null;
  last_error: string | null;
  infra_losses: number;
  lost_lease_id: string | null;
  lost_node_id: string | null;
  /** Its place among its owner's tasks, in the order they were enqueued. */
  owner_seq: number;
}

interface OwnerRow extends Record<string, SqlStorageValue> {
  owner: string;
  weight: number;
  priority_class: number;
  max_running: number | null;
  waiting: number;
  running: number;
  pass: number;
  active_since: number;
}

function ownerShare(row: OwnerRow): OwnerShare {
  return {
    owner: row.owner,
    weight: row.weight,
    priorityClass: row.priority_class,
    maxRunning: row.max_running,
    waiting: row.waiting,
    running: row.running,
    pass: row.pass,
    activeSince: row.active_since,
  };
}

/** After D1 refused the outbox, the alarm tries again this much later. */
const OUTBOX_RETRY_MS = 5_000;
/**
 * Records go to D1 this long after the first of them, together: a task's creation and claim
 * usually share one batch, and D1 work stays off the moments a node or client is waiting.
 * Readers who need the row current drain at once (`settle`).
 */
const OUTBOX_DELAY_MS = 25;

export class CheckpointQueue extends DurableObject<Env> implements CheckpointQueueRpc {
  /** The clock; tests replace it to move time without waiting. */
  clock: () => number = () => Date.now();
  private readonly sql: SqlStorage;
  private readonly waiters = new Map<string, Set<(ending: TaskEnding) => void>>();
  private summarySequence = 0;
  /** D1 as the outbox writes to it; tests put a failing one in its place. */
  d1: () => D1Database = () => this.env.DB;
  /** How long records wait to go to D1 together; tests lengthen it. */
  outboxDelayMs = OUTBOX_DELAY_MS;
  private readonly outbox: D1Outbox;
  private readonly webhooks: WebhookOutbox;
  private drainTimer: ReturnType<typeof setTimeout> | null = null;
  /** The alarm time last set (null: none; undefined: not known since this object started). */
  private alarmAt: number | null | undefined = undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    migrateSqlStorage(ctx.storage, QUEUE_STORAGE_STEPS);
    this.outbox = new D1Outbox(this.sql, () => this.d1());
    this.webhooks = new WebhookOutbox(
      this.sql,
      () => readConfig(this.env),
      () => this.clock(),
    );
    // What a previous incarnation could not deliver goes out as soon as it is running.
    if (this.outbox.pending > 0 || this.webhooks.nextDueAt() !== null) void ctx.blockConcurrencyWhile(() => this.alarmBy(this.clock()));
  }

  private get settings(): { leaseMs: number; maxAttempts: number; maxInfraRetries: number } {
    const config = readConfig(this.env);
    return { leaseMs: config.leaseMs, maxAttempts: config.maxAttempts, maxInfraRetries: config.maxInfraRetries };
  }

  /** The pool's settings; a queue that was never configured (nor enqueued to) runs with the defaults. */
  private pool(): PoolSettings {
    const row = this.sql.exec<{ settings: string }>("SELECT settings FROM pool WHERE id = 1").toArray()[0];
    return row ? (JSON.parse(row.settings) as PoolSettings) : UNCONFIGURED_POOL;
  }

  private row(uid: string): Row | null {
    return this.sql.exec<Row>("SELECT * FROM live_tasks WHERE uid = ?", uid).toArray()[0] ?? null;
  }

  /**
   * The task's row when `leaseId` holds it. A lease that ran out (or whose node was presumed
   * lost) while its task waits for another node still does: its node is evidently at work, so the
   * task is running on it again, under that lease, and the run was not lost after all.
   */
  private heldRow(uid: string, leaseId: string): Row | null {
    const row = this.row(uid);
    if (!row) return null;
    if (row.status === "running") return row.lease_id === leaseId ? row : null;
    if (row.lost_lease_id !== leaseId) return null;
    const now = this.clock();
    const leaseExpiresAt = leaseDeadline(now, this.settings.leaseMs);
    const nodeId = row.lost_node_id ?? "";
    const infraLosses = Math.max(0, row.infra_losses - 1);
    this.sql.exec(
      "UPDATE live_tasks SET status = 'running', lease_id = ?, lease_expires_at = ?, node_id = ?, infra_losses = ?, lost_lease_id = NULL, lost_node_id = NULL WHERE uid = ?",
      leaseId,
      leaseExpiresAt,
      nodeId,
      infraLosses,
      uid,
    );
    this.countOwner(row, -1, 1);
    this.mirror({ uid, kind: "running", attempts: row.attempts, nodeId, startedAt: now });
    this.report();
    void this.alarmBy(leaseExpiresAt);
    return {
      ...row,
      status: "running",
      lease_id: leaseId,
      lease_expires_at: leaseExpiresAt,
      node_id: nodeId,
      infra_losses: infraLosses,
      lost_lease_id: null,
      lost_node_id: null,
    };
  }

  /** Sets or replaces the pool's settings (cap, timeout, constraints, cost estimates). */
  async configure(pool: PoolSettings): Promise<QueueSummary> {
    this.sql.exec("INSERT INTO pool (id, settings) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET settings = excluded.settings", JSON.stringify(pool));
    const summary = this.buildSummary();
    await fleetStub(this.env).reportQueue(summary);
    return summary;
  }

  async enqueue(task: QueuedTask, pool: PoolSettings): Promise<{ queuePosition: number }> {
    // Ended before it got here (endUnqueued): it never runs; its row already says how it ended.
    if (this.sql.exec("SELECT 1 FROM unqueued_ended WHERE uid = ?", task.uid).toArray().length > 0) return { queuePosition: 0 };
    this.sql.exec("INSERT INTO pool (id, settings) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET settings = excluded.settings", JSON.stringify(pool));
    const seq = this.sql
      .exec<{ seq: number }>("UPDATE queue_counters SET next_seq = next_seq + 1, arrivals = arrivals + 1 WHERE id = 1 RETURNING next_seq - 1 AS seq")
      .one().seq;
    const ownerSeq = this.ownerEnqueued(task.owner, task.tenant ?? DEFAULT_TENANT_SHARE, seq);
    this.countPriority(task, 1);
    this.sql.exec(
      "INSERT INTO live_tasks (uid, task_id, owner, priority, seq, enqueued_at, status, attempts, claim, owner_seq) VALUES (?, ?, ?, ?, ?, ?, 'waiting', 0, ?, ?)",
      task.uid,
      task.taskId,
      task.owner,
      task.priority,
      seq,
      this.clock(),
      JSON.stringify(task.claim),
      ownerSeq,
    );
    if (task.row) {
      this.mirror({ uid: task.uid, kind: "created", row: task.row });
    }
    if (task.webhook) this.webhooks.register(task.uid, task.webhook);
    const failedReason = this.failedFileReason(task.claim.model.sha256);
    const row = failedReason === null ? null : this.row(task.uid);
    if (failedReason !== null && row) {
      await this.end(row, { status: "failed", finishedAt: this.clock(), error: failedReason });
      return { queuePosition: 0 };
    }
    const queuePosition = this.position(this.row(task.uid));
    this.report();
    return { queuePosition };
  }

  /**
   * Counts a new waiting task of `owner` and takes its share as the task carries it (an admin
   * may have changed it); answers the task's place among the owner's own. An owner that starts
   * waiting begins at its class's virtual time, so time spent idle banks no credit.
   */
  private ownerEnqueued(owner: string, share: { weight: number; priorityClass: number; maxRunning: number | null }, seq: number): number {
    return this.sql
      .exec<{ enqueued: number }>(
        `INSERT INTO owners (owner, weight, priority_class, max_running, waiting, running, pass, active_since, enqueued) VALUES (?, ?, ?, ?, 1, 0, ?, ?, 1)
         ON CONFLICT(owner) DO UPDATE SET weight = excluded.weight, priority_class = excluded.priority_class, max_running = excluded.max_running,
           active_since = CASE WHEN waiting = 0 THEN excluded.active_since ELSE active_since END,
           waiting = waiting + 1, enqueued = enqueued + 1, pass = MAX(pass, excluded.pass)
         RETURNING enqueued`,
        owner,
        share.weight,
        share.priorityClass,
        share.maxRunning,
        this.virtualTime(share.priorityClass),
        seq,
      )
      .one().enqueued;
  }

  /**
   * The task came, left, or moved between waiting and running (`waiting`, `running`: ±1 or 0):
   * its owner's counters follow. An owner with nothing left here is forgotten: when it comes
   * back it starts at the virtual time, as it would anyway (what it loses is at most the one
   * task it was served ahead of the others).
   */
  private countOwner(task: { owner: string; priority: number }, waiting: number, running: number): void {
    this.sql.exec("UPDATE owners SET waiting = waiting + ?, running = running + ? WHERE owner = ?", waiting, running, task.owner);
    this.sql.exec("DELETE FROM owners WHERE owner = ? AND waiting = 0 AND running = 0", task.owner);
    if (waiting !== 0) this.countPriority(task, waiting);
  }

  /** The owner's waiting tasks of this Task-Priority changed by `waiting`. */
  private countPriority(task: { owner: string; priority: number }, waiting: number): void {
    this.sql.exec(
      "INSERT INTO owner_priorities (owner, priority, waiting) VALUES (?, ?, ?) ON CONFLICT(owner, priority) DO UPDATE SET waiting = waiting + excluded.waiting",
      task.owner,
      task.priority,
      waiting,
    );
    this.sql.exec("DELETE FROM owner_priorities WHERE owner = ? AND priority = ? AND waiting <= 0", task.owner, task.priority);
  }

  /** The owners with work here (waiting or running): few, however long the backlog. */
  private owners(): OwnerShare[] {
    return this.sql.exec<OwnerRow>("SELECT * FROM owners").toArray().map(ownerShare);
  }

  /** The pass last served in the class: where an owner that starts waiting begins. */
  private virtualTime(priorityClass: number): number {
    return this.sql.exec<{ t: number }>("SELECT virtual_time AS t FROM class_clocks WHERE priority_class = ?", priorityClass).toArray()[0]?.t ?? 0;
  }

  /** The owner's task that goes out first: Task-Priority orders an owner's own tasks. */
  private headTask(owner: string): Row | null {
    return (
      this.sql.exec<Row>("SELECT * FROM live_tasks WHERE owner = ? AND status = 'waiting' ORDER BY priority DESC, seq LIMIT 1", owner).toArray()[0] ?? null
    );
  }

  /**
   * About how many tasks go out before this waiting one, in the fair order: from the owners'
   * counters, and the task's place among its owner's own (by Task-Priority, then arrival).
   */
  private position(row: Row | null): number {
    if (row?.status !== "waiting") return 0;
    const owners = this.owners();
    const target = owners.find((owner) => owner.owner === row.owner);
    if (!target) return 0;
    const higher = this.sql
      .exec<{ n: number | null }>("SELECT SUM(waiting) AS n FROM owner_priorities WHERE owner = ? AND priority > ?", row.owner, row.priority)
      .one().n;
    // Its own tasks of the same Task-Priority came in owner_seq order; those ended meanwhile are the "about".
    const first = this.sql
      .exec<{ s: number | null }>("SELECT MIN(owner_seq) AS s FROM live_tasks WHERE owner = ? AND status = 'waiting' AND priority = ?", row.owner, row.priority)
      .one().s;
    const ownAhead = Math.min((higher ?? 0) + Math.max(0, row.owner_seq - (first ?? row.owner_seq)), target.waiting - 1);
    return tasksServedBefore(owners, target, ownAhead) + 1;
  }

  /**
   * A node takes the next task in the fair order, skipping owners at their running limit here
   * and `excludeOwners` (at theirs across queues). "empty" while waiting work is only theirs.
   */
  async claim(nodeId: string, options: ClaimOptions = {}): Promise<ClaimOutcome> {
    const pool = this.pool();
    const now = this.clock();
    const { leaseMs } = this.settings;
    const owners = this.owners();
    let running = 0;
    let waiting = 0;
    for (const owner of owners) {
      running += owner.running;
      waiting += owner.waiting;
    }
    if (waiting === 0) return { outcome: "empty", summary: this.buildSummary() };
    if (running >= pool.concurrencyCap) return { outcome: "at_capacity", summary: this.buildSummary() };
    const owner = nextOwner(owners, new Set(options.excludeOwners));
    const next = owner && this.headTask(owner.owner);
    if (!owner || !next) return { outcome: "empty", summary: this.buildSummary() };
    const claim = JSON.parse(next.claim) as Omit<ClaimedTask, "attempt">;
    const lease = { id: newLeaseId(claim.model.name), expiresAt: leaseDeadline(now, leaseMs), leaseMs };
    const attempts = next.attempts + 1;
    this.sql.exec(
      "UPDATE live_tasks SET status = 'running', attempts = ?, lease_id = ?, lease_expires_at = ?, node_id = ?, progress = NULL, lost_lease_id = NULL, lost_node_id = NULL WHERE uid = ?",
      attempts,
      lease.id,
      lease.expiresAt,
      nodeId,
      next.uid,
    );
    this.sql.exec("UPDATE owners SET waiting = waiting - 1, running = running + 1, pass = pass + ? WHERE owner = ?", strideOf(owner.weight), owner.owner);
    this.sql.exec(
      "INSERT INTO class_clocks (priority_class, virtual_time) VALUES (?, ?) ON CONFLICT(priority_class) DO UPDATE SET virtual_time = MAX(virtual_time, excluded.virtual_time)",
      owner.priorityClass,
      owner.pass,
    );
    this.mirror({ uid: next.uid, kind: "running", attempts, nodeId, startedAt: now });
    await this.alarmBy(lease.expiresAt);
    const task: ClaimedTask = { ...claim, attempt: attempts };
    // Fleet asked: it takes the queue's new state from the answer rather than from a report.
    return { outcome: "claimed", task, lease, summary: this.buildSummary() };
  }

  async checkLease(uid: string, leaseId: string): Promise<LeaseCheck> {
    const row = this.heldRow(uid, leaseId);
    if (!row) return { ok: false, reason: "stale_lease" };
    const claim = JSON.parse(row.claim) as Omit<ClaimedTask, "attempt">;
    return { ok: true, owner: row.owner, taskId: row.task_id, kind: claim.kind, inputKeys: claim.inputs.map((input) => input.key), nodeId: row.node_id ?? "" };
  }

  async progress(uid: string, leaseId: string, report: NodeProgressReport): Promise<ProgressOutcome> {
    const row = this.heldRow(uid, leaseId);
    if (!row) return { ok: false, reason: "stale_lease" };
    const now = this.clock();
    const progress: TaskProgress = {
      progress: report.progress,
      etaRelative: report.etaRelative ?? 0,
      state: report.state ?? {},
      currentImage: report.currentImage ?? null,
      textinfo: report.textinfo ?? null,
      updatedAt: now,
    };
    const leaseExpiresAt = leaseDeadline(now, this.settings.leaseMs);
    this.sql.exec("UPDATE live_tasks SET lease_expires_at = ?, progress = ? WHERE uid = ?", leaseExpiresAt, JSON.stringify(progress), uid);
    // The deadline only moved later: the alarm already set fires no later than needed, finds
    // nothing expired and sets itself for the new earliest deadline.
    return { ok: true, cancel: row.cancel_requested === 1, leaseExpiresAt };
  }

  async complete(uid: string, leaseId: string, result: NodeCompletion): Promise<EndOutcome> {
    const row = this.heldRow(uid, leaseId);
    if (!row) return { ok: false, reason: "stale_lease" };
    // A completion is finished work, even after a cancel was asked for: the cancel came too late,
    // or the task keeps the images sd-webui answered after the interrupt. A cancelled task never
    // has images, so this ends succeeded.
    return this.end(row, {
      status: "succeeded",
      finishedAt: this.clock(),
      imageKeys: result.imageKeys,
      parameters: result.parameters ?? {},
      info: result.info ?? null,
      passthroughResult: result.passthroughResult ?? null,
      timings: result.timings ?? null,
    });
  }

  async fail(uid: string, leaseId: string, failure: NodeFailure): Promise<EndOutcome> {
    const row = this.heldRow(uid, leaseId);
    if (!row) return { ok: false, reason: "stale_lease" };
    if (failure.modelFailure) return this.afterModelFailure(row, failure.error);
    if (failure.retryable) return this.loseLease(row, failure.infrastructure ? "infrastructure" : "task", failure.error);
    const status = row.cancel_requested === 1 ? "cancelled" : "failed";
    return this.end(row, { status, finishedAt: this.clock(), error: failure.error, webuiError: failure.webuiError ?? null });
  }

  async cancel(uid: string): Promise<CancelOutcome> {
    const row = this.row(uid);
    if (!row) {
      await this.settle(uid); // it has ended: the client reads the row next
      return "not_live";
    }
    if (row.status === "waiting") {
      await this.end(row, { status: "cancelled", finishedAt: this.clock(), error: "Cancelled before it ran" });
      await this.settle(uid); // the client reads the row next
      return "cancelled";
    }
    this.sql.exec("UPDATE live_tasks SET cancel_requested = 1 WHERE uid = ?", uid);
    return "cancel_requested";
  }

  /**
   * Ends tasks whose D1 rows say waiting but that this queue may never have received (the Worker
   * stopped between a submission's D1 insert and its enqueue). One this queue holds, or whose
   * records have not reached D1 yet, is live and left alone; any other ends with `ending`, in D1
   * only if its row still says waiting, and an enqueue arriving later is refused, all in this one
   * synchronous step. Answers the uids it ended.
   */
  async endUnqueued(uids: string[], ending: { status: "failed" | "cancelled"; error: string }): Promise<string[]> {
    const now = this.clock();
    const ended = uids.filter((uid) => !this.row(uid) && !this.outbox.holds(uid));
    for (const uid of ended) {
      this.sql.exec("INSERT OR IGNORE INTO unqueued_ended (uid, ended_at) VALUES (?, ?)", uid, now);
      this.mirror({ uid, kind: "ended_unqueued", ending: { ...ending, finishedAt: now, attempts: 0 } });
    }
    await Promise.all(ended.map((uid) => this.settle(uid))); // the caller reads the rows next
    return ended;
  }

  /** How the queue stands now (waiting and running counts, lease holders). */
  async summary(): Promise<QueueSummary> {
    return this.buildSummary();
  }

  /**
   * The checkpoint is going away: waiting tasks end cancelled with `reason`, running ones are
   * asked to cancel (their nodes hear it at their next progress report), and the queue stops
   * reporting to Fleet until a task is enqueued again.
   */
  async retire(reason: string): Promise<{ cancelled: number; cancelling: number }> {
    // Without settings the queue's summaries name no checkpoint and are not reported (see report).
    this.sql.exec("DELETE FROM pool");
    // A model registered again under this name starts with no failed file.
    this.sql.exec("DELETE FROM failed_file");
    const cancelling = this.sql.exec("UPDATE live_tasks SET cancel_requested = 1 WHERE status = 'running'").rowsWritten;
    return { cancelled: await this.endAllWaiting("cancelled", reason), cancelling };
  }

  /**
   * The checkpoint's file (`sha256`) is marked failed (it failed to load on several nodes): every
   * waiting task ends failed with `reason`, and so does any task for that file enqueued later (a
   * submission that read the model before it was marked). Running ones finish or report their
   * own failure.
   */
  async failWaiting(reason: string, sha256: string): Promise<{ failed: number }> {
    this.sql.exec(
      "INSERT INTO failed_file (id, sha256, reason) VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE SET sha256 = excluded.sha256, reason = excluded.reason",
      sha256,
      reason,
    );
    return { failed: await this.endAllWaiting("failed", reason) };
  }

  /**
   * The checkpoint's file changed (a re-upload): waiting tasks were fixed at submission with the
   * old file's sha256 and size, and a node would verify the new download against them and fail.
   * They take the new file; running ones keep theirs (their node already holds a copy).
   */
  async replaceCheckpointFile(file: ModelFile): Promise<{ updated: number }> {
    const updated = this.sql.exec(
      "UPDATE live_tasks SET claim = json_set(claim, '$.model', json(?)) WHERE status = 'waiting' AND json_extract(claim, '$.model.name') = ?",
      JSON.stringify(file),
      file.name,
    ).rowsWritten;
    return { updated };
  }

  /** As replaceCheckpointFile, for an add-on file that waiting tasks of this checkpoint name. */
  async replaceAddonFile(file: AddonFile): Promise<{ updated: number }> {
    const rows = this.sql
      .exec<{ uid: string; claim: string }>(
        "SELECT uid, claim FROM live_tasks WHERE status = 'waiting' AND EXISTS (SELECT 1 FROM json_each(claim, '$.addons') WHERE json_extract(value, '$.name') = ?)",
        file.name,
      )
      .toArray();
    for (const row of rows) {
      const claim = JSON.parse(row.claim) as Omit<ClaimedTask, "attempt">;
      const addons = claim.addons.map((addon) => (addon.name === file.name ? file : addon));
      this.sql.exec("UPDATE live_tasks SET claim = ? WHERE uid = ?", JSON.stringify({ ...claim, addons }), row.uid);
    }
    return { updated: rows.length };
  }

  /**
   * The owner's key was revoked: its waiting tasks end cancelled with `reason`, its running ones
   * are asked to cancel (their nodes hear it at their next progress report).
   */
  async cancelOwner(owner: string, reason: string): Promise<{ cancelled: number; cancelling: number }> {
    const cancelling = this.sql.exec("UPDATE live_tasks SET cancel_requested = 1 WHERE status = 'running' AND owner = ?", owner).rowsWritten;
    const waiting = this.sql.exec<Row>("SELECT * FROM live_tasks WHERE status = 'waiting' AND owner = ?", owner).toArray();
    await Promise.all(waiting.map((row) => this.end(row, { status: "cancelled", finishedAt: this.clock(), error: reason })));
    return { cancelled: waiting.length, cancelling };
  }

  /** Why the checkpoint file with this sha256 was marked failed, if it was (a new file never is). */
  private failedFileReason(sha256: string): string | null {
    return this.sql.exec<{ reason: string }>("SELECT reason FROM failed_file WHERE sha256 = ?", sha256).toArray()[0]?.reason ?? null;
  }

  private async endAllWaiting(status: "failed" | "cancelled", reason: string): Promise<number> {
    const waiting = this.sql.exec<Row>("SELECT * FROM live_tasks WHERE status = 'waiting'").toArray();
    // Each end() changes its row before its first await: all of them end in this one step.
    await Promise.all(waiting.map((row) => this.end(row, { status, finishedAt: this.clock(), error: reason })));
    return waiting.length;
  }

  /** The task's live state (null once it has ended), answered once its D1 row shows that state. */
  async status(uid: string): Promise<LiveStatus | null> {
    await this.settle(uid);
    const row = this.row(uid);
    if (!row) return null;
    if (row.status === "waiting") return { state: "waiting", queuePosition: this.position(row), attempts: row.attempts };
    return {
      state: "running",
      progress: row.progress ? (JSON.parse(row.progress) as TaskProgress) : null,
      attempts: row.attempts,
      nodeId: row.node_id ?? "",
      cancelRequested: row.cancel_requested === 1,
    };
  }

  /**
   * Waits for the task to end and answers how it ended (as written to D1), or "not_live" when it
   * is not in this queue (it had already ended), or "timeout" when `timeoutMs` passes first.
   */
  async waitForEnd(uid: string, timeoutMs: number): Promise<TaskEnding | "not_live" | "timeout"> {
    if (!this.row(uid)) {
      await this.settle(uid);
      return "not_live";
    }
    const ending = await new Promise<TaskEnding | "timeout">((resolve) => {
      const set = this.waiters.get(uid) ?? new Set();
      this.waiters.set(uid, set);
      const done = (ending: TaskEnding) => {
        clearTimeout(timer);
        resolve(ending);
      };
      const timer = setTimeout(() => {
        set.delete(done);
        resolve("timeout");
      }, timeoutMs);
      set.add(done);
    });
    // A row the queue writes (see Submission.sync) exists before anyone hears of its task; a
    // task that ran faster than the outbox's delay waits for that one write.
    if (this.outbox.holds(uid, "created")) await this.settle(uid);
    return ending;
  }

  /** The node is gone (deregistered or lost): its leases are not waited out. */
  async releaseNode(nodeId: string): Promise<number> {
    const rows = this.sql.exec<Row>("SELECT * FROM live_tasks WHERE status = 'running' AND node_id = ?", nodeId).toArray();
    for (const row of rows) await this.loseLease(row, "infrastructure", `node ${nodeId} was lost while running the task`, true);
    return rows.length;
  }

  override async alarm(): Promise<void> {
    this.alarmAt = null; // it has fired: nothing is scheduled now
    const now = this.clock();
    const expired = this.sql.exec<Row>("SELECT * FROM live_tasks WHERE status = 'running' AND lease_expires_at <= ?", now).toArray();
    for (const row of expired) await this.loseLease(row, "infrastructure", null, true);
    await this.outbox.drain().catch((error: unknown) => this.outboxFailed(error));
    await this.sendWebhooks();
    const deadlines = this.sql
      .exec<{ d: number }>("SELECT lease_expires_at AS d FROM live_tasks WHERE status = 'running' AND lease_expires_at IS NOT NULL")
      .toArray()
      .map((r) => r.d);
    const next = nextAlarmAt(deadlines);
    if (next !== null) await this.alarmBy(next);
  }

  /** `unheard`: the node did not give the task up (its lease ran out, or it was presumed lost), so its late result is still taken. */
  private async loseLease(row: Row, cause: LossCause, error: string | null, unheard = false): Promise<EndOutcome> {
    const runs = { attempts: row.attempts, infraLosses: row.infra_losses };
    const next = afterLostLease(cause, runs, this.settings, row.cancel_requested === 1);
    const lastError = error ?? row.last_error;
    const infraLosses = row.infra_losses + (cause === "infrastructure" ? 1 : 0);
    this.sql.exec("UPDATE live_tasks SET infra_losses = ? WHERE uid = ?", infraLosses, row.uid);
    if (next === "requeue") {
      const outcome = this.requeue(row, row.attempts, lastError);
      if (unheard) this.sql.exec("UPDATE live_tasks SET lost_lease_id = ?, lost_node_id = ? WHERE uid = ?", row.lease_id, row.node_id, row.uid);
      return outcome;
    }
    if (next === "cancel") return this.cancelledWhileRunning(row);
    const counted = cause === "infrastructure" ? infraLosses : row.attempts - row.infra_losses;
    return this.end(row, { status: "failed", finishedAt: this.clock(), error: exhaustedReason(cause, counted, lastError) });
  }

  /**
   * The node could not run the task on the checkpoint's weights: the task waits for another node
   * (placement no longer sends this checkpoint to that one), and the attempt is not the task's
   * own failure, so it does not count toward the attempts bound.
   */
  private async afterModelFailure(row: Row, error: string): Promise<EndOutcome> {
    if (row.cancel_requested === 1) return this.cancelledWhileRunning(row);
    return this.requeue(row, Math.max(0, row.attempts - 1), error);
  }

  private requeue(row: Row, attempts: number, error: string | null): EndOutcome {
    this.sql.exec(
      "UPDATE live_tasks SET status = 'waiting', attempts = ?, lease_id = NULL, lease_expires_at = NULL, node_id = NULL, progress = NULL, last_error = ?, lost_lease_id = NULL, lost_node_id = NULL WHERE uid = ?",
      attempts,
      error,
      row.uid,
    );
    this.countOwner(row, 1, -1);
    this.mirror({ uid: row.uid, kind: "waiting", attempts, error });
    this.report();
    return { ok: true, status: "waiting" };
  }

  private cancelledWhileRunning(row: Row): Promise<EndOutcome> {
    return this.end(row, { status: "cancelled", finishedAt: this.clock(), error: "Cancelled while running" });
  }

  private async end(row: Row, ending: TaskEnding): Promise<EndOutcome> {
    const recorded = { attempts: row.attempts, ...ending };
    this.sql.exec("DELETE FROM live_tasks WHERE uid = ?", row.uid);
    this.countOwner(row, row.status === "waiting" ? -1 : 0, row.status === "running" ? -1 : 0);
    this.mirror({ uid: row.uid, kind: "ended", ending: recorded });
    // Sync waiters answer from the ending itself, so they need not wait for D1.
    for (const wake of this.waiters.get(row.uid) ?? []) wake(recorded);
    this.waiters.delete(row.uid);
    this.report();
    if (this.webhooks.ended(row.uid, { taskId: row.task_id, ending: recorded })) {
      // Sent now, in the background; the alarm is the fallback should this object stop first.
      await this.alarmBy(this.clock() + WEBHOOK_TIMEOUT_MS);
      void this.sendWebhooks();
    }
    return { ok: true, status: ending.status };
  }

  /** Attempts the webhook deliveries that are due; the alarm wakes for the next retry. */
  private async sendWebhooks(): Promise<void> {
    await this.webhooks.deliverDue().catch((error: unknown) => logLine("error", `webhook deliveries failed: ${String(error).slice(0, 300)}`));
    const next = this.webhooks.nextDueAt();
    if (next !== null) await this.alarmBy(next);
  }

  /**
   * Records a transition for D1, in the same step as the change it mirrors, and sends the outbox
   * to D1 shortly, in the background; when D1 fails, the alarm tries again.
   */
  private mirror(record: TaskRecord): void {
    this.outbox.add(record);
    this.drainTimer ??= setTimeout(() => {
      this.drainTimer = null;
      this.outbox.drain().catch((error: unknown) => this.outboxFailed(error));
    }, this.outboxDelayMs);
  }

  /** Waits until the task's records are in D1 — unless D1 fails: then they go out later. */
  private async settle(uid: string): Promise<void> {
    if (!this.outbox.holds(uid)) return;
    await this.outbox.drain().catch((error: unknown) => this.outboxFailed(error));
  }

  private async outboxFailed(error: unknown): Promise<void> {
    logLine("error", `D1 refused the queue's records (${this.outbox.pending} pending, retried in ${OUTBOX_RETRY_MS} ms): ${String(error).slice(0, 300)}`);
    await this.alarmBy(this.clock() + OUTBOX_RETRY_MS);
  }

  /**
   * Makes sure the alarm fires by `at`. It is only ever moved earlier: an alarm that fires with
   * nothing due is cheap (it sets the next one), a storage write on every claim and end is not.
   */
  private async alarmBy(at: number): Promise<void> {
    if (this.alarmAt != null && this.alarmAt <= at) return;
    this.alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }

  private buildSummary(): QueueSummary {
    const pool = this.pool();
    const owners = this.owners();
    let waiting = 0;
    let running = 0;
    const limitedOwnersRunning: Record<string, number> = {};
    const limitedOwnersMax: Record<string, number> = {};
    for (const owner of owners) {
      if (!atRunningLimit(owner)) waiting += owner.waiting;
      running += owner.running;
      if (owner.maxRunning === null) continue;
      limitedOwnersRunning[owner.owner] = owner.running;
      limitedOwnersMax[owner.owner] = owner.maxRunning;
    }
    const oldest = this.sql.exec<{ at: number | null }>("SELECT MIN(enqueued_at) AS at FROM live_tasks WHERE status = 'waiting'").one().at;
    const leaseHolders = this.sql
      .exec<{ node_id: string }>("SELECT DISTINCT node_id FROM live_tasks WHERE status = 'running' AND node_id IS NOT NULL")
      .toArray()
      .map((r) => r.node_id);
    const nextOwnerName = nextOwner(owners)?.owner;
    const next = nextOwnerName === undefined ? null : this.headTask(nextOwnerName);
    const nextTaskAddons = next ? (JSON.parse(next.claim) as Omit<ClaimedTask, "attempt">).addons.map((addon) => addon.name) : [];
    const { arrivals } = this.sql.exec<{ arrivals: number }>("SELECT arrivals FROM queue_counters WHERE id = 1").one();
    return {
      ...pool,
      waiting,
      running,
      oldestWaitingAt: oldest,
      leaseHolders,
      nextTaskAddons,
      limitedOwnersRunning,
      limitedOwnersMax,
      arrivals,
      reportedAt: this.clock(),
      sequence: ++this.summarySequence,
    };
  }

  /**
   * Tells Fleet how this queue stands, so waiting nodes wake the moment work arrives. Not
   * awaited: callers (a node's claim or complete, a client's submit) need not wait for Fleet;
   * Fleet keeps the newest summary by `reportedAt` whatever order they arrive in.
   */
  private report(): QueueSummary {
    const summary = this.buildSummary();
    if (summary.checkpoint) {
      fleetStub(this.env)
        .reportQueue(summary)
        .catch((error: unknown) => logLine("error", `queue ${summary.checkpoint}: report to Fleet failed: ${String(error)}`));
    }
    return summary;
  }
}
