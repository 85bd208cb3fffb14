// Placement (DESIGN §5): which checkpoint a GPU node serves next.
//
// Pure: no I/O, no clock (`nowMs` is an argument), no imports. The Fleet Durable Object calls it
// when a node asks for work, and bench/placement drives the same function in a simulator, so the
// benchmark measures this code.
//
// A switch (load, plus download when the file is not on the node's disk; far less when sd-webui
// holds the checkpoint in RAM) costs 1 s to 2 min against 1–7 s of inference, so nodes stay where
// they are and move for a reason. A node that asks gets, in this order:
//
//   1. affinity   — its loaded checkpoint while that has claimable work (waiting, under its cap).
//                   It leaves that work, even within MIN_RESIDENCY_MS, for work fewer nodes may
//                   run than its own (a large-memory node on work small nodes can run) that needs
//                   another node or is due (below). Once past MIN_RESIDENCY_MS it also leaves
//                   - for rare work that is due and that nobody serves, when others stay on its
//                     checkpoint and will clear it: batched rare work is served within about
//                     BATCH_WAIT_MS even when every node is busy;
//                   - for any work nobody serves whose oldest task has waited LEAVE_AGE_MS longer
//                     than its own, or — a single task — LONE_TASK_BOUND_MS in all while its own
//                     checkpoint holds a flood (FLOOD_BACKLOG_MS of work per node): the bound on a lone task's
//                     wait (issue 14). The relative bound keeps a fleet backlogged everywhere
//                     from thrashing; the absolute one keeps one key's flood from holding every
//                     node (the flood's oldest task ages as fast as the lone one), and costs
//                     the flood one switch and one task in work that waits minutes anyway;
//                   - for a checkpoint whose backlog per node, with this node on it, would take
//                     REBALANCE_GAP_MS longer to clear than its own without it, and pays for the
//                     switch LEAVE_MIN_SWITCH_COSTS times: nodes follow demand (capacity in
//                     proportion to work), not the age of every queue;
//   2. null       — when its pool needs it to stay at minNodes;
//   3. min-nodes  — a pool with work that has fewer than minNodes nodes;
//   4. backlog / starvation — the most urgent work this node may take: a served checkpoint whose
//                   nodes would not clear their backlog before this one is ready (and need
//                   JOIN_DRAIN_MS for it, or BURST_DRAIN_MS when its arrivals keep no more nodes
//                   busy than serve it: a burst they drain themselves), or rare work
//                   that is due: its oldest task will have waited BATCH_WAIT_MS once the node is
//                   ready, or its batch pays for the switch BATCH_SWITCH_COSTS times, or the node
//                   is spare (nothing loaded, not just done with a task, or idle
//                   SPARE_IDLE_MS). A node whose checkpoint's arrivals keep it busy at least
//                   KEPT_DEMAND_SHARE of the time (one more than the others on it) is not spare
//                   and takes rare work only once that has waited KEPT_LEAVE_MS: leaving would
//                   cost a switch back for the next of its own tasks, due within seconds. Work only nodes like this one may run (more GPU memory, a GPU
//                   class) goes first, and a node on such work takes wider work only once that
//                   has waited LEAVE_AGE_MS. Urgency is the wait the work will have seen once
//                   served, not discounted by the checkpoint's own load time, so expensive
//                   checkpoints are not pushed to the back; only a download this node would need
//                   counts against it (DOWNLOAD_WEIGHT times);
//   5. null       — nothing due: it keeps what it has loaded and waits (long poll).
//
// Downloads go where the file is: an idle node without the file leaves the work to a node that has
// it (and does not serve it yet) until the oldest task has waited the download's time plus
// HOLDER_GRACE_MS, and takes work it has on disk or in RAM before work it would download; a node
// leaving work never downloads a file another node has.
//
// Prefetch (prefetchFor, asked at each heartbeat, busy or not): a node fetches in the background,
// while it serves, the file of work that has demand and that fewer nodes hold than its demand
// keeps busy plus PREFETCH_SPARE_COPIES — work only nodes like it may run (a 24 GB node, SDXL)
// first, then waiting work whose file no node has or is fetching — so a switch to it is a load,
// not a download on the GPU's time.
//
// Constraints hold throughout: GPU memory and class, checkpoints that failed on the node, maxNodes (counting nodes already on the
// pool), and the concurrency cap (no claim at the cap; no join when the nodes already on a pool
// can fill its cap).

