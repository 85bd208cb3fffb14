// Placement (DESIGN §5, model affinity): which checkpoint an idle GPU node serves next.
//
// Pure: no I/O, no clock (`nowMs` is an argument), no imports. The Fleet Durable Object calls
// it when a node asks for work, and bench/placement drives the same function in a simulator,
// so the benchmark measures this code.
//
// Order of answers for a node that asks:
//   1. affinity   — its loaded checkpoint has claimable work: keep serving it, unless (after
//                   the anti-thrash residency) another checkpoint starves or has a backlog that
//                   dwarfs ours while ours keeps other nodes;
//   2. min-nodes  — a pool below its minimum node count has work this node may serve;
//   3. starvation — a checkpoint nobody serves has waited past STARVATION_AGE_MS;
//   4. backlog    — the checkpoint whose backlog hurts most, per node already on it, net of
//                   this node's switch cost (load, plus download when not cached);
//   5. null       — nothing worth a switch: the node keeps what it has loaded and waits.

export interface PlacementNode {
  nodeId: string;
  loadedCheckpoint: string | null; // what sd-webui has loaded now
  cachedCheckpoints: readonly string[]; // files on its disk
  gpuMemoryMb: number;
  gpuClass: string;
  servingSinceMs: number | null; // when it started serving loadedCheckpoint (anti-thrash)
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
}

export type PlacementReason = "affinity" | "backlog" | "starvation" | "min-nodes";

export type PlacementDecision =
  | { checkpoint: string; switching: boolean; reason: PlacementReason }
  | null; // nothing worth doing now: the node waits (long poll)

/**
 * Anti-thrash: for this long after a node starts serving a checkpoint it does not leave it while
 * it has work. A switch costs 5 s–2 min, so a shorter residency could spend more time loading
 * than serving.
 */
export const MIN_RESIDENCY_MS = Number(process.env.R ?? 60_000);

/**
 * A node leaves a checkpoint that still has work only for one whose oldest task has waited at
 * least this much longer than its own oldest (the starvation bound, relative: when the whole
 * fleet is backlogged everyone waits, and the one that waits longest gets a node) ...
 */
export const STARVATION_AGE_MS = Number(process.env.G ?? 60_000);

/**
 * ... and at least this many of the node's switch costs longer: a switch must buy back much
 * more waiting than it costs, so an uncached or SDXL checkpoint needs a longer wait to pull a
 * node than a cached SD1.5 one, and nodes that have the file are pulled first.
 */
export const AGE_GAP_SWITCH_COSTS = Number(process.env.K ?? 10);

/**
 * A node joins a checkpoint that other nodes already serve only if its expected share of the
 * backlog, after they have worked through its switch, is at least this many switch costs; else
 * those nodes drain it sooner than a switch would help.
 */
export const JOIN_MIN_SWITCH_COSTS = Number(process.env.J ?? 1);
const SKI = Number(process.env.S ?? 0);
const DL = Number(process.env.D ?? 0);
const GAPADD = process.env.GA === '1';

export function choosePlacement(node: PlacementNode, queues: readonly PlacementQueue[], nowMs: number): PlacementDecision {
  const current = queues.find((q) => q.checkpoint === node.loadedCheckpoint) ?? null;
  const candidates = queues.filter((q) => q !== current && mayJoin(node, q) && hasClaimableWork(q) && worthJoining(node, q));

  if (current !== null && nodeFits(node, current) && hasClaimableWork(current)) {
    const justStarted = node.servingSinceMs !== null && nowMs - node.servingSinceMs < MIN_RESIDENCY_MS;
    if (!justStarted && !heldByMinNodes(current)) {
      const waitedLonger = hurtsMoreByGap(node, current, candidates);
      if (waitedLonger) return { checkpoint: waitedLonger.checkpoint, switching: true, reason: waitedLonger.nodesServing === 0 ? "starvation" : "backlog" };
    }
    return { checkpoint: current.checkpoint, switching: false, reason: "affinity" };
  }

  // Nothing to claim on the loaded checkpoint (no work, at its cap, or the node no longer fits
  // it). A node its pool needs to stay at minNodes stays loaded and waits.
  if (current !== null && nodeFits(node, current) && heldByMinNodes(current)) return null;

  const belowMin = candidates
    .filter((q) => q.nodesServing < q.minNodes)
    .sort((a, b) => b.minNodes - b.nodesServing - (a.minNodes - a.nodesServing) || b.oldestWaitingAgeMs - a.oldestWaitingAgeMs)[0];
  if (belowMin) return { checkpoint: belowMin.checkpoint, switching: true, reason: "min-nodes" };

  // The backlog that hurts most: what its oldest task already waited plus the time the backlog
  // still needs with this node on it, less what this node loses switching. Age keeps growing
  // while nobody serves a checkpoint, so a rarely used one wins in the end.
  let best: PlacementQueue | null = null;
  let bestScoreMs = -Infinity;
  for (const q of candidates) {
    if (q.nodesServing === 0 && pressureMs(q, 1) < SKI * switchCostMs(node, q)) continue;
    if (!node.cachedCheckpoints.includes(q.checkpoint) && pressureMs(q, q.nodesServing + 1) < DL * switchCostMs(node, q)) continue;
    const scoreMs = pressureMs(q, q.nodesServing + 1) - switchCostMs(node, q);
    if (scoreMs > bestScoreMs) {
      best = q;
      bestScoreMs = scoreMs;
    }
  }
  if (!best) return null;
  return { checkpoint: best.checkpoint, switching: true, reason: best.nodesServing === 0 && best.oldestWaitingAgeMs >= STARVATION_AGE_MS ? "starvation" : "backlog" };
}

