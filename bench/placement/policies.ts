// The three policies the benchmark compares, on the same simulator:
//   sdgate   — src/fleet/placement.ts, the code Fleet runs, fed the view Fleet builds;
//   fifo-any — one shared FIFO queue; the next free node takes the oldest task and switches to
//              its checkpoint if needed (sd-webui instances behind a load balancer);
//   static   — each checkpoint owns a fixed set of nodes sized to its expected load (the
//              original one-function-per-checkpoint); a checkpoint's nodes serve its FIFO.
import { addonsHeld } from "../../src/fleet/addon-preference.ts";
import { type ArrivalRate, arrivalRateAt, nextArrivalRate } from "../../src/fleet/arrival-rate.ts";
import { nextDecisionChangeMs } from "../../src/fleet/decision-horizon.ts";
import { choosePlacement, type PlacementNode, type PlacementQueue, prefetchFor } from "../../src/fleet/placement.ts";
import {
  capOf,
  hasClaimableWork,
  nodeFits,
  oldestWaiting,
  ramLoadMs,
  type SimNode,
  type SimPolicy,
  type SimQueue,
  type SimState,
  waitingCount,
} from "./simulator.ts";
import type { Trace } from "./trace.ts";

export const POLICY_NAMES = ["sdgate", "fifo-any", "static"] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

export function makePolicy(name: PolicyName, trace: Trace): SimPolicy {
  switch (name) {
    case "sdgate":
      return sdgatePolicy();
    case "fifo-any":
      return fifoAnyPolicy();
    case "static":
      return staticPolicy(trace);
  }
}

export function sdgatePolicy(): SimPolicy {
  // The fleet does not change during a run: how many nodes may run each checkpoint, once.
  const eligible = new Map<string, number>();
  const eligibleNodes = (state: SimState, q: SimQueue) => {
    let count = eligible.get(q.spec.name);
    if (count === undefined) {
      count = state.nodes.filter((n) => nodeFits(n, q.spec)).length;
      eligible.set(q.spec.name, count);
    }
    return count;
  };
  const rates = new Map<string, ArrivalRate>();
  let ratesAtMs = -1;
  return {
    name: "sdgate",
    // As Fleet wakes its parked claims: a node holding more of the add-ons that its checkpoint's
    // next task needs asks first (src/fleet/addon-preference.ts).
    order(idle, state) {
      const held = (node: SimNode) => {
        const q = node.loaded === null ? undefined : state.queues.get(node.loaded);
        const next = q && oldestWaiting(q);
        return next ? addonsHeld([...node.cachedAddons], next.addons) : 0;
      };
      return idle
        .map((node, index) => ({ node, index, held: held(node) }))
        .sort((a, b) => b.held - a.held || a.index - b.index)
        .map((entry) => entry.node);
    },
    choose(node, state) {
      const { self, queues } = view(node, state, placementRelevant(node));
      const decision = choosePlacement(self, queues, state.nowMs);
      return decision && { checkpoint: decision.checkpoint, reason: decision.reason };
    },
    askAgainAtMs(node, state) {
      const { self, queues } = view(node, state, placementRelevant(node));
      return nextDecisionChangeMs(self, queues, state.nowMs);
    },
    prefetch(node, state) {
      const { self, queues } = view(node, state, (q) => q.tasks.length > 0);
      return prefetchFor(self, queues);
    },
  };
  /**
   * The view Fleet builds for `node`, over the queues `relevant` keeps (a shortcut of the
   * simulator's: Fleet passes them all, and the policy ignores queues that are not relevant to the
   * question — to placement, those without work but the node's own; to prefetch, those that never had any).
   */
  function view(node: SimNode, state: SimState, relevant: (q: SimQueue) => boolean): { self: PlacementNode; queues: PlacementQueue[] } {
    const self: PlacementNode = {
      nodeId: node.id,
      loadedCheckpoint: node.loaded,
      cachedCheckpoints: [...node.cached],
      ramCheckpoints: [...node.ram.keys()],
      idleSinceMs: node.idleSinceMs,
      gpuMemoryMb: node.gpuMemoryMb,
      gpuClass: node.gpuClass,
      servingSinceMs: node.servingSinceMs,
    };
    if (ratesAtMs !== state.nowMs) {
      ratesAtMs = state.nowMs;
      for (const q of state.queues.values()) rates.set(q.spec.name, nextArrivalRate(rates.get(q.spec.name), q.tasks.length, state.nowMs));
    }
    const cachedOn = new Map<string, number>();
    const fetchingOn = new Map<string, number>();
    const serving = new Map<string, number>();
    for (const other of state.nodes) {
      if (other === node) continue;
      for (const name of other.cached) cachedOn.set(name, (cachedOn.get(name) ?? 0) + 1);
      const fetching = other.fetching?.checkpoint;
      if (fetching !== undefined && !other.cached.has(fetching)) fetchingOn.set(fetching, (fetchingOn.get(fetching) ?? 0) + 1);
      if (other.loaded !== null) serving.set(other.loaded, (serving.get(other.loaded) ?? 0) + 1);
    }
    const queues: PlacementQueue[] = [...state.queues.values()].filter(relevant).map((q) => ({
      checkpoint: q.spec.name,
      waiting: waitingCount(q),
      oldestWaitingAgeMs: ageOfOldestMs(q, state.nowMs),
      running: q.running,
      concurrencyCap: capOf(q.spec),
      nodesServing: serving.get(q.spec.name) ?? 0,
      minNodes: q.spec.minNodes,
      maxNodes: q.spec.maxNodes,
      minGpuMemoryMb: q.spec.minGpuMemoryMb,
      gpuClass: q.spec.gpuClass,
      loadMs: q.spec.loadMs,
      ramLoadMs: ramLoadMs(q.spec),
      downloadMs: q.spec.downloadMs,
      // The estimate Fleet has (the pool's setting), not the task's actual time.
      inferenceMs: q.spec.inferenceMs,
      cachedOnNodes: cachedOn.get(q.spec.name) ?? 0,
      fetchingOnNodes: fetchingOn.get(q.spec.name) ?? 0,
      eligibleNodes: eligibleNodes(state, q),
      arrivalsPerS: arrivalRateAt(rates.get(q.spec.name), state.nowMs),
    }));
    return { self, queues };
  }
}

