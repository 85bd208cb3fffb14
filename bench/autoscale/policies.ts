// The scalers bench/autoscale compares: sdgate's policy (src/fleet/scaling.ts, fed what Fleet
// feeds it), fixed fleets sized for the peak and for the mean, and KEDA's queue-length rule.
import { type ArrivalRate, arrivalRateAt, nextArrivalRate } from "../../src/fleet/arrival-rate.ts";
import { DEFAULT_GROUP_SETTINGS } from "../../src/fleet/node-groups.ts";
import { decideScaling, type GroupSurplus, type ScalingGroup, type ScalingNode } from "../../src/fleet/scaling.ts";
import { type FleetView, isReady, type ScalerPolicy, type SimNode } from "./simulator.ts";
import type { AutoscaleTrace } from "./traces.ts";

/** Every scaler may run at most this many nodes (KEDA's maxReplicaCount, the group's maxNodes). */
export const MAX_NODES = 40;

/** KEDA's queue-length rule: replicas = ceil(messages / queueLength) (aws-sqs-queue's default queueLength is 5). */
export const KEDA_TASKS_PER_REPLICA = 5;
/** The HPA scales down to the highest recommendation of the last 5 minutes (its default stabilization window). */
const HPA_SCALE_DOWN_WINDOW_MS = 300_000;

/** Work per second (GPU seconds per second) of the busiest window of this length. */
const PEAK_WINDOW_MS = 15 * 60_000;

/** Nodes that are not leaving: booting or ready. */
const staying = (view: FleetView) => view.nodes.filter((n) => !n.draining);

/** Stops `count` nodes: booting ones first, then idle, then busy (which finish their task). */
function pickToStop(view: FleetView, count: number): SimNode[] {
  const rank = (n: SimNode) => (!isReady(n, view.nowMs) ? 0 : n.busyUntilMs === null ? 1 : 2);
  return [...staying(view)].sort((a, b) => rank(a) - rank(b)).slice(0, Math.max(0, count));
}

export function fixedPolicy(name: string, nodes: number): ScalerPolicy {
  return { name, initialNodes: nodes, tick: () => ({ start: 0, stop: [] }) };
}

/** A fixed fleet is sized to be busy this share of the time at the load it is sized for. */
const FIXED_FLEET_UTILIZATION = 0.75;

/** Nodes a fixed fleet needs for a work rate (GPU seconds per second). */
function nodesFor(workPerS: number): number {
  return Math.max(1, Math.ceil(workPerS / FIXED_FLEET_UTILIZATION));
}

export function peakSizedPolicy(trace: AutoscaleTrace): ScalerPolicy {
  let peak = 0;
  let windowWorkMs = 0;
  let from = 0;
  for (const a of trace.arrivals) {
    windowWorkMs += a.inferenceMs;
    while (trace.arrivals[from]!.atMs < a.atMs - PEAK_WINDOW_MS) windowWorkMs -= trace.arrivals[from++]!.inferenceMs;
    peak = Math.max(peak, windowWorkMs / PEAK_WINDOW_MS);
  }
  return fixedPolicy("fixed-peak", Math.min(MAX_NODES, nodesFor(peak)));
}

export function meanSizedPolicy(trace: AutoscaleTrace): ScalerPolicy {
  const workMs = trace.arrivals.reduce((sum, a) => sum + a.inferenceMs, 0);
  return fixedPolicy("fixed-mean", nodesFor(workMs / trace.durationMs));
}

export function kedaQueueLengthPolicy(): ScalerPolicy {
  const recommendations: Array<{ atMs: number; replicas: number }> = [];
  return {
    name: `keda-queue/${KEDA_TASKS_PER_REPLICA}`,
    initialNodes: 0,
    tick(view) {
      // KEDA's queue scalers count messages in flight too (scaleOnInFlight).
      let messages = 0;
      for (const q of view.queues.values()) messages += q.waiting.length + q.running;
      recommendations.push({ atMs: view.nowMs, replicas: Math.min(MAX_NODES, Math.ceil(messages / KEDA_TASKS_PER_REPLICA)) });
      while (recommendations[0]!.atMs < view.nowMs - HPA_SCALE_DOWN_WINDOW_MS) recommendations.shift();
      const target = Math.max(...recommendations.map((r) => r.replicas));
      const current = staying(view).length;
      return target >= current ? { start: target - current, stop: [] } : { start: 0, stop: pickToStop(view, current - target) };
    },
  };
}

const IDLE_MS = DEFAULT_GROUP_SETTINGS.idleSeconds * 1000;
const TARGET_WAIT_MS = DEFAULT_GROUP_SETTINGS.targetWaitSeconds * 1000;
/** sdgate: the group's settings are the defaults (idle 120 s, target wait 60 s: the defaults), its boot time learned from its nodes. */
export function sdgatePolicy(): ScalerPolicy {
  const rates = new Map<string, ArrivalRate>();
  const measured = new Set<SimNode>();
  const surplus = new Map<string, GroupSurplus>();
  let bootMs = 120_000;
  return {
    name: "sdgate",
    initialNodes: 0,
    tick(view) {
      for (const node of view.nodes) {
        if (node.firstClaimAtMs === null || measured.has(node)) continue;
        measured.add(node);
        bootMs += 0.3 * (node.firstClaimAtMs - node.startedAtMs - bootMs);
      }
      const group: ScalingGroup = {
        name: "gpu",
        gpuClass: "L4",
        gpuMemoryMb: 24_576,
        minNodes: 0,
        maxNodes: MAX_NODES,
        idleMs: IDLE_MS,
        targetWaitMs: TARGET_WAIT_MS,
        bootMs,
        configured: true,
      };
      const nodes: ScalingNode[] = view.nodes.map((n) => ({
        nodeId: String(n.id),
        group: "gpu",
        state: n.draining ? "draining" : !isReady(n, view.nowMs) ? "booting" : n.busyUntilMs !== null ? "busy" : "idle",
        idleSinceMs: n.busyUntilMs === null ? n.idleSinceMs : null,
        loadedCheckpoint: n.loaded,
        cachedCheckpoints: [],
      }));
      const queues = [...view.queues.values()].map((q) => {
        rates.set(q.checkpoint.name, nextArrivalRate(rates.get(q.checkpoint.name), q.arrivals, view.nowMs));
        return {
          checkpoint: q.checkpoint.name,
          waiting: q.waiting.length,
          running: q.running,
          oldestWaitingAgeMs: q.waiting[0] ? view.nowMs - q.waiting[0].atMs : 0,
          arrivalsPerS: arrivalRateAt(rates.get(q.checkpoint.name), view.nowMs),
          inferenceMs: q.checkpoint.inferenceMs,
          loadMs: q.checkpoint.loadMs,
          concurrencyCap: Infinity,
          maxNodes: 0,
          minGpuMemoryMb: 0,
          gpuClass: null,
        };
      });
      const [decision] = decideScaling([group], nodes, queues, view.nowMs, surplus);
      if (decision!.surplus) surplus.set("gpu", decision!.surplus);
      else surplus.delete("gpu");
      const leave = new Set(decision!.leave);
      return { start: Math.max(0, decision!.desired - decision!.current), stop: view.nodes.filter((n) => leave.has(String(n.id))) };
    },
  };
}
