// Placement (DESIGN §5, model affinity): which checkpoint a GPU node serves next.
//
// Pure: no I/O, no clock (`nowMs` is an argument), no imports. The Fleet Durable Object calls it
// when a node asks for work, and bench/placement drives the same function in a simulator, so the
// benchmark measures this code.
//
// A switch (load, plus download when the file is not on the node's disk) costs 5 s to 2 min
// against 1–7 s of inference, so nodes stay where they are and move only when the backlog
// elsewhere pays for the move. How much a checkpoint's waiting work hurts is its *pressure*:
// the age of its oldest waiting task plus the time the nodes on it need for its backlog. A node
// that asks gets, in this order:
//
//   1. affinity    — its loaded checkpoint while that has claimable work (waiting, under its
//                    cap). It leaves that work, once past MIN_RESIDENCY_MS, only for a checkpoint
//                    whose pressure with it exceeds what it leaves behind by STARVATION_GAP_MS
//                    and whose work pays for the switch LEAVE_MIN_SWITCH_COSTS times, or for one
//                    nobody serves that has waited STARVATION_AGE_MS longer than its own work;
//   2. null        — when its pool needs it to stay at minNodes;
//   3. min-nodes   — a pool with work that has fewer than minNodes nodes;
//   4. backlog / starvation — the highest pressure with this node on it, net of its weighted
//                    switch cost, among checkpoints it may serve where it would still find work
//                    once switched (downloads wait while a node that has the file may come);
//   5. null        — nothing worth a switch: it keeps what it has loaded and waits (long poll).
//
// Constraints hold throughout: GPU memory and class, checkpoints that failed on the node, maxNodes (counting nodes already on the
// pool), and the concurrency cap (no claim at the cap; no join when the nodes already on a pool
// can fill its cap).

export interface PlacementNode {
  nodeId: string;
  loadedCheckpoint: string | null; // what sd-webui has loaded now
  cachedCheckpoints: readonly string[]; // files on its disk
  gpuMemoryMb: number;
  gpuClass: string;
  servingSinceMs: number | null; // when it started serving loadedCheckpoint (anti-thrash)
  /** Checkpoints that failed to load here (or ran on other weights): never offered to this node. */
  refusedCheckpoints?: readonly string[];
}

export interface PlacementQueue {
  checkpoint: string;
  waiting: number; // tasks waiting to be claimed
  oldestWaitingAgeMs: number; // 0 when none waiting
  running: number; // tasks leased right now
  concurrencyCap: number; // max running at once (pool's cap); Infinity or large = unlimited
  nodesServing: number; // OTHER nodes whose loadedCheckpoint is this one
  minNodes: number; // pool wants at least this many nodes on it (0 = none)
  maxNodes: number; // 0 = no limit
  minGpuMemoryMb: number; // 0 = any
  gpuClass: string | null; // null = any
  loadMs: number; // estimated checkpoint load (switch) time
  downloadMs: number; // extra when the file is not cached on the node
  inferenceMs: number; // estimated time of one task
  /** OTHER nodes that have the file on disk (cached or loaded). Absent = unknown, taken as 0. */
  cachedOnNodes?: number;
}

export type PlacementReason = "affinity" | "backlog" | "starvation" | "min-nodes";

export type PlacementDecision = { checkpoint: string; switching: boolean; reason: PlacementReason } | null; // nothing worth doing now: the node waits (long poll)

/** Anti-thrash: this long after a node starts serving a checkpoint, it stays while it has work. */
export const MIN_RESIDENCY_MS = 60_000;

/**
 * A node leaves a checkpoint that still has work only for one whose pressure, with the node on
 * it, exceeds what it leaves behind by this much: a smaller imbalance is not worth a switch,
 * and the move cannot invite the reverse move (hysteresis) ...
 */
export const STARVATION_GAP_MS = 240_000;

/**
 * ... and only if the work there, per node once it has joined, is at least this many of its
 * switch costs: a switch that leaves work behind must be amortised over a real batch. (A node
 * without the file does not go at all while another node has it: that node goes first.)
 */