/** To placement, the queues with work and the node's own. */
const placementRelevant = (node: SimNode) => (q: SimQueue) => waitingCount(q) > 0 || q.spec.name === node.loaded;

export function fifoAnyPolicy(): SimPolicy {
  return {
    name: "fifo-any",
    choose(node, state) {
      const q = oldestQueue(node, state.queues.values());
      return q && { checkpoint: q.spec.name };
    },
  };
}

export function staticPolicy(trace: Trace): SimPolicy {
  const owned = staticAssignment(trace);
  return {
    name: "static",
    choose(node, state) {
      const mine = (owned.get(node.id) ?? []).map((name) => state.queues.get(name)!);
      // A node that co-hosts several checkpoints stays on the loaded one while it has work, so
      // static is not charged a switch per task; then it takes the oldest task of the others.
      const loaded = mine.find((q) => q.spec.name === node.loaded);
      if (loaded && hasClaimableWork(loaded)) return { checkpoint: loaded.spec.name };
      const q = oldestQueue(node, mine);
      if (q) return { checkpoint: q.spec.name };
      // A node dedicated to one checkpoint keeps it loaded, as a function instance would.
      const only = mine.length === 1 ? mine[0] : undefined;
      return only && node.loaded !== only.spec.name ? { checkpoint: only.spec.name } : null;
    },
  };
}

function ageOfOldestMs(q: SimQueue, nowMs: number): number {
  const oldest = oldestWaiting(q);
  return oldest ? nowMs - oldest.arrivalMs : 0;
}