function nodeFits(node: PlacementNode, q: PlacementQueue): boolean {
  return node.gpuMemoryMb >= q.minGpuMemoryMb && (q.gpuClass === null || q.gpuClass === node.gpuClass);
}

/** May this node switch to q: it fits, and neither maxNodes nor the cap is filled by others. */
function mayJoin(node: PlacementNode, q: PlacementQueue): boolean {
  // Nodes already on q can run cap tasks at once; one more could only wait for a slot.
  return nodeFits(node, q) && (q.maxNodes <= 0 || q.nodesServing < q.maxNodes) && q.nodesServing < q.concurrencyCap;
}

function hasClaimableWork(q: PlacementQueue): boolean {
  return q.waiting > 0 && q.running < q.concurrencyCap;
}

/** The node is one of the pool's minimum: without it, fewer than minNodes would serve it. */
function heldByMinNodes(q: PlacementQueue): boolean {
  return q.nodesServing < q.minNodes;
}

export function switchCostMs(node: PlacementNode, q: PlacementQueue): number {
  return q.loadMs + (node.cachedCheckpoints.includes(q.checkpoint) ? 0 : q.downloadMs);
}

/**
 * Somebody has to serve a checkpoint nobody serves. One that others serve is worth joining only
 * when this node's share of what is left after its switch pays for the switch.
 */
function worthJoining(node: PlacementNode, q: PlacementQueue): boolean {
  if (q.nodesServing === 0) return true;
  const switchMs = switchCostMs(node, q);
  const shareMs = (q.waiting * q.inferenceMs - q.nodesServing * switchMs) / (q.nodesServing + 1);
  return shareMs >= JOIN_MIN_SWITCH_COSTS * switchMs;
}

/**
 * How much a checkpoint's waiting work hurts with `nodes` nodes on it: what its oldest task has
 * already waited plus the time those nodes need to work through the backlog. A checkpoint with
 * no node is rated as if one came, so its age alone makes it grow while nobody serves it.
 */
function pressureMs(q: PlacementQueue, nodes: number): number {
  return q.oldestWaitingAgeMs + (q.waiting * q.inferenceMs) / Math.max(1, nodes);
}

/**
 * The checkpoint whose pressure, with this node on it, still exceeds what the node leaves behind
 * (its checkpoint with the other nodes on it, or with this one if it is alone) by the gap.
 */
function hurtsMoreByGap(node: PlacementNode, current: PlacementQueue, queues: readonly PlacementQueue[]): PlacementQueue | null {
  const leftMs = pressureMs(current, current.nodesServing);
  let best: PlacementQueue | null = null;
  let bestExcessMs = 0;
  for (const q of queues) {
    const gapMs = GAPADD ? STARVATION_AGE_MS + AGE_GAP_SWITCH_COSTS * switchCostMs(node, q) : Math.max(STARVATION_AGE_MS, AGE_GAP_SWITCH_COSTS * switchCostMs(node, q));
    const excessMs = pressureMs(q, q.nodesServing + 1) - leftMs - gapMs;
    if (excessMs >= 0 && (!best || excessMs > bestExcessMs)) {
      best = q;
      bestExcessMs = excessMs;
    }
  }
  return best;
}
