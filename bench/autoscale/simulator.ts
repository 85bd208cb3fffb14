// Discrete-time simulator of an autoscaled GPU fleet (steps of STEP_MS of virtual time): nodes
// that are started, boot (tens of seconds to minutes, drawn per node), serve one checkpoint at
// a time as src/fleet/placement.ts places them (a switch costs the checkpoint's load; the model
// cache volume holds every file, so no downloads), and leave — an idle node at once, a busy one
// after its task (never killed mid-task). GPU time is billed per second from a node's start to
// its end, booting included. A scaler policy is asked every TICK_MS what to start and stop.
import { type ArrivalRate, arrivalRateAt, nextArrivalRate } from "../../src/fleet/arrival-rate.ts";
import { choosePlacement, type PlacementNode, type PlacementQueue } from "../../src/fleet/placement.ts";
import type { Arrival, AutoscaleTrace } from "./traces.ts";

export const STEP_MS = 250;
/** How often the scaler reads the signal (KEDA's pollingInterval is 30 s by default; ours 15 s). */
export const TICK_MS = 15_000;

export interface SimTask extends Arrival {
  startMs: number | null;
}

export interface SimNode {
  id: number;
  startedAtMs: number;
  readyAtMs: number;
  endedAtMs: number | null;
  draining: boolean;
  loaded: string | null;
  servingSinceMs: number | null;
  task: SimTask | null;
  busyUntilMs: number | null;
  idleSinceMs: number | null;
  firstClaimAtMs: number | null;
}

export interface SimQueue {
  checkpoint: AutoscaleTrace["checkpoints"][number];
  waiting: SimTask[];
  running: number;
  arrivals: number;
}

export interface FleetView {
  nowMs: number;
  /** Nodes not ended (booting, ready, draining). */
  nodes: readonly SimNode[];
  queues: ReadonlyMap<string, SimQueue>;
}

export interface ScaleAction {
  start: number;
  /** Nodes to let go: idle ones end now, busy ones after their task. */
  stop: readonly SimNode[];
}

export interface ScalerPolicy {
  name: string;
  /** Nodes running (and warm) at t = 0. */
  initialNodes: number;
  tick(view: FleetView): ScaleAction;
}

export interface SimResult {
  policy: string;
  tasks: SimTask[];
  gpuMs: number;
  /** Scaler ticks that started nodes, and nodes started after t = 0. */
  scaleUps: number;
  nodesStarted: number;
  peakNodes: number;
}

export function isReady(node: SimNode, nowMs: number): boolean {
  return node.readyAtMs <= nowMs && node.endedAtMs === null;
}

