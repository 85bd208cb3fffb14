// Fleet: the node registry (heartbeats, what each node has loaded and cached, lost nodes) and
// the broker of claims: an idle node asks, the placement policy picks a checkpoint, the
// checkpoint's queue hands out a task. Claims with nothing to do wait (long poll); when a queue
// reports new work, as many of them are woken as could take it, those whose node has the
// checkpoint and the next task's add-ons first (./wake-order.ts). Soft state: nodes and queues re-report it — except the checkpoints
// that failed on a node (recordModelFailure), which nobody re-reports, so they are stored until
// the checkpoint's file changes.
import { DurableObject } from "cloudflare:workers";
import { readConfig } from "../config";
import type { ClaimRequest, Heartbeat, RegisterBody, WebuiCatalog } from "../protocol/node";
import type { QueueSummary } from "../queue/types";
import { migrateSqlStorage } from "../sql-storage-migrations";
import { betterHolder } from "./addon-preference";
import { type ArrivalRate, arrivalRateAt, nextArrivalRate } from "./arrival-rate";
import { mergeCatalogs } from "./catalog";
import { CheckpointCounts } from "./checkpoint-counts";
import { nextDecisionChangeMs } from "./decision-horizon";
import { heartbeatIntervalFor } from "./heartbeat-interval";
import { defaultGroupName, type GroupSettings, type NodeGroupRecord, newGroupRecord, scalingGroup, withBootSample } from "./node-groups";
import { ParkedClaims } from "./parked-claims";
import { choosePlacement, fitsPool, type PlacementNode, type PlacementQueue, prefetchFor } from "./placement";
import { onlyLastSeenChanged, sameValue } from "./record-change";
import { decideScaling, type GroupSurplus, type ScalingGroup, type ScalingNode, unservedCheckpoints } from "./scaling";
import { FLEET_STORAGE_STEPS } from "./storage-schema";
import { queueStub } from "./stub";
import type { AutoscaleView, FleetClaim, FleetRpc, HeartbeatOutcome, NodeRecord, RegisterOutcome } from "./types";
import { claimableWork, claimsToWake } from "./wake-order";

/** Another agent process registered the node id after the one asking (which says who it is). */
function replacedBy(node: NodeRecord, instanceId: string | undefined): boolean {
  return instanceId !== undefined && Boolean(node.instanceId) && node.instanceId !== instanceId;
}

/** A parked claim was woken for new work in `checkpoint`; `tried` are the nodes it was offered to so far. */
interface WakeReason {
  checkpoint: string;
  tried: Set<string>;
}

/** Lost after this many missed heartbeat intervals. */
const MISSED_HEARTBEATS_BEFORE_LOST = 2;
/**
 * A checkpoint file named to a node for prefetch is not named to it again for this long: by then
 * the node has it, is fetching it, or has no room for it without evicting (it declines quietly),
 * and naming it each heartbeat would cost the Worker a D1 read each time.
 */
const PREFETCH_REPEAT_MS = 300_000;

