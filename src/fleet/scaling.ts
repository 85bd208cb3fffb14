// The scaling policy (issue 15): how many GPU nodes each node group should have, and which
// nodes leave when it has too many.
//
// Pure: no I/O, no clock (`nowMs` is an argument), no imports. Fleet calls it for GET /autoscale
// (what KEDA or the local scaler reads) and on its alarm; bench/autoscale drives the same
// function in a simulator.
//
// Demand is counted in nodes. For each checkpoint queue, in the group that serves it:
//
//   flow    — nodes its arrivals keep busy (arrival rate × inference time), at TARGET_UTILIZATION
//             so that queues stay short; never less than the tasks running now;
//   backlog — nodes that clear its waiting work (tasks × inference time, plus one load when no
//             node has it loaded) within the group's target wait, less the time new nodes take
//             to boot: work that waits for a node to boot has less time left to run.
//
// A group's desired count is its demand rounded up, within [minNodes, maxNodes]. It grows at
// once (a node takes a boot time to come, so waiting costs more than a spare node), and shrinks
// only by nodes idle for the group's idle time: those leave (idle first, least valuable cache
// first), and Fleet gives them no more work. A group whose demand falls to 0 goes to minNodes,
// 0 when allowed.

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
  reasons: string[];
}

/** Flow demand is sized so nodes are busy this share of the time: queues stay short. */
export const TARGET_UTILIZATION = 0.75;

/**
 * Backlog demand counts at least this share of the target wait as the time to clear it, even
 * when booting eats most of it (a target shorter than the boot cannot be met by new nodes; the
 * backlog then asks for nodes as if it had this long).
 */
export const MIN_CLEARING_SHARE = 0.25;

/** Demand a hair over a whole number (rounding noise) does not ask for one more node. */
const ROUNDING_SLACK = 0.05;

/** The node's GPU meets the pool's constraints (memory, class). */
export function groupFits(group: Pick<ScalingGroup, "gpuClass" | "gpuMemoryMb">, q: Pick<ScalingQueue, "gpuClass" | "minGpuMemoryMb">): boolean {
  return group.gpuMemoryMb >= q.minGpuMemoryMb && (q.gpuClass === null || q.gpuClass === group.gpuClass);
}

/**
 * The group that scales for q: among those that fit it, one that already has nodes on it, then
 * the one with the least GPU memory (the cheapest that fits), then by name.
 */
export function servingGroup(q: ScalingQueue, groups: readonly ScalingGroup[], nodes: readonly ScalingNode[]): ScalingGroup | null {
  const serving = (g: ScalingGroup) => nodes.some((n) => n.group === g.name && n.state !== "draining" && n.loadedCheckpoint === q.checkpoint);
  const fitting = groups.filter((g) => groupFits(g, q));
  fitting.sort((a, b) => Number(serving(b)) - Number(serving(a)) || a.gpuMemoryMb - b.gpuMemoryMb || a.name.localeCompare(b.name));
  return fitting[0] ?? null;
}

