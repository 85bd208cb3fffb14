// The scaling policy (issue 15): how many GPU nodes each node group should have, and which
// nodes leave when it has too many.
//
// Pure: no I/O, no clock (`nowMs` is an argument), no imports. Fleet calls it for GET /autoscale
// (what KEDA or the local scaler reads); bench/autoscale drives the same function in a simulator.
//
// Demand is counted in nodes, per group, over a horizon H = max(target wait, boot time +
// CLEARING_SHARE of the target wait): the waiting work (tasks × inference time, plus a load for
// a checkpoint no node has loaded, plus half of what runs) and the work arriving within H
// (arrival rate × inference time) must be done within H. Nodes ready now work all of H; a node
// started now works only H − boot. So while the ready nodes suffice, the demand is the share of
// them the work needs; past that, every missing node-second costs H / (H − boot) of new nodes:
// a group scales out early and wide enough that the nodes still booting cover the work that
// piles up meanwhile. Arrivals alone never ask for fewer than rate × inference /
// TARGET_UTILIZATION nodes, so queues stay short.
//
// A group's desired count is its demand rounded up, within [minNodes, maxNodes] and never more
// nodes than tasks (waiting, running, and arriving while a node boots) or than its pools' caps
// take. It grows at once. It shrinks by nodes idle for the group's idle time, and, once the
// group has had too many nodes for the idle time (spread work may keep every node from idling
// that long), to the most it wanted meanwhile: idle nodes first, then the least valuable cache
// first; busy ones finish their task. Fleet gives the nodes that leave no more work and tells
// them to drain. A group whose demand falls to 0 goes to minNodes, 0 when allowed.

export interface ScalingGroup {
  name: string;
  /** What the group's nodes have: which pools they may serve. */
  gpuClass: string;
  gpuMemoryMb: number;
  minNodes: number;
  /** 0 = no limit. */
  maxNodes: number;
  /** A node idle this long may leave. */
  idleMs: number;
  /** How long waiting work may wait for a node. */
  targetWaitMs: number;
  /** How long a new node takes from start to its first claim. */
  bootMs: number;
  /** An admin set its settings (PUT /groups/{name}): somebody scales it, even with no node now. */
  configured: boolean;
}

export type ScalingNodeState = "booting" | "idle" | "busy" | "draining";

export interface ScalingNode {
  nodeId: string;
  group: string;
  /** booting: registered, not yet claimed; draining: leaving (by its own choice or ours). */
  state: ScalingNodeState;
  /** Since when it has been idle (null unless idle). */
  idleSinceMs: number | null;
  loadedCheckpoint: string | null;
  cachedCheckpoints: readonly string[];
}

export interface ScalingQueue {
  checkpoint: string;
  waiting: number;
  running: number;
  oldestWaitingAgeMs: number;
  /** Tasks arriving per second lately (0 when unknown). */
  arrivalsPerS: number;
  inferenceMs: number;
  loadMs: number;
  concurrencyCap: number;
  /** 0 = no limit. */
  maxNodes: number;
  minGpuMemoryMb: number;
  gpuClass: string | null;
}

export interface GroupScaling {
  group: string;
  desired: number;
  /** Nodes that count: booting, ready and busy ones (not draining). */
  current: number;
  /** Registered and taking work (idle or busy). */
  ready: number;
  busy: number;
  booting: number;
  draining: number;
  /** Demand in nodes before rounding and limits. */
  demand: number;
  /** Nodes chosen to leave now (they get no more work and are told to drain). */
  leave: string[];
  /** Pass it back at the next decision (decideScaling's scalingState): how long the group has had too many nodes. */
  surplus: GroupSurplus | null;
  reasons: string[];
}

/** A group that has had more nodes than it wanted since `sinceMs`, wanting at most `peakWanted` meanwhile. */
export interface GroupSurplus {
  sinceMs: number;
  peakWanted: number;
}

/** Arrivals keep nodes busy at most this share of the time: queues stay short. */
export const TARGET_UTILIZATION = 0.75;

/** New nodes get at least this share of the target wait, after booting, to clear the work. */
export const CLEARING_SHARE = 0.5;

/** Demand a hair over a whole number (rounding noise) does not ask for one more node. */
const ROUNDING_SLACK = 0.05;

/** The group's GPU meets the pool's constraints (memory, class). */
export function groupFits(group: Pick<ScalingGroup, "gpuClass" | "gpuMemoryMb">, q: Pick<ScalingQueue, "gpuClass" | "minGpuMemoryMb">): boolean {
  return group.gpuMemoryMb >= q.minGpuMemoryMb && (q.gpuClass === null || q.gpuClass === group.gpuClass);
}

/**
 * The group that scales for q: among those that fit it, one that already has nodes on it, then
 * one that is configured or has nodes (a group only seen once, with no node left and no
 * settings, is likely scaled by nobody), then the one with the least GPU memory (the cheapest
 * that fits), then by name.
 */