export interface PlacementNode {
  nodeId: string;
  loadedCheckpoint: string | null; // what sd-webui has loaded now
  cachedCheckpoints: readonly string[]; // files on its disk
  /** Checkpoints sd-webui holds in RAM besides the loaded one: a switch to one costs ramLoadMs. */
  ramCheckpoints?: readonly string[];
  gpuMemoryMb: number;
  gpuClass: string;
  servingSinceMs: number | null; // when it started serving loadedCheckpoint (anti-thrash)
  /** Since when it has had nothing to run after a task (null or absent: not since a task, e.g. just registered — taken as spare). */
  idleSinceMs?: number | null;
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
  loadMs: number; // estimated checkpoint load (switch) time, from disk
  /** Estimated switch time when the node holds it in RAM (absent: ramLoadMsFor(loadMs)). */
  ramLoadMs?: number;
  downloadMs: number; // extra when the file is not cached on the node
  inferenceMs: number; // estimated time of one task
  /** OTHER nodes that have the file on disk (cached or loaded). Absent = unknown, taken as 0. */
  cachedOnNodes?: number;
  /** OTHER nodes fetching the file in the background (not on their disk yet). Absent = unknown, taken as 0. */
  fetchingOnNodes?: number;
  /** Live nodes whose GPU may run it (memory, class), this one included. Absent = unknown: no node is kept for it. */
  eligibleNodes?: number;
  /** Recent arrivals per second (Fleet's smoothed rate, src/fleet/arrival-rate.ts). Absent = unknown, taken as 0. */
  arrivalsPerS?: number;
}

export type PlacementReason = "affinity" | "backlog" | "starvation" | "min-nodes";

export type PlacementDecision = { checkpoint: string; switching: boolean; reason: PlacementReason } | null; // nothing worth doing now: the node waits (long poll)

/**
 * Downloads go where the file is: while another node that has the file does not serve the
 * checkpoint, a node without it leaves the work to that node until the oldest task has waited
 * the download's time plus this (a holder busy elsewhere comes for it within the bounds above).
 */
export const HOLDER_GRACE_MS = 120_000;

/**
 * Ranking work, an idle node counts a download it would need (against a node that has the file)
 * this many times: the download delays all it does next and puts one more copy on a disk.
 */
export const DOWNLOAD_WEIGHT = 3;

/** Anti-thrash: this long after a node starts serving a checkpoint, it stays while it has work. */
export const MIN_RESIDENCY_MS = 60_000;

/**
 * Rare work (a checkpoint nobody serves) is batched: an idle node goes for it once its oldest
 * task would have waited this long by the time the node is ready, so one switch serves what
 * gathered meanwhile. Busy nodes leave work that others keep serving for it at this age too.
 */
export const BATCH_WAIT_MS = 30_000;

/** ... or at once when the work gathered is worth this many switches. */
export const BATCH_SWITCH_COSTS = 2;

/** An idle node that has had nothing to do for this long is spare: it takes rare work at once. */
export const SPARE_IDLE_MS = 500;

/**
 * The bound on a lone task's wait: a node leaves its own work, even as the only node on it, for
 * work nobody serves whose oldest task has waited this much longer than its own oldest.
 */
export const LEAVE_AGE_MS = 60_000;

/** ... or, for a single waiting task, this long in all while the node's own checkpoint holds a flood: */
export const LONE_TASK_BOUND_MS = 30_000;

/** at least this much work per node serving it. */
export const FLOOD_BACKLOG_MS = 300_000;

/**
 * A node leaves its work for another checkpoint's backlog only if that backlog, per node with
 * it there, takes this much longer to clear than its own without it (hysteresis: the move
 * cannot invite the reverse move) ...
 */
export const REBALANCE_GAP_MS = 30_000;

/** ... and only if the work there, per node once it has joined, is worth this many of its switches. */
export const LEAVE_MIN_SWITCH_COSTS = 4;

