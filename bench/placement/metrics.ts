// Figures of one simulated run, and the lower bound its efficiency is measured against.
import type { SimResult } from "./simulator.ts";
import type { Trace } from "./trace.ts";

export interface LowerBound {
  /** (Σ inference + one first load per checkpoint with work) / nodes. */
  workMs: number;
  /** max over t of t + (inference of the tasks arriving at or after t) / nodes. */
  arrivalsMs: number;
  /** max over tasks of arrival + own inference. */
  lastTaskMs: number;
  boundMs: number;
}

/**
 * A lower bound on any policy's makespan (trace time starts at 0), the largest of:
 *
 * - work: every task's inference must run on some node, and every checkpoint that has work must
 *   be loaded at least once — for free if a node has it loaded at t = 0, else its load time,
 *   plus its download if no node has the file. Spread perfectly over all nodes:
 *   (Σ inference + Σ first loads) / nodes. (DESIGN §5 states the bound as Σ inference / nodes
 *   plus one load per checkpoint; loads run in parallel on different nodes, so only their share
 *   per node is a true bound, and the one used here is never larger than the literal one.)
 * - arrivals: work cannot start before it arrives, so for every instant t no schedule ends
 *   before t + (inference of the tasks arriving at or after t) / nodes. t = 0 is the work bound
 *   without the loads; t = the last arrival is "the last arrival plus its share". When
 *   arrivals are spread in time (bursts after a quiet start) this is the binding one.
 * - last task: no task ends before its arrival plus its own inference.
 *
 * Every term holds for any policy, so efficiency = bound / makespan is at most 1 and is the
 * same yardstick for all three policies. GPU constraints are ignored (any node may serve any
 * checkpoint), which can only lower the bound.
 */
export function lowerBound(trace: Trace): LowerBound {
  const specs = new Map(trace.checkpoints.map((c) => [c.name, c]));
  const nodes = trace.nodes.length;
  const taskMs = trace.arrivals.map((a) => a.inferenceMs ?? specs.get(a.checkpoint)!.inferenceMs);
  let lastTaskMs = 0;
  let arrivalsMs = 0;
  let suffixMs = 0;
  // Arrivals are in time order: walk back, adding each task's inference to the suffix.
  for (let i = trace.arrivals.length - 1; i >= 0; i--) {
    const a = trace.arrivals[i]!;
    suffixMs += taskMs[i]!;
    arrivalsMs = Math.max(arrivalsMs, a.atMs + suffixMs / nodes);
    lastTaskMs = Math.max(lastTaskMs, a.atMs + taskMs[i]!);
  }
  let firstLoadsMs = 0;
  for (const name of new Set(trace.arrivals.map((a) => a.checkpoint))) {
    const spec = specs.get(name)!;
    if (trace.nodes.some((n) => n.loaded === name)) continue;
    firstLoadsMs += spec.loadMs + (trace.nodes.some((n) => n.cached.includes(name)) ? 0 : spec.downloadMs);
  }
  const workMs = (suffixMs + firstLoadsMs) / nodes;
  return { workMs, arrivalsMs, lastTaskMs, boundMs: Math.max(workMs, arrivalsMs, lastTaskMs) };
}

export interface RunFigures {
  policy: string;
  tasks: number;
  makespanMs: number;
  /** Lower bound / makespan: 1 is perfect. */
  efficiency: number;
  throughputPerS: number;
  switches: number;
  downloads: number;
  /** Share of node time spent downloading and loading. */
  switchingShare: number;
  addonDownloads: number;
  /** Share of node time spent downloading add-ons. */
  addonShare: number;
  /** Wait = from arrival until inference starts (includes the download and load it waited for). */
  p50WaitMs: number;
  p95WaitMs: number;
  maxWaitMs: number;
  switchReasons: Record<string, number>;
}

/** Nearest-rank percentile of ascending values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function figures(trace: Trace, run: SimResult, bound: LowerBound = lowerBound(trace)): RunFigures {
  const waits = run.tasks.map((t) => {
    if (t.startMs === null) throw new Error(`${run.policy}: task ${t.id} never ran`);
    return t.startMs - t.arrivalMs;
  });
  waits.sort((a, b) => a - b);
  return {
    policy: run.policy,
    tasks: run.tasks.length,
    makespanMs: run.makespanMs,
    efficiency: bound.boundMs / run.makespanMs,
    throughputPerS: run.tasks.length / (run.makespanMs / 1000),
    switches: run.switches,
    downloads: run.downloads,
    switchingShare: run.switchingMs / (run.makespanMs * trace.nodes.length),
    addonDownloads: run.addonDownloads,
    addonShare: run.addonDownloadMs / (run.makespanMs * trace.nodes.length),
    p50WaitMs: percentile(waits, 50),
    p95WaitMs: percentile(waits, 95),
    maxWaitMs: waits[waits.length - 1] ?? 0,
    switchReasons: run.switchReasons,
  };
}

export interface ClassWaits {
  /** popular (the top fifth of checkpoints by arrivals), rare (the rest), or a family (sd15, sdxl). */
  name: string;
  waitsMs: number[];
}

/** Each task's wait (arrival until inference starts), by class; a trace may have no task of a class. */
export function waitsByClass(trace: Trace, run: SimResult): ClassWaits[] {
  const arrivals = new Map<string, number>();
  for (const a of trace.arrivals) arrivals.set(a.checkpoint, (arrivals.get(a.checkpoint) ?? 0) + 1);
  const ranked = trace.checkpoints.map((c) => c.name).sort((a, b) => (arrivals.get(b) ?? 0) - (arrivals.get(a) ?? 0) || a.localeCompare(b));
  const popular = new Set(ranked.slice(0, Math.max(1, Math.ceil(ranked.length / 5))));
  const family = new Map(trace.checkpoints.map((c) => [c.name, c.family]));
  const classes = new Map<string, number[]>(["popular", "rare", "sd15", "sdxl"].map((name) => [name, []]));
  for (const t of run.tasks) {
    if (t.startMs === null) throw new Error(`${run.policy}: task ${t.id} never ran`);
    const waitMs = t.startMs - t.arrivalMs;
    classes.get(popular.has(t.checkpoint) ? "popular" : "rare")!.push(waitMs);
    classes.get(family.get(t.checkpoint)!)!.push(waitMs);
  }
  return [...classes].map(([name, waitsMs]) => ({ name, waitsMs }));
}
