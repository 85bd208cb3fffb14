// When a node's placement decision can next change with nothing else happening — no task
// arriving, ending or claimed, no node coming or going: the first instant at which one of
// placement.ts's bounds on time could flip. Waiting work ages into due (batching, a kept node's
// wait, the lone-task and holder bounds), the node turns spare or ends its residency, and a
// checkpoint's arrival rate decays (src/fleet/arrival-rate.ts) below a demand threshold. Fleet
// asks placement again for a parked claim then, not every second; the simulator does the same.
// Every instant at which some bound could flip counts, whether or not it would change this
// node's decision, so none is missed (test/unit/decision-horizon.test.ts checks the decision is
// the same at every earlier instant).
import { ARRIVAL_RATE_WINDOW_MS } from "./arrival-rate.ts";
import {
  BATCH_WAIT_MS,
  demandNodes,
  fitsPool,
  HOLDER_GRACE_MS,
  KEPT_DEMAND_SHARE,
  KEPT_LEAVE_MS,
  LEAVE_AGE_MS,
  LONE_TASK_BOUND_MS,
  MIN_RESIDENCY_MS,
  type PlacementNode,
  type PlacementQueue,
  SPARE_IDLE_MS,
  switchCostMs,
} from "./placement.ts";

/** Past the bound itself, so that it has flipped (compared with `>=` or `<`, or a rate decayed in floating point) when placement is asked again. */
const PAST_MS = 1;

/** When to ask choosePlacement(node, queues, ·) again: it answers as at `nowMs` until just before then. Infinity: until something happens. */
export function nextDecisionChangeMs(node: PlacementNode, queues: readonly PlacementQueue[], nowMs: number): number {
  let next = Infinity;
  const consider = (atMs: number) => {
    if (atMs > nowMs && atMs < next) next = atMs;
  };
  if (node.idleSinceMs != null) consider(node.idleSinceMs + SPARE_IDLE_MS);
  if (node.servingSinceMs !== null) consider(node.servingSinceMs + MIN_RESIDENCY_MS);
  for (const q of queues) {
    if (!fitsPool(node, q)) continue;
    // Demand decays as exp(-t / window) between reports: kept (KEPT_DEMAND_SHARE above the others
    // on it) and needing more nodes than serve it (above them) end when it falls below.
    const demand = demandNodes(q);
    for (const threshold of [q.nodesServing + KEPT_DEMAND_SHARE, q.nodesServing]) {
      if (threshold > 0 && demand >= threshold) consider(nowMs + ARRIVAL_RATE_WINDOW_MS * Math.log(demand / threshold));
    }
    if (q.waiting === 0) continue;
    const bounds = [BATCH_WAIT_MS, BATCH_WAIT_MS - switchCostMs(node, q), KEPT_LEAVE_MS, LEAVE_AGE_MS, LONE_TASK_BOUND_MS, q.downloadMs + HOLDER_GRACE_MS];
    for (const ageMs of bounds) consider(nowMs + ageMs - q.oldestWaitingAgeMs);
  }
  return next + PAST_MS;
}