export function servingGroup(q: ScalingQueue, groups: readonly ScalingGroup[], nodes: readonly ScalingNode[]): ScalingGroup | null {
  const live = (g: ScalingGroup) => nodes.filter((n) => n.group === g.name && n.state !== "draining");
  const serving = (g: ScalingGroup) => Number(live(g).some((n) => n.loadedCheckpoint === q.checkpoint));
  const managed = (g: ScalingGroup) => Number(g.configured || live(g).length > 0);
  const fitting = groups.filter((g) => groupFits(g, q));
  fitting.sort((a, b) => serving(b) - serving(a) || managed(b) - managed(a) || a.gpuMemoryMb - b.gpuMemoryMb || a.name.localeCompare(b.name));
  return fitting[0] ?? null;
}

/** What q asks of the group that serves it: work waiting (ms), flow (busy nodes), the most nodes it can use, and why. */
export function queueWork(
  q: ScalingQueue,
  group: ScalingGroup,
  loadedSomewhere: boolean,
): { workMs: number; flow: number; limit: number; reason: string | null } {
  const workMs = (q.waiting > 0 ? q.waiting * q.inferenceMs + (loadedSomewhere ? 0 : q.loadMs) : 0) + (q.running * q.inferenceMs) / 2;
  // Arrivals keep nodes warm only while at least one is expected within the group's idle time:
  // sparser ones would leave a node idle that long anyway, and the group must reach zero (the
  // smoothed rate decays toward zero but never reaches it).
  const steady = (q.arrivalsPerS * group.idleMs) / 1000 >= 1;
  const flow = steady ? (q.arrivalsPerS * q.inferenceMs) / 1000 : 0;
  const tasks = q.waiting + q.running + Math.ceil((q.arrivalsPerS * group.bootMs) / 1000);
  const limit = Math.min(q.concurrencyCap, q.maxNodes > 0 ? q.maxNodes : Infinity, tasks);
  const parts = [
    q.waiting > 0 ? `${q.waiting} waiting (oldest ${Math.round(q.oldestWaitingAgeMs / 1000)} s)` : null,
    q.running > 0 ? `${q.running} running` : null,
    q.arrivalsPerS > 0.001 ? `${q.arrivalsPerS.toFixed(3)}/s arriving` : null,
  ].filter(Boolean);
  return { workMs, flow, limit, reason: parts.length > 0 ? `${q.checkpoint}: ${parts.join(", ")}` : null };
}

/** Nodes a group needs for `workMs` waiting and `flow` arriving, with `ready` nodes taking work now (see the top of this file). */
export function groupDemand(group: ScalingGroup, workMs: number, flow: number, ready: number, running: number): number {
  const horizonMs = Math.max(group.targetWaitMs, group.bootMs + group.targetWaitMs * CLEARING_SHARE);
  const neededMs = workMs + flow * horizonMs;
  const nodes = neededMs <= ready * horizonMs ? neededMs / horizonMs : ready + (neededMs - ready * horizonMs) / (horizonMs - group.bootMs);
  return Math.max(nodes, flow / TARGET_UTILIZATION, running);
}

/**
 * How much losing `node` costs: the activity of the checkpoints on its disk that no other
 * remaining node of its group has (a leaving node's files are downloaded again if needed).
 */
function cacheValue(node: ScalingNode, others: readonly ScalingNode[], queues: readonly ScalingQueue[]): number {
  let value = 0;
  for (const checkpoint of new Set([...node.cachedCheckpoints, ...(node.loadedCheckpoint ? [node.loadedCheckpoint] : [])])) {
    if (others.some((o) => o.loadedCheckpoint === checkpoint || o.cachedCheckpoints.includes(checkpoint))) continue;
    const q = queues.find((x) => x.checkpoint === checkpoint);
    value += 1 + (q ? q.waiting + q.running + q.arrivalsPerS * 60 : 0);
  }
  return value;
}