/** Nodes q needs in `group`, and why. */
export function queueDemand(q: ScalingQueue, group: ScalingGroup, loadedSomewhere: boolean): { nodes: number; reason: string | null } {
  const flow = Math.max((q.arrivalsPerS * q.inferenceMs) / 1000 / TARGET_UTILIZATION, q.running);
  const backlogMs = q.waiting > 0 ? q.waiting * q.inferenceMs + (loadedSomewhere ? 0 : q.loadMs) : 0;
  const clearingMs = Math.max(group.targetWaitMs - group.bootMs - q.oldestWaitingAgeMs, group.targetWaitMs * MIN_CLEARING_SHARE, 1);
  const backlog = backlogMs / clearingMs;
  // Never more nodes than tasks to run (those waiting, running, and arriving while a node boots), nor than the pool takes.
  const tasks = q.waiting + q.running + Math.ceil((q.arrivalsPerS * group.bootMs) / 1000);
  const limit = Math.min(q.concurrencyCap, q.maxNodes > 0 ? q.maxNodes : Infinity, tasks);
  const nodes = Math.min(flow + backlog, Math.max(limit, q.running));
  if (nodes <= 0) return { nodes: 0, reason: null };
  const parts = [
    q.waiting > 0 ? `${q.waiting} waiting (oldest ${Math.round(q.oldestWaitingAgeMs / 1000)} s)` : null,
    q.running > 0 ? `${q.running} running` : null,
    q.arrivalsPerS > 0 ? `${q.arrivalsPerS.toFixed(2)}/s arriving` : null,
  ].filter(Boolean);
  return { nodes, reason: `${q.checkpoint}: ${parts.join(", ")} → ${nodes.toFixed(2)} nodes` };
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

export function decideScaling(groups: readonly ScalingGroup[], nodes: readonly ScalingNode[], queues: readonly ScalingQueue[], nowMs: number): GroupScaling[] {
  const demand = new Map<string, { nodes: number; reasons: string[] }>(groups.map((g) => [g.name, { nodes: 0, reasons: [] }]));
  for (const q of queues) {
    if (q.waiting === 0 && q.running === 0 && q.arrivalsPerS === 0) continue;
    const group = servingGroup(q, groups, nodes);
    if (!group) continue;
    const loadedSomewhere = nodes.some((n) => n.state !== "draining" && n.loadedCheckpoint === q.checkpoint);
    const { nodes: needed, reason } = queueDemand(q, group, loadedSomewhere);
    const entry = demand.get(group.name)!;
    entry.nodes += needed;
    if (reason) entry.reasons.push(reason);
  }

  return groups.map((group) => {
    const mine = nodes.filter((n) => n.group === group.name);
    const staying = mine.filter((n) => n.state !== "draining");
    const count = (state: ScalingNodeState) => mine.filter((n) => n.state === state).length;
    const { nodes: demandNodes, reasons } = demand.get(group.name)!;
    const maxNodes = group.maxNodes > 0 ? group.maxNodes : Infinity;
    const wanted = Math.min(maxNodes, Math.max(group.minNodes, Math.ceil(demandNodes - ROUNDING_SLACK)));
    const figures = {
      group: group.name,
      current: staying.length,
      ready: count("idle") + count("busy"),
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
      return { ...figures, desired: wanted, leave: [], reasons: why };
    }
    // Too many: only nodes idle for the idle time leave, least valuable cache first.
    const idleLongEnough = staying.filter((n) => n.state === "idle" && n.idleSinceMs !== null && nowMs - n.idleSinceMs >= group.idleMs);
    const leave: ScalingNode[] = [];
    for (let i = 0; i < staying.length - wanted; i++) {
      const remaining = staying.filter((n) => !leave.includes(n));
      const next = idleLongEnough
        .filter((n) => !leave.includes(n))
        .map((n) => ({
          n,
          value: cacheValue(
            n,
            remaining.filter((o) => o !== n),
            queues,
          ),
        }))
        .sort((a, b) => a.value - b.value || (a.n.idleSinceMs ?? 0) - (b.n.idleSinceMs ?? 0) || a.n.nodeId.localeCompare(b.n.nodeId))[0];
      if (!next) break;
      leave.push(next.n);
    }
    const desired = staying.length - leave.length;
    if (leave.length > 0) why.push(`scale in: ${leave.length} idle ≥ ${Math.round(group.idleMs / 1000)} s leave`);
    if (desired > wanted) why.push(`${desired - wanted} more than needed, kept until idle ${Math.round(group.idleMs / 1000)} s`);
    return { ...figures, desired, leave: leave.map((n) => n.nodeId), reasons: why };
  });
}

/** Checkpoints with work that no group may serve (no group fits their pool's constraints). */
export function unservedCheckpoints(groups: readonly ScalingGroup[], nodes: readonly ScalingNode[], queues: readonly ScalingQueue[]): string[] {
  return queues.filter((q) => (q.waiting > 0 || q.running > 0) && !servingGroup(q, groups, nodes)).map((q) => q.checkpoint);
}