export const LEAVE_MIN_SWITCH_COSTS = 6;

/**
 * The backstop for a rarely used checkpoint that never gathers such a batch: once its oldest
 * task has waited this much longer than a node's own oldest, with no node on it, the node leaves
 * its work for it even for a single task. Relative, so a fleet backlogged everywhere (where
 * everything is old) does not start thrashing.
 */
export const STARVATION_AGE_MS = 600_000;

/**
 * An idle node weighs its own switch time this many times against pressure: a switch delays all
 * the work the node does afterwards, so cached and cheap switches win over downloads.
 */
export const SWITCH_COST_WEIGHT = 4;

/**
 * A switch to a checkpoint sd-webui holds in RAM (its checkpoint cache) moves the weights to the
 * GPU without reading the file: about a quarter of a load from disk (5–8 s → 1.2–2 s for SD1.5).
 * Nodes do not measure it yet, so Fleet derives it from the pool's load time.
 */
const RAM_LOAD_SHARE_OF_DISK_LOAD = 0.25;

export function ramLoadMsFor(loadMs: number): number {
  return Math.round(loadMs * RAM_LOAD_SHARE_OF_DISK_LOAD);
}

export function choosePlacement(node: PlacementNode, queues: readonly PlacementQueue[], nowMs: number): PlacementDecision {
  const current = queues.find((q) => q.checkpoint === node.loadedCheckpoint) ?? null;
  const candidates = queues.filter((q) => q !== current && mayJoin(node, q) && hasClaimableWork(q));
  const currentFits = current !== null && nodeFits(node, current);

  if (currentFits && hasClaimableWork(current)) {
    const justStarted = node.servingSinceMs !== null && nowMs - node.servingSinceMs < MIN_RESIDENCY_MS;
    if (!justStarted && !heldByMinNodes(current)) {
      const starving = longestStarving(candidates, current.oldestWaitingAgeMs);
      if (starving) return { checkpoint: starving.checkpoint, switching: true, reason: "starvation" };
      const hurting = hurtingMore(node, current, candidates);
      if (hurting) return { checkpoint: hurting.checkpoint, switching: true, reason: hurting.nodesServing === 0 ? "starvation" : "backlog" };
    }
    return { checkpoint: current.checkpoint, switching: false, reason: "affinity" };
  }

  // Nothing to claim on the loaded checkpoint: no work, at its cap, or the node no longer fits
  // it. A node its pool needs to stay at minNodes stays loaded and waits.
  if (currentFits && heldByMinNodes(current)) return null;

  const belowMin = candidates
    .filter((q) => q.nodesServing < q.minNodes)
    .sort((a, b) => b.minNodes - b.nodesServing - (a.minNodes - a.nodesServing) || b.oldestWaitingAgeMs - a.oldestWaitingAgeMs)[0];
  if (belowMin) return { checkpoint: belowMin.checkpoint, switching: true, reason: "min-nodes" };

  let best: PlacementQueue | null = null;
  let bestScoreMs = -Infinity;
  for (const q of candidates) {
    const switchMs = switchCostMs(node, q);
    // Ski rental on downloads: while another node has the file, let it come, until the oldest
    // task has waited as long as this node's download would take.
    if (!isCached(node, q) && (q.cachedOnNodes ?? 0) > 0 && q.oldestWaitingAgeMs < q.downloadMs) continue;
    // Somebody has to serve a checkpoint nobody serves; one that others serve is joined only if
    // they would not have worked through its backlog by the time this node is ready.
    if (q.nodesServing > 0 && workMs(q) < q.nodesServing * switchMs) continue;
    const scoreMs = pressureMs(q, q.nodesServing + 1) - SWITCH_COST_WEIGHT * switchMs;
    if (scoreMs > bestScoreMs) {
      best = q;
      bestScoreMs = scoreMs;
    }
  }
  if (!best) return null;
  const starved = best.nodesServing === 0 && best.oldestWaitingAgeMs >= STARVATION_GAP_MS;
  return { checkpoint: best.checkpoint, switching: true, reason: starved ? "starvation" : "backlog" };
}