export function decideScaling(
  groups: readonly ScalingGroup[],
  nodes: readonly ScalingNode[],
  queues: readonly ScalingQueue[],
  nowMs: number,
  scalingState: ReadonlyMap<string, GroupSurplus> = new Map(),
): GroupScaling[] {
  const asked = new Map(groups.map((g) => [g.name, { workMs: 0, flow: 0, limit: 0, running: 0, reasons: [] as string[] }]));
  for (const q of queues) {
    if (q.waiting === 0 && q.running === 0 && q.arrivalsPerS === 0) continue;
    const group = servingGroup(q, groups, nodes);
    if (!group) continue;
    const loadedSomewhere = nodes.some((n) => n.state !== "draining" && n.loadedCheckpoint === q.checkpoint);
    const work = queueWork(q, group, loadedSomewhere);
    const entry = asked.get(group.name)!;
    entry.workMs += work.workMs;
    entry.flow += work.flow;
    entry.limit += work.limit;
    entry.running += q.running;
    if (work.reason) entry.reasons.push(work.reason);
  }

  return groups.map((group) => {
    const mine = nodes.filter((n) => n.group === group.name);
    const staying = mine.filter((n) => n.state !== "draining");
    const count = (state: ScalingNodeState) => mine.filter((n) => n.state === state).length;
    const { workMs, flow, limit, running, reasons } = asked.get(group.name)!;
    const ready = mine.filter((n) => n.state === "idle" || n.state === "busy").length;
    const demandNodes = workMs === 0 && flow === 0 ? 0 : Math.min(groupDemand(group, workMs, flow, ready, running), Math.max(limit, running));
    const maxNodes = group.maxNodes > 0 ? group.maxNodes : Infinity;
    const wanted = Math.min(maxNodes, Math.max(group.minNodes, Math.ceil(demandNodes - ROUNDING_SLACK)));
    const figures = {
      group: group.name,
      current: staying.length,
      ready,
      busy: count("busy"),
      booting: count("booting"),
      draining: count("draining"),
      demand: Math.round(demandNodes * 100) / 100,
    };
    const why = [...reasons];
    if (wanted === group.minNodes && Math.ceil(demandNodes - ROUNDING_SLACK) < group.minNodes) why.push(`minNodes ${group.minNodes}`);
    if (Number.isFinite(maxNodes) && Math.ceil(demandNodes - ROUNDING_SLACK) > maxNodes) why.push(`capped at maxNodes ${group.maxNodes}`);
    if (wanted >= staying.length) {
      if (wanted > staying.length) why.push(`scale out: ${wanted - staying.length} more (boot ≈ ${Math.round(group.bootMs / 1000)} s)`);
      return { ...figures, desired: wanted, leave: [], surplus: null, reasons: why };
    }
    // Too many. Nodes idle for the idle time leave at once; once the group has had too many for
    // the idle time, it shrinks to the most it wanted meanwhile, busy nodes too (they finish
    // their task first): with work spread over every node, none may ever sit idle that long.
    const previous = scalingState.get(group.name) ?? null;
    const surplus = { sinceMs: previous?.sinceMs ?? nowMs, peakWanted: Math.max(previous?.peakWanted ?? 0, wanted) };
    const lasted = nowMs - surplus.sinceMs >= group.idleMs;
    const idleLongEnough = (n: ScalingNode) => n.state === "idle" && n.idleSinceMs !== null && nowMs - n.idleSinceMs >= group.idleMs;
    const leave = [...pickLeaving(staying.filter(idleLongEnough), staying, [], staying.length - wanted, queues)];
    if (lasted)
      leave.push(
        ...pickLeaving(
          staying.filter((n) => n.state === "idle" || n.state === "busy"),
          staying,
          leave,
          staying.length - leave.length - surplus.peakWanted,
          queues,
        ),
      );
    const desired = staying.length - leave.length;
    if (leave.length > 0)
      why.push(
        `scale in: ${leave.length} leave (${lasted ? `more than needed for ${Math.round(group.idleMs / 1000)} s` : `idle ≥ ${Math.round(group.idleMs / 1000)} s`})`,
      );
    if (desired > wanted) why.push(`${desired - wanted} more than needed, kept until idle ${Math.round(group.idleMs / 1000)} s`);
    return { ...figures, desired, leave: leave.map((n) => n.nodeId), surplus: lasted ? null : surplus, reasons: why };
  });
}

/**
 * Up to `count` of `candidates` to leave besides `leaving`: idle before busy, then the least
 * valuable cache (see cacheValue), then the longest idle.
 */
function pickLeaving(
  candidates: readonly ScalingNode[],
  staying: readonly ScalingNode[],
  leaving: readonly ScalingNode[],
  count: number,
  queues: readonly ScalingQueue[],
): ScalingNode[] {
  const picked: ScalingNode[] = [];
  for (let i = 0; i < count; i++) {
    const gone = [...leaving, ...picked];
    const remaining = staying.filter((n) => !gone.includes(n));
    const next = candidates
      .filter((n) => !gone.includes(n))
      .map((n) => ({
        n,
        busy: n.state === "busy" ? 1 : 0,
        value: cacheValue(
          n,
          remaining.filter((o) => o !== n),
          queues,
        ),
      }))
      .sort((a, b) => a.busy - b.busy || a.value - b.value || (a.n.idleSinceMs ?? 0) - (b.n.idleSinceMs ?? 0) || a.n.nodeId.localeCompare(b.n.nodeId))[0];
    if (!next) break;
    picked.push(next.n);
  }
  return picked;
}

/** Checkpoints with work that no group may serve (no group fits their pool's constraints). */
export function unservedCheckpoints(groups: readonly ScalingGroup[], nodes: readonly ScalingNode[], queues: readonly ScalingQueue[]): string[] {
  return queues.filter((q) => (q.waiting > 0 || q.running > 0) && !servingGroup(q, groups, nodes)).map((q) => q.checkpoint);
}