/** The queue whose head task arrived first, among those this node may serve now. */
function oldestQueue(node: SimNode, queues: Iterable<SimQueue>): SimQueue | null {
  let best: SimQueue | null = null;
  for (const q of queues) {
    if (!hasClaimableWork(q) || !nodeFits(node, q.spec)) continue;
    if (!best || oldestWaiting(q)!.arrivalMs < oldestWaiting(best)!.arrivalMs) best = q;
  }
  return best;
}

/**
 * Static shares, sized the way an operator would with perfect knowledge of the mix: expected
 * load of a checkpoint = the inference time its arrivals in this trace need. Nodes go one at a
 * time to the checkpoint with the most load per node it already owns (D'Hondt), every
 * checkpoint getting one first when there are enough nodes. Checkpoints left without a node
 * (more checkpoints than nodes) are co-hosted, heaviest first, on the node with the least load. Nodes already holding a checkpoint
 * (loaded, else cached) are given to it first. Returns node id -> checkpoints it serves.
 */
export function staticAssignment(trace: Trace): Map<string, string[]> {
  const loadMs = new Map<string, number>();
  for (const a of trace.arrivals) {
    const spec = trace.checkpoints.find((c) => c.name === a.checkpoint)!;
    loadMs.set(a.checkpoint, (loadMs.get(a.checkpoint) ?? 0) + (a.inferenceMs ?? spec.inferenceMs));
  }
  const byLoad = [...loadMs.keys()].sort((a, b) => loadMs.get(b)! - loadMs.get(a)! || a.localeCompare(b));
  const count = new Map(byLoad.map((c) => [c, 0]));
  let free = trace.nodes.length;
  if (free >= byLoad.length) {
    for (const c of byLoad) count.set(c, 1);
    free -= byLoad.length;
  }
  for (; free > 0; free--) {
    const next = byLoad.reduce((best, c) => (loadMs.get(c)! / (count.get(c)! + 1) > loadMs.get(best)! / (count.get(best)! + 1) ? c : best));
    count.set(next, count.get(next)! + 1);
  }

  const owned = new Map<string, string[]>();
  const nodeLoadMs = new Map<string, number>();
  const unassigned = [...trace.nodes];
  const fits = (n: Trace["nodes"][number], c: string) => {
    const spec = trace.checkpoints.find((s) => s.name === c)!;
    return n.gpuMemoryMb >= spec.minGpuMemoryMb && (spec.gpuClass === null || spec.gpuClass === n.gpuClass);
  };
  const affinity = (n: Trace["nodes"][number], c: string) => (n.loaded === c ? 2 : n.cached.includes(c) ? 1 : 0);
  // The most constrained checkpoints (fewest nodes that may run them) pick their nodes first,
  // as an operator would give SDXL the large-memory nodes before filling them with SD1.5.
  const fitting = (c: string) => trace.nodes.filter((n) => fits(n, c)).length;
  for (const c of [...byLoad].sort((a, b) => fitting(a) - fitting(b))) {
    for (let i = 0; i < count.get(c)!; i++) {
      const candidates = unassigned.filter((n) => fits(n, c)).sort((a, b) => affinity(b, c) - affinity(a, c) || a.gpuMemoryMb - b.gpuMemoryMb);
      const node = candidates[0];
      if (!node) throw new Error(`static: no node left that may serve ${c}`);
      unassigned.splice(unassigned.indexOf(node), 1);
      owned.set(node.id, [c]);
      nodeLoadMs.set(node.id, loadMs.get(c)! / count.get(c)!);
    }
  }
  for (const c of byLoad.filter((c) => count.get(c) === 0)) {
    const hosts = trace.nodes
      .filter((n) => owned.has(n.id) && fits(n, c))
      .sort((a, b) => nodeLoadMs.get(a.id)! - nodeLoadMs.get(b.id)! || affinity(b, c) - affinity(a, c));
    const host = hosts[0];
    if (!host) throw new Error(`static: no node may serve ${c}`);
    owned.get(host.id)!.push(c);
    nodeLoadMs.set(host.id, nodeLoadMs.get(host.id)! + loadMs.get(c)!);
  }
  return owned;
}