export class Fleet extends DurableObject<Env> implements FleetRpc {
  clock: () => number = () => Date.now();
  private readonly nodes = new Map<string, NodeRecord>();
  /** Per-checkpoint counts over the live nodes, kept with `nodes` (through save and forget). */
  private readonly counts = new CheckpointCounts();
  private readonly queues = new Map<string, QueueSummary>();
  /** Parked claims: how to wake each, and the node asking. */
  private readonly wakeClaims = new ParkedClaims<(reason?: WakeReason) => void>();
  /** Checkpoint → the nodes it failed on since its file last changed: never placed there again. */
  private readonly failedOn = new Map<string, Set<string>>();
  /**
   * When this object started. Heartbeats sent while it was not running (a Worker outage) were
   * never heard: no node counts as silent from before then (see alarm).
   */
  private readonly startedAt: number;
  /** Node id → the node key that first registered it: only that key may register or deregister it, until an admin removes it. */
  private readonly nodeKeys = new Map<string, string>();
  /** Node groups by name: settings and what was learned of them (persisted). */
  private readonly groups = new Map<string, NodeGroupRecord>();
  /** Node id → the checkpoint last named to it for prefetch, and when (soft state). */
  private readonly prefetchNamed = new Map<string, { checkpoint: string; at: number }>();
  /** Checkpoint → its recent arrival rate (soft state, from queue summaries). */
  private readonly arrivalRates = new Map<string, ArrivalRate>();
  /** Group → since when it has had too many nodes (soft state, see decideScaling). */
  private readonly surpluses = new Map<string, GroupSurplus>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.startedAt = this.clock();
    migrateSqlStorage(ctx.storage, FLEET_STORAGE_STEPS);
    for (const row of ctx.storage.sql.exec<{ data: string }>("SELECT data FROM nodes")) {
      const node = JSON.parse(row.data) as NodeRecord;
      // Records stored before nodes reported add-ons or RAM-held checkpoints.
      this.nodes.set(node.nodeId, { ...node, cachedAddons: node.cachedAddons ?? [], ramCheckpoints: node.ramCheckpoints ?? [] });
      this.counts.update(undefined, node);
    }
    for (const row of ctx.storage.sql.exec<{ data: string }>("SELECT data FROM queues")) {
      const summary = JSON.parse(row.data) as QueueSummary;
      this.queues.set(summary.checkpoint, summary);
    }
    for (const row of ctx.storage.sql.exec<{ checkpoint: string; node_id: string }>("SELECT checkpoint, node_id FROM model_failures")) {
      this.failedNodes(row.checkpoint).add(row.node_id);
    }
    for (const row of ctx.storage.sql.exec<{ node_id: string; key_id: string }>("SELECT node_id, key_id FROM node_keys")) {
      this.nodeKeys.set(row.node_id, row.key_id);
    }
    for (const row of ctx.storage.sql.exec<{ data: string }>("SELECT data FROM node_groups")) {
      const group = JSON.parse(row.data) as NodeGroupRecord;
      this.groups.set(group.name, group);
    }
  }

  /** Binds `nodeId` to `keyId` if it is free; false when another key holds it. */
  /** Whether a key other than `keyId` holds `nodeId`. */
  private heldByAnotherKey(nodeId: string, keyId: string): boolean {
    const holder = this.nodeKeys.get(nodeId);
    return holder !== undefined && holder !== keyId;
  }

  private bindNodeId(nodeId: string, keyId: string): boolean {
    const holder = this.nodeKeys.get(nodeId);
    if (holder !== undefined) return holder === keyId;
    this.nodeKeys.set(nodeId, keyId);
    this.ctx.storage.sql.exec("INSERT INTO node_keys (node_id, key_id) VALUES (?, ?)", nodeId, keyId);
    return true;
  }

  private failedNodes(checkpoint: string): Set<string> {
    let nodes = this.failedOn.get(checkpoint);
    if (!nodes) {
      nodes = new Set();
      this.failedOn.set(checkpoint, nodes);
    }
    return nodes;
  }

  private save(node: NodeRecord): void {
    this.counts.update(this.nodes.get(node.nodeId), node);
    this.nodes.set(node.nodeId, node);
    this.ctx.storage.sql.exec("INSERT OR REPLACE INTO nodes (node_id, data) VALUES (?, ?)", node.nodeId, JSON.stringify(node));
  }

  private heartbeatIntervalMs(): number {
    return readConfig(this.env).heartbeatIntervalMs;
  }

  /** The interval to tell a node now: longer as the fleet grows. */
  private intervalToTell(): number {
    return heartbeatIntervalFor(this.counts.liveNodes(), this.heartbeatIntervalMs());
  }

  /** Heard from (heartbeat, register or claim) recently enough not to count as lost: within two of the intervals it was told. */
  private heardRecently(node: NodeRecord): boolean {
    const silentMs = this.clock() - Math.max(node.lastSeenAt, this.startedAt);
    return silentMs <= Math.max(node.heartbeatIntervalMs ?? 0, this.heartbeatIntervalMs()) * MISSED_HEARTBEATS_BEFORE_LOST;
  }

  /**
   * Saves a node's record, or only keeps it in memory when nothing but the time changed (an idle
   * node's next long poll or heartbeat, tens a second at 1,000 nodes): after a restart no node
   * counts as silent from before it (heardRecently), so lastSeenAt need not be stored.
   */
  private saveUnlessOnlySeen(before: NodeRecord, after: NodeRecord): void {
    if (onlyLastSeenChanged(before, after)) this.nodes.set(after.nodeId, after);
    else this.save(after);
  }

  /** `r` is the register body as the Worker validated it (defaults filled); `keyId` the node key sending it. */
  async register(r: RegisterBody, keyId: string): Promise<RegisterOutcome> {
    if (!this.bindNodeId(r.nodeId, keyId)) return { outcome: "node_id_taken" };
    const now = this.clock();
    const previous = this.nodes.get(r.nodeId);
    if (previous && previous.status !== "lost") await this.releaseLeases(previous.nodeId);
    const group = r.group ?? defaultGroupName(r.gpuClass, r.gpuMemoryMb);
    const heartbeatIntervalMs = this.intervalToTell();
    this.saveGroup({ ...this.group(group), seenGpuClass: r.gpuClass, seenGpuMemoryMb: r.gpuMemoryMb });
    this.save({
      nodeId: r.nodeId,
      instanceId: r.instanceId ?? null,
      agentVersion: r.agentVersion,
      gpuClass: r.gpuClass,
      gpuMemoryMb: r.gpuMemoryMb,
      loadedCheckpoint: r.loadedCheckpoint,
      cachedCheckpoints: r.cachedCheckpoints,
      cachedAddons: r.cachedAddons,
      ramCheckpoints: r.ramCheckpoints,
      status: "idle",
      currentTaskId: null,
      servingSince: r.loadedCheckpoint ? now : null,
      registeredAt: now,
      lastSeenAt: now,
      restartRequested: false,
      catalog: r.catalog,
      group,
      leaving: false,
      idleSince: null,
      // The same process registering again (the Worker forgot it) is not a new boot.
      firstClaimAt: previous && r.instanceId !== undefined && previous.instanceId === r.instanceId ? (previous.firstClaimAt ?? null) : null,
      heartbeatIntervalMs,
    });
    this.prefetchNamed.delete(r.nodeId);
    await this.scheduleAlarm();
    // A claim the replaced process left waiting ends now (node_replaced) instead of at its timeout.
    if (previous) this.wakeAll();
    const args = new Set<string>();
    for (const q of this.queues.values()) for (const arg of q.extraArgs.split(/\s+/).filter(Boolean)) args.add(arg);
    return { outcome: "registered", webuiExtraArgs: [...args].join(" "), heartbeatIntervalMs };
  }

  async heartbeat(nodeId: string, beat: Heartbeat, keyId: string): Promise<HeartbeatOutcome> {
    if (this.heldByAnotherKey(nodeId, keyId)) return { outcome: "node_id_taken" };
    const node = this.nodes.get(nodeId);
    if (!node) return { outcome: "unknown_node" };
    if (replacedBy(node, beat.instanceId)) return { outcome: "replaced" };
    const now = this.clock();
    // While a node works on the task Fleet gave it, it may still report the checkpoint it is
    // switching away from: keep the one it was placed on until it asks again.
    const placedTask = node.currentTaskId !== null && beat.currentTaskId === node.currentTaskId;
    const loaded = placedTask ? node.loadedCheckpoint : (beat.loadedCheckpoint ?? node.loadedCheckpoint);
    const switched = loaded !== node.loadedCheckpoint;
    const restartWebui = node.restartRequested && beat.status === "idle";
    const otherGpu = beat.gpuClass !== node.gpuClass || beat.gpuMemoryMb !== node.gpuMemoryMb;
    const updated: NodeRecord = {
      ...node,
      gpuClass: beat.gpuClass,
      gpuMemoryMb: beat.gpuMemoryMb,
      loadedCheckpoint: loaded,
      cachedCheckpoints: beat.cachedCheckpoints,
      cachedAddons: beat.cachedAddons,
      ramCheckpoints: beat.ramCheckpoints,
      fetchingCheckpoint: beat.fetchingCheckpoint ?? null,
      status: beat.status,
      currentTaskId: placedTask ? node.currentTaskId : beat.currentTaskId,
      servingSince: switched && loaded ? now : node.servingSince,
      lastSeenAt: now,
      restartRequested: node.restartRequested && !restartWebui,
      catalog: beat.catalog ?? node.catalog,
      idleSince: beat.status === "busy" ? null : (node.idleSince ?? null),
      heartbeatIntervalMs: this.intervalToTell(),
    };
    this.saveUnlessOnlySeen(node, updated);
    // Its parked claim asks again: on another GPU it parks among the new kind's claims; with other
    // files (a prefetch landed) placement may answer otherwise before its next bound.
    const otherFiles = switched || !sameValue(updated.cachedCheckpoints, node.cachedCheckpoints) || !sameValue(updated.ramCheckpoints, node.ramCheckpoints);
    if (otherGpu || otherFiles) this.wakeNode(nodeId);
    const leaving = node.leaving ?? false;
    return {
      outcome: "noted",
      restartWebui,
      drain: leaving,
      prefetch: leaving ? null : this.prefetchToName(updated),
      heartbeatIntervalMs: updated.heartbeatIntervalMs!,
    };
  }

  /** placement.ts's prefetch for the node, unless it was named to the node lately (PREFETCH_REPEAT_MS). */
  private prefetchToName(node: NodeRecord): string | null {
    const { self, queues } = this.placementView(node);
    const checkpoint = prefetchFor(self, queues);
    if (checkpoint === null) return null;
    const named = this.prefetchNamed.get(node.nodeId);
    const now = this.clock();
    if (named?.checkpoint === checkpoint && now - named.at < PREFETCH_REPEAT_MS) return null;
    this.prefetchNamed.set(node.nodeId, { checkpoint, at: now });
    // A node not fetching anything starts on the file named now: other nodes that beat before it
    // reports so are asked for other files (an agent fetching one already drops the hint).
    if (node.fetchingCheckpoint == null) this.save({ ...node, fetchingCheckpoint: checkpoint });
    return checkpoint;
  }

  async deregister(nodeId: string, keyId: string, instanceId?: string): Promise<"gone" | "unknown_node" | "replaced" | "node_id_taken"> {
    const node = this.nodes.get(nodeId);
    if (!node) return "unknown_node";
    if (this.heldByAnotherKey(nodeId, keyId)) return "node_id_taken";
    if (replacedBy(node, instanceId)) return "replaced";
    await this.releaseLeases(nodeId);
    this.forget(nodeId);
    // Its parked claim, if any (a long poll the leaving agent let go of), ends now instead of at its timeout.
    this.wakeNode(nodeId);
    return "gone";
  }

  private forget(nodeId: string): void {
    this.counts.update(this.nodes.get(nodeId), undefined);
    this.nodes.delete(nodeId);
    this.prefetchNamed.delete(nodeId);
    this.ctx.storage.sql.exec("DELETE FROM nodes WHERE node_id = ?", nodeId);
  }

  /** An admin removes the node, whatever its state, and releases its id to any node key. */
  async remove(nodeId: string): Promise<"gone" | "unknown_node"> {
    const node = this.nodes.get(nodeId);
    const wasBound = this.nodeKeys.delete(nodeId);
    this.ctx.storage.sql.exec("DELETE FROM node_keys WHERE node_id = ?", nodeId);
    if (!node) return wasBound ? "gone" : "unknown_node";
    this.forget(nodeId);
    // Its parked claim, if any, ends now (unknown_node) instead of at its timeout.
    this.wakeAll();
    if (node.status !== "lost") await this.releaseLeases(nodeId);
    return "gone";
  }

  /** A queue's state changed: remember it and wake waiting claims if it has work. */
  async reportQueue(summary: QueueSummary): Promise<void> {
    this.noteQueue(summary);
  }

  /** Remembers the summary and wakes as many parked claims as the work it adds could use. */
  private noteQueue(summary: QueueSummary): void {
    const before = this.queues.get(summary.checkpoint);
    if (!this.remember(summary)) return;
    const added = claimableWork(summary) - (before ? claimableWork(before) : 0);
    if (added > 0) this.wakeFor(summary.checkpoint, added, new Set());
  }

  /** Keeps the summary unless a newer one is known; answers whether it did. */
  private remember(summary: QueueSummary): boolean {
    const known = this.queues.get(summary.checkpoint);
    if (known && (known.reportedAt > summary.reportedAt || (known.reportedAt === summary.reportedAt && known.sequence > summary.sequence))) return false;
    this.queues.set(summary.checkpoint, summary);
    this.arrivalRates.set(summary.checkpoint, nextArrivalRate(this.arrivalRates.get(summary.checkpoint), summary.arrivals, summary.reportedAt));
    this.ctx.storage.sql.exec("INSERT OR REPLACE INTO queues (checkpoint, data) VALUES (?, ?)", summary.checkpoint, JSON.stringify(summary));
    return true;
  }

  /** Wakes every parked claim (a node went away or may serve a checkpoint again): each decides anew. */
  private wakeAll(): void {
    for (const wake of this.wakeClaims.takeAll()) wake();
  }

  /** Wakes the node's parked claim, if any: it decides anew. */
  private wakeNode(nodeId: string): void {
    for (const [wake, parkedId] of this.wakeClaims.entries()) {
      if (parkedId !== nodeId) continue;
      this.wakeClaims.delete(wake);
      wake();
    }
  }

  /**
   * Wakes up to `count` parked claims, not yet `tried`, whose nodes could serve `checkpoint`, in
   * wake order: each resumes in that order up to its call to the queue, so the best-placed
   * node's claim reaches the queue first.
   */
  private wakeFor(checkpoint: string, count: number, tried: Set<string>): void {
    const q = this.queues.get(checkpoint);
    if (!q) return;
    const couldServe = (nodeId: string) => {
      const node = this.nodes.get(nodeId);
      return node !== undefined && !tried.has(nodeId) && !this.failedOn.get(checkpoint)?.has(nodeId);
    };
    const parked = this.wakeClaims.fitting(q).filter(([, nodeId]) => couldServe(nodeId));
    const chosen = claimsToWake(parked, ([, nodeId]) => this.nodes.get(nodeId)!, checkpoint, q.nextTaskAddons ?? [], count);
    const reason = { checkpoint, tried };
    for (const [, nodeId] of chosen) tried.add(nodeId);
    for (const [wake] of chosen) {
      this.wakeClaims.delete(wake);
      wake(reason);
    }
  }

  /** A claim woken for `reason`'s work did not take it: the next node that could is woken instead. */
  private passOn(reason: WakeReason): void {
    const q = this.queues.get(reason.checkpoint);
    if (q && claimableWork(q) > 0) this.wakeFor(reason.checkpoint, 1, reason.tried);
  }

  /**
   * A parked claim whose node has `checkpoint` loaded and holds more of the add-ons its next task
   * needs than `asking` does, if any.
   */
  private parkedHolder(asking: NodeRecord, checkpoint: string): (() => void) | null {
    const needed = this.queues.get(checkpoint)?.nextTaskAddons ?? [];
    if (needed.length === 0) return null;
    const onCheckpoint = this.wakeClaims.entries().filter(([, nodeId]) => this.nodes.get(nodeId)?.loadedCheckpoint === checkpoint);
    const holder = betterHolder(asking.cachedAddons, onCheckpoint, ([, nodeId]) => this.nodes.get(nodeId)?.cachedAddons ?? [], needed);
    return holder ? holder[0] : null;
  }

  /** Owners whose running tasks, summed over every queue, reach their maxRunning. */
  private ownersAtRunningLimit(): string[] {
    const running = new Map<string, number>();
    const limits = new Map<string, number>();
    for (const q of this.queues.values()) {
      // Summaries stored before queues reported owners' limits have none.
      for (const [owner, count] of Object.entries(q.limitedOwnersRunning ?? {})) running.set(owner, (running.get(owner) ?? 0) + count);
      for (const [owner, max] of Object.entries(q.limitedOwnersMax ?? {})) limits.set(owner, Math.min(max, limits.get(owner) ?? max));
    }
    return [...limits].filter(([owner, max]) => (running.get(owner) ?? 0) >= max).map(([owner]) => owner);
  }

  private placementView(node: NodeRecord): { self: PlacementNode; queues: PlacementQueue[] } {
    const now = this.clock();
    const queues = [...this.queues.values()].map((q) => ({
      checkpoint: q.checkpoint,
      waiting: q.waiting,
      oldestWaitingAgeMs: q.oldestWaitingAt === null ? 0 : Math.max(0, now - q.oldestWaitingAt),
      running: q.running,
      concurrencyCap: q.concurrencyCap,
      nodesServing: this.counts.loadedOn(q.checkpoint, node) - this.loadedByFailed(q.checkpoint, node.nodeId),
      cachedOnNodes: this.counts.heldBy(q.checkpoint, node),
      fetchingOnNodes: this.counts.fetchingOn(q.checkpoint, node),
      eligibleNodes: this.counts.eligible(q),
      minNodes: q.minNodes,
      maxNodes: q.maxNodes,
      minGpuMemoryMb: q.minGpuMemoryMb,
      gpuClass: q.gpuClass,
      loadMs: q.loadMs,
      downloadMs: q.downloadMs,
      inferenceMs: q.inferenceMs,
      arrivalsPerS: arrivalRateAt(this.arrivalRates.get(q.checkpoint), now),
    }));
    const self: PlacementNode = {
      nodeId: node.nodeId,
      loadedCheckpoint: node.loadedCheckpoint,
      cachedCheckpoints: node.cachedCheckpoints,
      ramCheckpoints: node.ramCheckpoints,
      gpuMemoryMb: node.gpuMemoryMb,
      gpuClass: node.gpuClass,
      servingSinceMs: node.servingSince,
      idleSinceMs: node.idleSince ?? null,
      refusedCheckpoints: [...this.failedOn].filter(([, nodeIds]) => nodeIds.has(node.nodeId)).map(([checkpoint]) => checkpoint),
    };
    return { self, queues };
  }

  /** Live nodes other than `selfId` that have `checkpoint` loaded though it failed on them: they do not serve it. */
  private loadedByFailed(checkpoint: string, selfId: string): number {
    let count = 0;
    for (const nodeId of this.failedOn.get(checkpoint) ?? []) {
      const other = this.nodes.get(nodeId);
      if (nodeId !== selfId && other && other.status !== "lost" && other.loadedCheckpoint === checkpoint) count += 1;
    }
    return count;
  }

  /**
   * An idle node asks for work: place it, claim from that checkpoint's queue, or wait until a
   * queue reports work or `waitMs` passes.
   */
  async claim(
    nodeId: string,
    waitMs: number,
    state: Pick<ClaimRequest, "loadedCheckpoint" | "cachedCheckpoints" | "cachedAddons" | "ramCheckpoints" | "instanceId">,
    keyId: string,
  ): Promise<FleetClaim> {
    const woken: { reason: WakeReason | null; claimedFrom: string | null } = { reason: null, claimedFrom: null };
    try {
      return await this.placeOrPark(nodeId, waitMs, state, keyId, woken);
    } finally {
      if (woken.reason && woken.reason.checkpoint !== woken.claimedFrom) this.passOn(woken.reason);
    }
  }

  /** claim's work; `woken` says why the claim was last woken and where it claimed, if it did. */
  private async placeOrPark(
    nodeId: string,
    waitMs: number,
    state: Pick<ClaimRequest, "loadedCheckpoint" | "cachedCheckpoints" | "cachedAddons" | "ramCheckpoints" | "instanceId">,
    keyId: string,
    woken: { reason: WakeReason | null; claimedFrom: string | null },
  ): Promise<FleetClaim> {
    if (this.heldByAnotherKey(nodeId, keyId)) return { outcome: "node_id_taken" };
    const deadline = this.clock() + waitMs;
    const asking = this.nodes.get(nodeId);
    if (asking && replacedBy(asking, state.instanceId)) return { outcome: "replaced" };
    if (asking && asking.status !== "lost") {
      if (!asking.firstClaimAt) this.learnBoot(asking);
      // The node says what it has as it asks: fresher than any heartbeat, and what placement goes by.
      const loaded = state.loadedCheckpoint === undefined ? asking.loadedCheckpoint : state.loadedCheckpoint;
      const asked: NodeRecord = {
        ...asking,
        lastSeenAt: this.clock(),
        status: asking.status === "draining" ? "draining" : "idle",
        currentTaskId: null,
        loadedCheckpoint: loaded,
        cachedCheckpoints: state.cachedCheckpoints ?? asking.cachedCheckpoints,
        cachedAddons: state.cachedAddons ?? asking.cachedAddons,
        ramCheckpoints: state.ramCheckpoints ?? asking.ramCheckpoints,
        servingSince: loaded !== asking.loadedCheckpoint ? (loaded ? this.clock() : null) : asking.servingSince,
        firstClaimAt: asking.firstClaimAt ?? this.clock(),
        idleSince: asking.idleSince ?? this.clock(),
      };
      this.saveUnlessOnlySeen(asking, asked);
    }
    let yielded = false;
    for (;;) {
      const node = this.nodes.get(nodeId);
      if (!node || node.status === "lost") return { outcome: "unknown_node" };
      if (replacedBy(node, state.instanceId)) return { outcome: "replaced" };
      if (node.status === "draining" || node.leaving) return { outcome: "none" };
      // A claim held open is no sign of life: a node frozen while it waits (its connection still
      // open) would sit on the task until declared lost. Work goes only to a node heard lately.
      if (!this.heardRecently(node)) return { outcome: "none" };
      const { self, queues } = this.placementView(node);
      const decidedAt = this.clock();
      const decision = choosePlacement(self, queues, decidedAt);
      if (decision) {
        // A parked node on that checkpoint holds more of the next task's add-ons: it asks first
        // (its claim reaches the queue before this one, which asks again straight after), once.
        const holder = yielded ? null : this.parkedHolder(node, decision.checkpoint);
        if (holder) {
          yielded = true;
          this.wakeClaims.delete(holder);
          holder();
          await new Promise((resolve) => setTimeout(resolve, 0));
          continue;
        }
        const outcome = await queueStub(this.env, decision.checkpoint).claim(nodeId, { excludeOwners: this.ownersAtRunningLimit() });
        if (outcome.outcome === "claimed") {
          woken.claimedFrom = decision.checkpoint;
          this.noteQueue(outcome.summary);
          const current = this.nodes.get(nodeId) ?? node;
          const switching = current.loadedCheckpoint !== decision.checkpoint;
          this.save({
            ...current,
            status: "busy",
            currentTaskId: outcome.task.id,
            loadedCheckpoint: decision.checkpoint,
            servingSince: switching ? this.clock() : current.servingSince,
            idleSince: null,
          });
          return { outcome: "claimed", task: outcome.task, lease: outcome.lease };
        }
        // Our view of that queue was stale: refresh it and decide again straight away — unless
        // its waiting work is all of owners at their running limit across queues: placement would
        // send the node straight back, so it waits for the next report instead.
        this.remember(outcome.summary);
        if (outcome.outcome !== "empty" || outcome.summary.waiting === 0) continue;
      }
      const remaining = deadline - this.clock();
      if (remaining <= 0) return { outcome: "none" };
      if (woken.reason) this.passOn(woken.reason);
      // Placement may answer otherwise as work ages into due, the node turns spare or demand
      // decays (decision-horizon.ts): ask again then, if nothing happens before.
      const askAgainInMs = nextDecisionChangeMs(self, queues, decidedAt) - this.clock();
      woken.reason = await new Promise<WakeReason | null>((resolve) => {
        const wake = (reason?: WakeReason) => {
          clearTimeout(timer);
          resolve(reason ?? null);
        };
        const timer = setTimeout(
          () => {
            this.wakeClaims.delete(wake);
            resolve(null);
          },
          Math.min(remaining, Math.max(0, askAgainInMs)),
        );
        this.wakeClaims.park(wake, nodeId, node);
      });
    }
  }

  async listNodes(): Promise<NodeRecord[]> {
    this.forgetLongLost();
    return [...this.nodes.values()].sort((a, b) => a.nodeId.localeCompare(b.nodeId));
  }

  /** Lost nodes are listed for a while (an admin sees what went away), then dropped; their ids stay bound to their keys. */
  private forgetLongLost(): void {
    const cutoff = this.clock() - readConfig(this.env).lostNodeRetentionMs;
    for (const node of [...this.nodes.values()]) {
      if (node.status !== "lost" || node.lastSeenAt > cutoff) continue;
      this.forget(node.nodeId);
    }
  }

  /** The checkpoint was deleted: placement and listings stop counting its queue. */
  async forgetQueue(checkpoint: string): Promise<void> {
    this.queues.delete(checkpoint);
    this.ctx.storage.sql.exec("DELETE FROM queues WHERE checkpoint = ?", checkpoint);
  }

  async listQueues(): Promise<QueueSummary[]> {
    return [...this.queues.values()];
  }

  /**
   * The node could not load `checkpoint` (or ran on other weights): placement never sends it
   * there again until clearModelFailures. Answers how many distinct nodes it failed on, and how
   * many live nodes could serve it under its pool's GPU constraints (those included).
   */
  async recordModelFailure(nodeId: string, checkpoint: string): Promise<{ failedNodes: number; eligibleNodes: number }> {
    const failed = this.failedNodes(checkpoint);
    if (!failed.has(nodeId)) {
      failed.add(nodeId);
      this.ctx.storage.sql.exec("INSERT OR IGNORE INTO model_failures (checkpoint, node_id, failed_at) VALUES (?, ?, ?)", checkpoint, nodeId, this.clock());
    }
    const pool = this.queues.get(checkpoint);
    let eligibleNodes = 0;
    for (const node of this.nodes.values()) if (node.status !== "lost" && (!pool || fitsPool(node, pool))) eligibleNodes += 1;
    return { failedNodes: failed.size, eligibleNodes };
  }

  /** The checkpoint's file changed: every node may be offered it again. */
  async clearModelFailures(checkpoint: string): Promise<void> {
    if (!this.failedOn.delete(checkpoint)) return;
    this.ctx.storage.sql.exec("DELETE FROM model_failures WHERE checkpoint = ?", checkpoint);
    this.wakeAll();
  }

  async catalog(): Promise<WebuiCatalog> {
    return mergeCatalogs([...this.nodes.values()].filter((n) => n.status !== "lost").map((n) => n.catalog));
  }

  /** POST /restart: every node restarts its sd-webui when next idle. */
  async requestRestart(): Promise<number> {
    let count = 0;
    for (const node of this.nodes.values()) {
      if (node.status === "lost") continue;
      this.save({ ...node, restartRequested: true });
      count += 1;
    }
    return count;
  }

  // ---- node groups and scaling (issue 15) ---------------------------------------------------------

  private group(name: string): NodeGroupRecord {
    return this.groups.get(name) ?? newGroupRecord(name);
  }

  private saveGroup(group: NodeGroupRecord): void {
    this.groups.set(group.name, group);
    this.ctx.storage.sql.exec("INSERT OR REPLACE INTO node_groups (name, data) VALUES (?, ?)", group.name, JSON.stringify(group));
  }

  /** A node asks for work for the first time since it registered: its group learns how long it took. */
  private learnBoot(node: NodeRecord): void {
    if (!node.group) return;
    this.saveGroup(withBootSample(this.group(node.group), Math.max(0, this.clock() - node.registeredAt)));
  }

  async listGroups(): Promise<NodeGroupRecord[]> {
    return [...this.groups.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  async putGroup(name: string, settings: GroupSettings): Promise<NodeGroupRecord> {
    this.saveGroup({ ...this.group(name), settings });
    return this.group(name);
  }

  /**
   * The scaler's tick (GET /autoscale, read by KEDA or the local scaler): each group's desired
   * node count, and the nodes chosen to leave, which from now on get no work and are told to
   * drain. Only a scaler's read decides scale-in: a fleet nobody scales is never drained, and
   * `apply` false (GET /metrics, scraped whatever scales the fleet) only looks.
   */
  async autoscale(apply = true): Promise<AutoscaleView> {
    const now = this.clock();
    const groups = [...this.groups.values()].map(scalingGroup).filter((g): g is ScalingGroup => g !== null);
    const nodes: ScalingNode[] = [];
    for (const node of this.nodes.values()) {
      if (node.status === "lost" || !node.group) continue;
      const state = node.status === "draining" || node.leaving ? "draining" : !node.firstClaimAt ? "booting" : node.status === "busy" ? "busy" : "idle";
      nodes.push({
        nodeId: node.nodeId,
        group: node.group,
        state,
        idleSinceMs: state === "idle" ? (node.idleSince ?? null) : null,
        loadedCheckpoint: node.loadedCheckpoint,
        cachedCheckpoints: node.cachedCheckpoints,
      });
    }
    const queues = [...this.queues.values()].map((q) => ({
      checkpoint: q.checkpoint,
      waiting: q.waiting,
      running: q.running,
      oldestWaitingAgeMs: q.oldestWaitingAt === null ? 0 : Math.max(0, now - q.oldestWaitingAt),
      arrivalsPerS: arrivalRateAt(this.arrivalRates.get(q.checkpoint), now),
      inferenceMs: q.inferenceMs,
      loadMs: q.loadMs,
      concurrencyCap: q.concurrencyCap,
      maxNodes: q.maxNodes,
      minGpuMemoryMb: q.minGpuMemoryMb,
      gpuClass: q.gpuClass,
    }));
    const decisions = decideScaling(groups, nodes, queues, now, this.surpluses);
    const view = { groups: decisions, unservedCheckpoints: unservedCheckpoints(groups, nodes, queues) };
    if (!apply) return view;
    for (const d of decisions) {
      if (d.surplus) this.surpluses.set(d.group, d.surplus);
      else this.surpluses.delete(d.group);
    }
    for (const nodeId of decisions.flatMap((d) => d.leave)) {
      const node = this.nodes.get(nodeId);
      if (node) this.save({ ...node, leaving: true });
    }
    // Their parked claims end now (none) instead of at their timeout.
    if (decisions.some((d) => d.leave.length > 0)) this.wakeAll();
    return view;
  }

  private async releaseLeases(nodeId: string): Promise<void> {
    const holding = [...this.queues.values()].filter((q) => q.leaseHolders.includes(nodeId));
    for (const q of holding) await queueStub(this.env, q.checkpoint).releaseNode(nodeId);
  }

  override async alarm(): Promise<void> {
    for (const node of [...this.nodes.values()]) {
      if (node.status === "lost" || this.heardRecently(node)) continue;
      this.save({ ...node, status: "lost", currentTaskId: null });
      await this.releaseLeases(node.nodeId);
    }
    await this.scheduleAlarm();
  }

  private async scheduleAlarm(): Promise<void> {
    const anyAlive = [...this.nodes.values()].some((n) => n.status !== "lost");
    if (anyAlive) await this.ctx.storage.setAlarm(this.clock() + this.heartbeatIntervalMs());
    else await this.ctx.storage.deleteAlarm();
  }
}