/** The node's GPU meets the pool's constraints (memory, class). */
export function fitsPool(node: Pick<PlacementNode, "gpuMemoryMb" | "gpuClass">, pool: Pick<PlacementQueue, "minGpuMemoryMb" | "gpuClass">): boolean {
  return node.gpuMemoryMb >= pool.minGpuMemoryMb && (pool.gpuClass === null || pool.gpuClass === node.gpuClass);
}

function nodeFits(node: PlacementNode, q: PlacementQueue): boolean {
  return fitsPool(node, q) && !(node.refusedCheckpoints?.includes(q.checkpoint) ?? false);
}

/** May this node switch to q: it fits, and neither maxNodes nor the cap is filled by others. */
function mayJoin(node: PlacementNode, q: PlacementQueue): boolean {
  // Nodes already on q can run `concurrencyCap` tasks at once; one more would only wait.
  return nodeFits(node, q) && (q.maxNodes <= 0 || q.nodesServing < q.maxNodes) && q.nodesServing < q.concurrencyCap;
}

function hasClaimableWork(q: PlacementQueue): boolean {
  return q.waiting > 0 && q.running < q.concurrencyCap;
}

/** The node is one of the pool's minimum: without it, fewer than minNodes would serve it. */
function heldByMinNodes(q: PlacementQueue): boolean {
  return q.nodesServing < q.minNodes;
}

function isCached(node: PlacementNode, q: PlacementQueue): boolean {
  return node.cachedCheckpoints.includes(q.checkpoint);
}

export function switchCostMs(node: PlacementNode, q: PlacementQueue): number {
  return q.loadMs + (isCached(node, q) ? 0 : q.downloadMs);
}

function workMs(q: PlacementQueue): number {
  return q.waiting * q.inferenceMs;
}

/**
 * How much q's waiting work hurts with `nodes` nodes on it: what its oldest task has already
 * waited plus the time those nodes need for the backlog. A checkpoint nobody serves is rated as
 * if one node came, so its age alone makes it grow while it waits.
 */
export function pressureMs(q: PlacementQueue, nodes: number): number {
  return q.oldestWaitingAgeMs + workMs(q) / Math.max(1, nodes);
}

/** The longest-waiting checkpoint nobody serves whose oldest task is STARVATION_AGE_MS older. */
function longestStarving(queues: readonly PlacementQueue[], thanAgeMs: number): PlacementQueue | null {
  let oldest: PlacementQueue | null = null;
  for (const q of queues) {
    if (q.nodesServing > 0 || q.oldestWaitingAgeMs - thanAgeMs < STARVATION_AGE_MS) continue;
    if (!oldest || q.oldestWaitingAgeMs > oldest.oldestWaitingAgeMs) oldest = q;
  }
  return oldest;
}

/**
 * The checkpoint whose pressure, with this node on it, most exceeds by STARVATION_GAP_MS what
 * the node leaves behind (its checkpoint with the nodes that stay; rated with one node when it
 * is alone there), among those where the node's share of the work pays for its switch
 * LEAVE_MIN_SWITCH_COSTS times. A node without the file leaves that checkpoint to the nodes
 * that have it.
 */
function hurtingMore(node: PlacementNode, current: PlacementQueue, queues: readonly PlacementQueue[]): PlacementQueue | null {
  const leftMs = pressureMs(current, current.nodesServing);
  let best: PlacementQueue | null = null;
  let bestExcessMs = 0;
  for (const q of queues) {
    if (!isCached(node, q) && (q.cachedOnNodes ?? 0) > 0) continue;
    if (workMs(q) / (q.nodesServing + 1) < LEAVE_MIN_SWITCH_COSTS * switchCostMs(node, q)) continue;
    const excessMs = pressureMs(q, q.nodesServing + 1) - leftMs - STARVATION_GAP_MS;
    if (excessMs >= 0 && (!best || excessMs > bestExcessMs)) {
      best = q;
      bestExcessMs = excessMs;
    }
  }
  return best;
}