export function simulate(trace: AutoscaleTrace, policy: ScalerPolicy, bootMs: (r: number) => number, random: () => number): SimResult {
  const queues = new Map<string, SimQueue>(trace.checkpoints.map((c) => [c.name, { checkpoint: c, waiting: [], running: 0, arrivals: 0 }]));
  const tasks: SimTask[] = trace.arrivals.map((a) => ({ ...a, startMs: null }));
  const nodes: SimNode[] = [];
  const ended: SimNode[] = [];
  let nextId = 0;
  const start = (nowMs: number, warm: boolean) => {
    const readyAtMs = warm ? nowMs : nowMs + bootMs(random());
    nodes.push({
      id: nextId++,
      startedAtMs: nowMs,
      readyAtMs,
      endedAtMs: null,
      draining: false,
      loaded: null,
      servingSinceMs: null,
      task: null,
      busyUntilMs: null,
      idleSinceMs: warm ? nowMs : null,
      firstClaimAtMs: warm ? nowMs : null,
    });
  };
  const end = (node: SimNode, nowMs: number) => {
    node.endedAtMs = nowMs;
    nodes.splice(nodes.indexOf(node), 1);
    ended.push(node);
  };
  for (let i = 0; i < policy.initialNodes; i++) start(0, true);

  const result: SimResult = { policy: policy.name, tasks, gpuMs: 0, scaleUps: 0, nodesStarted: 0, peakNodes: nodes.length };
  let nextArrival = 0;
  let done = 0;
  // Each checkpoint's arrival rate as Fleet keeps it from its queue's reports (placement reads it).
  const rates = new Map<string, ArrivalRate>();
  for (let nowMs = 0; done < tasks.length || nowMs < trace.durationMs; nowMs += STEP_MS) {
    if (nowMs > trace.durationMs * 3) throw new Error(`${policy.name}: ${tasks.length - done} tasks never ran`);
    for (const node of [...nodes]) {
      if (node.busyUntilMs !== null && node.busyUntilMs <= nowMs) {
        if (node.task) queues.get(node.task.checkpoint)!.running -= 1;
        node.task = null;
        node.busyUntilMs = null;
        node.idleSinceMs = nowMs;
      }
      if (node.draining && node.busyUntilMs === null) end(node, nowMs);
    }
    while (nextArrival < tasks.length && tasks[nextArrival]!.atMs <= nowMs) {
      const task = tasks[nextArrival++]!;
      const q = queues.get(task.checkpoint)!;
      q.waiting.push(task);
      q.arrivals += 1;
      rates.set(task.checkpoint, nextArrivalRate(rates.get(task.checkpoint), q.arrivals, nowMs));
    }
    if (nowMs % TICK_MS === 0) {
      const action = policy.tick({ nowMs, nodes, queues });
      for (const node of action.stop) {
        if (node.busyUntilMs === null) end(node, nowMs);
        else node.draining = true;
      }
      if (action.start > 0 && nowMs > 0) {
        result.scaleUps += 1;
        result.nodesStarted += action.start;
      }
      for (let i = 0; i < action.start; i++) start(nowMs, false);
      result.peakNodes = Math.max(result.peakNodes, nodes.length);
    }
    const anyWaiting = [...queues.values()].some((q) => q.waiting.length > 0);
    for (const node of nodes) {
      if (!isReady(node, nowMs)) continue;
      node.firstClaimAtMs ??= nowMs;
      if (node.busyUntilMs === null) node.idleSinceMs ??= nowMs;
      if (!anyWaiting || node.draining || node.busyUntilMs !== null || !isReady(node, nowMs)) continue;
      const placed = choosePlacement(placementNode(node), placementQueues(node, nodes, queues, rates, nowMs), nowMs);
      if (!placed) continue;
      const q = queues.get(placed.checkpoint)!;
      const task = q.waiting.shift();
      if (!task) continue;
      const switchMs = node.loaded === placed.checkpoint ? 0 : q.checkpoint.loadMs;
      if (switchMs > 0) {
        node.loaded = placed.checkpoint;
        node.servingSinceMs = nowMs;
      }
      q.running += 1;
      task.startMs = nowMs + switchMs;
      node.task = task;
      node.busyUntilMs = task.startMs + task.inferenceMs;
      node.idleSinceMs = null;
      done += 1;
    }
  }
  const horizonMs = Math.max(trace.durationMs, ...tasks.map((t) => t.startMs! + t.inferenceMs));
  for (const node of [...nodes, ...ended]) result.gpuMs += (node.endedAtMs ?? horizonMs) - node.startedAtMs;
  return result;
}

function placementNode(node: SimNode): PlacementNode {
  return {
    nodeId: String(node.id),
    loadedCheckpoint: node.loaded,
    cachedCheckpoints: [],
    gpuMemoryMb: 24_576,
    gpuClass: "L4",
    servingSinceMs: node.servingSinceMs,
  };
}

function placementQueues(
  self: SimNode,
  nodes: readonly SimNode[],
  queues: ReadonlyMap<string, SimQueue>,
  rates: ReadonlyMap<string, ArrivalRate>,
  nowMs: number,
): PlacementQueue[] {
  return [...queues.values()].map((q) => ({
    checkpoint: q.checkpoint.name,
    waiting: q.waiting.length,
    oldestWaitingAgeMs: q.waiting[0] ? nowMs - q.waiting[0].atMs : 0,
    running: q.running,
    concurrencyCap: Infinity,
    nodesServing: nodes.filter((n) => n !== self && !n.draining && n.loaded === q.checkpoint.name).length,
    cachedOnNodes: 0,
    minNodes: 0,
    maxNodes: 0,
    minGpuMemoryMb: 0,
    gpuClass: null,
    // The model cache volume has every file: a switch is a load.
    loadMs: q.checkpoint.loadMs,
    downloadMs: 0,
    inferenceMs: q.checkpoint.inferenceMs,
    arrivalsPerS: arrivalRateAt(rates.get(q.checkpoint.name), nowMs),
  }));
}