/**
 * A node joins a checkpoint others serve when they need at least this long to clear its
 * backlog (and more than this node needs to switch): a short queue is theirs to drain.
 */
export const JOIN_DRAIN_MS = 5_000;

/**
 * ... or, when its arrivals keep no more nodes busy than already serve it (a burst they will
 * drain themselves), at least this long: a join costs a switch, and one back later.
 */
export const BURST_DRAIN_MS = 30_000;

/**
 * A node is kept on its checkpoint (not spare) while the arrivals there keep one more node than the
 * others on it busy at least this share of the time (next task due within ~inference/share) ...
 */
export const KEPT_DEMAND_SHARE = 0.1;

/** ... and then takes work nobody serves only once its oldest task has waited this long. */
export const KEPT_LEAVE_MS = 45_000;

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
  const candidates = queues.filter((q) => q !== current && mayJoin(node, q) && hasClaimableWork(q) && !leftToHolder(node, q));
  const currentFits = current !== null && nodeFits(node, current);

  if (currentFits && hasClaimableWork(current)) {
    const justStarted = node.servingSinceMs !== null && nowMs - node.servingSinceMs < MIN_RESIDENCY_MS;
    const leave = heldByMinNodes(current) ? null : justStarted ? scarceWork(node, current, candidates) : leaveFor(node, current, candidates);
    return leave ?? { checkpoint: current.checkpoint, switching: false, reason: "affinity" };
  }

  // Nothing to claim on the loaded checkpoint: no work, at its cap, or the node no longer fits
  // it. A node its pool needs to stay at minNodes stays loaded and waits.
  if (currentFits && heldByMinNodes(current)) return null;

  const belowMin = candidates
    .filter((q) => q.nodesServing < q.minNodes)
    .sort((a, b) => b.minNodes - b.nodesServing - (a.minNodes - a.nodesServing) || b.oldestWaitingAgeMs - a.oldestWaitingAgeMs)[0];
  if (belowMin) return { checkpoint: belowMin.checkpoint, switching: true, reason: "min-nodes" };

  const kept = currentFits && keptByDemand(current);
  const spare = !kept && (current === null || node.idleSinceMs == null || nowMs - node.idleSinceMs >= SPARE_IDLE_MS);
  const takeable = candidates.filter(
    (q) =>
      (q.nodesServing > 0 ? needsHelp(node, q) : spare || (kept ? q.oldestWaitingAgeMs >= KEPT_LEAVE_MS : isDue(node, q))) &&
      // A node on work only nodes like it may run stays free for it: it takes wider work only
      // once that has waited the lone-task bound.
      (!moreConstrained(current ?? q, q) || q.oldestWaitingAgeMs >= LEAVE_AGE_MS),
  );
  // Work only nodes like this one may run first; among the rest, what it has on disk (or in RAM)
  // before what it would download.
  const widest = current ?? widestOf(takeable);
  const ownKind = takeable.filter((q) => moreConstrained(q, widest));
  const held = takeable.filter((q) => isCached(node, q) || inRam(node, q));
  const best = mostUrgent(node, ownKind.length > 0 ? ownKind : held.length > 0 ? held : takeable);
  return best && switchTo(best);
}

/**
 * The queue whose work will have waited longest once served with this node, counting against it
 * only what this node pays beyond the checkpoint's own load (a download, DOWNLOAD_WEIGHT times;
 * less from RAM).
 */
function mostUrgent(node: PlacementNode, queues: readonly PlacementQueue[]): PlacementQueue | null {
  let best: PlacementQueue | null = null;
  let bestUrgencyMs = -Infinity;
  for (const q of queues) {
    const urgencyMs = waitOnceServedMs(q, q.nodesServing + 1) - DOWNLOAD_WEIGHT * (switchCostMs(node, q) - q.loadMs);
    if (urgencyMs > bestUrgencyMs) {
      best = q;
      bestUrgencyMs = urgencyMs;
    }
  }
  return best;
}

