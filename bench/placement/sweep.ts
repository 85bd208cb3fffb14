// Sustainable load: the highest offered load at which a policy keeps p95 wait within a bound,
// found by bisection over a grid of loads, each load run on several seeds of a trace shape.
// p95 at a load is the median over seeds of each seed's p95, so no single seed decides.
import { figures, percentile, waitsByClass } from "./metrics.ts";
import { makePolicy, type PolicyName } from "./policies.ts";
import { type GenerateOptions, generateTrace, type ShapeName } from "./shapes.ts";
import { simulate } from "./simulator.ts";
import type { Trace } from "./trace.ts";

/** Loads are searched on this grid, up to MAX_LOAD. */
export const LOAD_STEP = 0.05;
export const MAX_LOAD = 1.5;

export interface SeedFigures {
  seed: number;
  p95WaitMs: number;
  /** Node time spent downloading and loading, and all node time (makespan × nodes). */
  switchingMs: number;
  nodeMs: number;
  ramSwitches: number;
  switches: number;
  downloads: number;
  /** Checkpoint files fetched in the background (sdgate's prefetch), not counted in switchingMs. */
  prefetches: number;
  efficiency: number;
  /** Waits by class (popular, rare, sd15, sdxl). */
  classes: { name: string; waitsMs: number[] }[];
}

export interface Scenario {
  shape: ShapeName;
  policy: PolicyName;
  seeds: readonly number[];
  /** Passed to the generator (e.g. a RAM cache per node). */
  options?: Omit<GenerateOptions, "seed" | "load">;
}

/** Traces drawn lately, by shape, options, seed and load: policies compared on a load share them. */
const drawn = new Map<string, Trace>();
const DRAWN_KEPT = 256;

function traceFor(s: Scenario, load: number, seed: number): Trace {
  const key = JSON.stringify([s.shape, s.options ?? {}, seed, load]);
  let trace = drawn.get(key);
  if (!trace) {
    trace = generateTrace(s.shape, { ...s.options, seed, load });
    if (drawn.size >= DRAWN_KEPT) drawn.delete(drawn.keys().next().value!);
    drawn.set(key, trace);
  }
  return trace;
}

export function runSeed(s: Scenario, load: number, seed: number): SeedFigures {
  const trace = traceFor(s, load, seed);
  const run = simulate(trace, makePolicy(s.policy, trace));
  const f = figures(trace, run);
  return {
    seed,
    p95WaitMs: f.p95WaitMs,
    switchingMs: run.switchingMs,
    nodeMs: run.makespanMs * trace.nodes.length,
    ramSwitches: run.ramSwitches,
    switches: run.switches,
    downloads: run.downloads,
    prefetches: run.prefetches,
    efficiency: f.efficiency,
    classes: waitsByClass(trace, run),
  };
}

export function runSeeds(s: Scenario, load: number): SeedFigures[] {
  return s.seeds.map((seed) => runSeed(s, load, seed));
}

export function medianOf(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** A scenario's p95 wait at each load (median over its seeds), computed once per load. */
export function p95ByLoad(s: Scenario): (load: number) => number {
  const known = new Map<number, number>();
  return (load) => {
    const key = Math.round(load / LOAD_STEP);
    let p95 = known.get(key);
    if (p95 === undefined) {
      // A seed's p95 only matters to the median until more than half the seeds are past any bound we search for.
      p95 = medianOf(runSeeds(s, key * LOAD_STEP).map((f) => f.p95WaitMs));
      known.set(key, p95);
    }
    return p95;
  };
}

/**
 * The highest load on the grid whose p95 wait is within `boundMs` (0 when even the lowest is
 * not), by bisection: p95 wait grows with load.
 */
export function sustainableLoad(p95At: (load: number) => number, boundMs: number): number {
  let pass = 0;
  let fail = Math.round(MAX_LOAD / LOAD_STEP) + 1;
  while (fail - pass > 1) {
    const mid = (pass + fail) >> 1;
    if (p95At(mid * LOAD_STEP) <= boundMs) pass = mid;
    else fail = mid;
  }
  return pass * LOAD_STEP;
}

/** Pooled figures of several seeds at one load. */
export interface PooledFigures {
  switchingShare: number;
  efficiency: number;
  ramSwitches: number;
  switches: number;
  downloads: number;
  prefetches: number;
  classes: { name: string; tasks: number; p50WaitMs: number; p95WaitMs: number }[];
  all: { p50WaitMs: number; p95WaitMs: number };
}

export function pooled(runs: readonly SeedFigures[]): PooledFigures {
  const sum = (pick: (f: SeedFigures) => number) => runs.reduce((acc, f) => acc + pick(f), 0);
  const names = runs[0]?.classes.map((c) => c.name) ?? [];
  const waitsOf = (name: string) => runs.flatMap((f) => f.classes.find((c) => c.name === name)!.waitsMs).sort((a, b) => a - b);
  const all = runs.flatMap((f) => f.classes.filter((c) => c.name === "popular" || c.name === "rare").flatMap((c) => c.waitsMs)).sort((a, b) => a - b);
  return {
    switchingShare: sum((f) => f.switchingMs) / sum((f) => f.nodeMs),
    efficiency: sum((f) => f.efficiency) / runs.length,
    ramSwitches: sum((f) => f.ramSwitches) / runs.length,
    switches: sum((f) => f.switches) / runs.length,
    downloads: sum((f) => f.downloads) / runs.length,
    prefetches: sum((f) => f.prefetches) / runs.length,
    classes: names.map((name) => {
      const w = waitsOf(name);
      return { name, tasks: w.length, p50WaitMs: percentile(w, 50), p95WaitMs: percentile(w, 95) };
    }),
    all: { p50WaitMs: percentile(all, 50), p95WaitMs: percentile(all, 95) },
  };
}