function switchTo(q: PlacementQueue): PlacementDecision {
  return { checkpoint: q.checkpoint, switching: true, reason: q.nodesServing === 0 && q.oldestWaitingAgeMs >= BATCH_WAIT_MS ? "starvation" : "backlog" };
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

function inRam(node: PlacementNode, q: PlacementQueue): boolean {
  return node.ramCheckpoints?.includes(q.checkpoint) ?? false;
}

export function switchCostMs(node: PlacementNode, q: PlacementQueue): number {
  if (inRam(node, q)) return q.ramLoadMs ?? ramLoadMsFor(q.loadMs);
  return q.loadMs + (isCached(node, q) ? 0 : q.downloadMs);
}

/**
 * Ski rental on downloads: while another node has the file, this one (which would download it)
 * leaves the work to that node until the oldest task has waited as long as the download takes.
 */
function leftToHolder(node: PlacementNode, q: PlacementQueue, graceMs = HOLDER_GRACE_MS): boolean {
  return !isCached(node, q) && !inRam(node, q) && (q.cachedOnNodes ?? 0) > q.nodesServing && q.oldestWaitingAgeMs < q.downloadMs + graceMs;
}

/** Nodes q's arrivals keep busy: arrivals per second × inference time. */
export function demandNodes(q: PlacementQueue): number {
  return ((q.arrivalsPerS ?? 0) * q.inferenceMs) / 1000;
}

/** q's arrivals keep a node more than the others on it busy at least KEPT_DEMAND_SHARE of the time. */
function keptByDemand(q: PlacementQueue): boolean {
  return demandNodes(q) >= q.nodesServing + KEPT_DEMAND_SHARE;
}

function workMs(q: PlacementQueue): number {
  return q.waiting * q.inferenceMs;
}

/**
 * How long q's waiting work will have waited once `nodes` nodes work through it: what its
 * oldest task has already waited plus the time they need for the backlog.
 */
export function waitOnceServedMs(q: PlacementQueue, nodes: number): number {
  return q.oldestWaitingAgeMs + workMs(q) / Math.max(1, nodes);
}

/** Rare work is due: its oldest task will have waited BATCH_WAIT_MS when this node is ready, or it pays for the switch. */
function isDue(node: PlacementNode, q: PlacementQueue): boolean {
  const switchMs = switchCostMs(node, q);
  return q.oldestWaitingAgeMs + switchMs >= BATCH_WAIT_MS || workMs(q) >= BATCH_SWITCH_COSTS * switchMs;
}

/**
 * The nodes on q would not have cleared its backlog by the time this node is ready, and need a
 * while for it: JOIN_DRAIN_MS when its arrivals need more nodes than serve it, BURST_DRAIN_MS else.
 */
function needsHelp(node: PlacementNode, q: PlacementQueue): boolean {
  const drainMs = workMs(q) / q.nodesServing;
  const minDrainMs = demandNodes(q) > q.nodesServing ? JOIN_DRAIN_MS : BURST_DRAIN_MS;
  return drainMs >= minDrainMs && workMs(q) / (q.nodesServing + 1) >= Math.min(q.loadMs, switchCostMs(node, q));
}

/** Of these queues, the one the most nodes may run. */
function widestOf(queues: readonly PlacementQueue[]): PlacementQueue | null {
  return queues.reduce<PlacementQueue | null>((w, q) => (w === null || (q.eligibleNodes ?? 0) > (w.eligibleNodes ?? 0) ? q : w), null);
}

/** Fewer nodes may run q than may run `than` (what the node has loaded): such nodes are kept for it. */
function moreConstrained(q: PlacementQueue, than: PlacementQueue | null): boolean {
  return q.eligibleNodes !== undefined && than?.eligibleNodes !== undefined && q.eligibleNodes < than.eligibleNodes;
}

/** Work only nodes like this one may run (fewer than may run `current`) that needs another node or is due. */
function scarceWork(node: PlacementNode, current: PlacementQueue, candidates: readonly PlacementQueue[]): PlacementDecision {
  const scarce = mostUrgent(
    node,
    candidates.filter((q) => moreConstrained(q, current) && (q.nodesServing > 0 ? needsHelp(node, q) : isDue(node, q))),
  );
  return scarce && switchTo(scarce);
}

/** Why a node on `current` (which has work) leaves it, if it does: see the header. */
function leaveFor(node: PlacementNode, current: PlacementQueue, candidates: readonly PlacementQueue[]): PlacementDecision {
  const scarce = scarceWork(node, current, candidates);
  if (scarce) return scarce;

  let overdue: PlacementQueue | null = null;
  for (const q of candidates) {
    if (q.nodesServing > 0) continue;
    // A node leaving work never downloads a file another node has: that node comes within these same bounds.
    if (leftToHolder(node, q, Infinity)) continue;
    const olderByMs = q.oldestWaitingAgeMs - current.oldestWaitingAgeMs;
    // Others stay on its checkpoint and will clear its backlog without it.
    const covered = current.nodesServing > 0 && workMs(current) / current.nodesServing < JOIN_DRAIN_MS;
    const flooded = workMs(current) / (current.nodesServing + 1) >= FLOOD_BACKLOG_MS;
    const lone = q.waiting === 1 && q.oldestWaitingAgeMs >= LONE_TASK_BOUND_MS;
    const due = (covered && olderByMs >= 0 && isDue(node, q)) || olderByMs >= LEAVE_AGE_MS || (flooded && lone);
    if (due && (!overdue || q.oldestWaitingAgeMs > overdue.oldestWaitingAgeMs)) overdue = q;
  }
  if (overdue) return { checkpoint: overdue.checkpoint, switching: true, reason: "starvation" };

  if (current.nodesServing === 0) return null;
  const leftMs = waitOnceServedMs(current, current.nodesServing);
  let best: PlacementQueue | null = null;
  let bestExcessMs = 0;
  for (const q of candidates) {
    if (workMs(q) / (q.nodesServing + 1) < LEAVE_MIN_SWITCH_COSTS * switchCostMs(node, q)) continue;
    const excessMs = waitOnceServedMs(q, q.nodesServing + 1) - leftMs - REBALANCE_GAP_MS;
    if (excessMs >= 0 && (!best || excessMs > bestExcessMs)) {
      best = q;
      bestExcessMs = excessMs;
    }
  }
  return best && switchTo(best);
}

/**
 * Nodes holding a checkpoint's file beyond those its demand keeps busy (see prefetchFor): rare
 * work goes to whichever node frees first, and one that has the file loads it instead of
 * downloading it on the GPU's time or leaving the work to a holder busy elsewhere.
 */
export const PREFETCH_SPARE_COPIES = 3;

/**
 * The checkpoint file this node should fetch in the background, or null: work it may run that
 * has demand (arrivals or tasks waiting), is not on its disk or in its RAM, and that fewer other
 * nodes hold than its demand keeps busy plus PREFETCH_SPARE_COPIES. Work only nodes like it may
 * run (fewer nodes may run it than the widest work it may run) first, then waiting work whose file
 * no node has or is fetching (its tasks wait for a download whoever does it; one that another node
 * fetches already is covered, so nodes spread over such files instead of all fetching the first),
 * then the most demanded. Files on their way to other nodes do not count as copies: a checkpoint
 * whose demand grows (a burst) needs them on the nodes that will join it.
 */
export function prefetchFor(node: PlacementNode, queues: readonly PlacementQueue[]): string | null {
  const fitting = queues.filter((q) => nodeFits(node, q));
  const widest = widestOf(fitting);
  const scarce = (q: PlacementQueue) => moreConstrained(q, widest);
  const unheld = (q: PlacementQueue) => q.waiting > 0 && (q.cachedOnNodes ?? 0) + (q.fetchingOnNodes ?? 0) === 0;
  let best: PlacementQueue | null = null;
  for (const q of fitting) {
    if (isCached(node, q) || inRam(node, q) || (demandNodes(q) === 0 && q.waiting === 0)) continue;
    if ((q.cachedOnNodes ?? 0) >= Math.ceil(demandNodes(q)) + PREFETCH_SPARE_COPIES) continue;
    if (!best || (scarce(q) !== scarce(best) ? scarce(q) : unheld(q) !== unheld(best) ? unheld(q) : demandNodes(q) > demandNodes(best))) best = q;
  }
  return best?.checkpoint ?? null;
}
