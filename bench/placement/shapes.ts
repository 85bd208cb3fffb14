// The seeded trace generator: traces of several shapes at any offered load, for sweeping load
// over seeds (bench/placement/run.ts) and for other benchmarks that reuse the simulator.
//
//   generateTrace("long-tail", { seed: 3, load: 0.5 })
//
// Offered load is the work arriving per second (Σ inference) over the fleet's capacity without
// switches (one task at a time per node): 1.0 keeps every node busy with no switch at all.
//
// Figures: SD1.5 checkpoints (~2 GB) load in 5–8 s, download in 20–40 s, run a task in 1.5–3 s;
// SDXL (~6.5 GB) load in 12–30 s, download in 60–100 s, run in 4–7 s (RTX 4090 / L4 class).
// Each task's inference varies ±20 % around its checkpoint's mean.
import type { z } from "zod";
import { between, exponential, pickWeighted, type Rand, rng, roundTo, shuffled, zipfWeights } from "./random.ts";
import { type Trace, traceSchema } from "./trace.ts";

// Traces as written: fields with defaults may be left out.
export type TraceInput = z.input<typeof traceSchema>;
type TraceCheckpoint = TraceInput["checkpoints"][number];
type TraceNode = TraceInput["nodes"][number];
export type Arrival = TraceInput["arrivals"][number];
export type Family = "sd15" | "sdxl";

/** SDXL needs more than a 12 GB card (it runs on the 24 GB ones). */
export const SDXL_MIN_GPU_MEMORY_MB = 16_384;

export function checkpointSpec(r: Rand, name: string, family: Family): TraceCheckpoint {
  return family === "sd15"
    ? {
        name,
        family,
        inferenceMs: roundTo(between(r, 1500, 3000), 10),
        loadMs: roundTo(between(r, 5000, 8000), 100),
        downloadMs: roundTo(between(r, 20_000, 40_000), 1000),
        minNodes: 0,
        maxNodes: 0,
        minGpuMemoryMb: 0,
        gpuClass: null,
      }
    : {
        name,
        family,
        inferenceMs: roundTo(between(r, 4000, 7000), 10),
        loadMs: roundTo(between(r, 12_000, 30_000), 100),
        downloadMs: roundTo(between(r, 60_000, 100_000), 1000),
        minNodes: 0,
        maxNodes: 0,
        minGpuMemoryMb: 12_288,
        gpuClass: null,
      };
}

/** Nodes that have been running for a while: each has a checkpoint loaded and a few files cached, drawn by popularity. */
export function warmNodes(
  r: Rand,
  count: number,
  ckpts: readonly TraceCheckpoint[],
  weights: readonly number[],
  node: (i: number) => { id: string; gpuMemoryMb: number; gpuClass: string },
): TraceNode[] {
  return Array.from({ length: count }, (_, i) => {
    const self = node(i);
    const fits = ckpts.map((c, j) => (self.gpuMemoryMb >= (c.minGpuMemoryMb ?? 0) ? weights[j]! : 0));
    const loaded = pickWeighted(r, ckpts, fits).name;
    const cached = new Set([loaded]);
    const extra = 1 + Math.floor(r() * 3);
    while (cached.size < 1 + extra) cached.add(pickWeighted(r, ckpts, fits).name);
    return { ...self, loaded, cached: [...cached].sort() };
  });
}

export function arrival(r: Rand, atMs: number, c: TraceCheckpoint): Arrival {
  return { atMs: Math.round(atMs), checkpoint: c.name, inferenceMs: roundTo(c.inferenceMs * between(r, 0.8, 1.2), 10) };
}

function meanInferenceMs(ckpts: readonly TraceCheckpoint[], weights: readonly number[]): number {
  const total = weights.reduce((a, b) => a + b, 0);
  return ckpts.reduce((sum, c, i) => sum + (c.inferenceMs * weights[i]!) / total, 0);
}

/** `count` Poisson arrivals offering `offeredLoad` × the capacity of `nodeCount` nodes, checkpoints by weight. */
export function poisson(
  r: Rand,
  ckpts: readonly TraceCheckpoint[],
  weights: readonly number[],
  count: number,
  offeredLoad: number,
  nodeCount: number,
): Arrival[] {
  const meanGapMs = meanInferenceMs(ckpts, weights) / (offeredLoad * nodeCount);
  const out: Arrival[] = [];
  let t = 0;
  for (let i = 0; i < count; i++) {
    out.push(arrival(r, t, pickWeighted(r, ckpts, weights)));
    t += exponential(r, meanGapMs);
  }
  return out;
}

/**
 * Poisson arrivals over `durationMs` at `offeredLoad` × the capacity of `nodeCount` nodes on
 * average, the rate shaped by `rate(t)` (mean 1 over the trace; thinning against `peakRate`).
 */
function arrivalsOver(
  r: Rand,
  ckpts: readonly TraceCheckpoint[],
  weights: readonly number[],
  o: { offeredLoad: number; nodeCount: number; durationMs: number; rate?: (atMs: number) => number; peakRate?: number },
): Arrival[] {
  const peak = o.peakRate ?? 1;
  const meanGapMs = meanInferenceMs(ckpts, weights) / (o.offeredLoad * o.nodeCount * peak);
  const out: Arrival[] = [];
  for (let t = exponential(r, meanGapMs); t < o.durationMs; t += exponential(r, meanGapMs)) {
    if (o.rate && r() * peak > o.rate(t)) continue;
    out.push(arrival(r, t, pickWeighted(r, ckpts, weights)));
  }
  return out;
}

const names = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}-${String(i + 1).padStart(2, "0")}`);
const uniformNodes = (gpuClass: string) => (i: number) => ({ id: `node-${i + 1}`, gpuMemoryMb: 24_576, gpuClass });

export const SHAPES = ["long-tail", "heterogeneous", "diurnal", "cold", "zipf"] as const;
export type ShapeName = (typeof SHAPES)[number];

export interface GenerateOptions {
  seed: number;
  /** Mean offered load (see the file's header). */
  load: number;
  /** How long arrivals last; default 30 min. */
  durationMs?: number;
  /** Checkpoints each node can keep in RAM besides the loaded one (absent: none). */
  ramCacheCheckpoints?: number;
}

export const DEFAULT_DURATION_MS = 30 * 60_000;

/** Zipf exponent of the skewed shapes (as the shipped zipf trace). */
const ZIPF_S = 1.1;

/**
 * A trace of `shape` (seed and load as given):
 * - long-tail: 40 SD1.5 checkpoints, Zipf popularity, 8 warm 24 GB nodes;
 * - heterogeneous: 4 × 24 GB + 8 × 12 GB warm nodes; 10 SD1.5 checkpoints (Zipf) and 4 SDXL (Zipf,
 *   a quarter of the work) that only the 24 GB nodes may run;
 * - diurnal: 12 checkpoints (8 SD1.5, 4 SDXL, Zipf), 8 warm nodes; the rate swings ±60 % over two
 *   cycles, and a flash crowd on one less popular checkpoint brings a sixth of the trace's work
 *   within 90 s;
 * - cold: 20 checkpoints (16 SD1.5, 4 SDXL, Zipf), 16 nodes with nothing loaded or cached;
 * - zipf: the shipped zipf trace's shape (12 checkpoints, 8 SD1.5 and 4 SDXL, Zipf) on 8 warm nodes.
 */
export function generateTrace(shape: ShapeName, o: GenerateOptions): Trace {
  const r = rng(1_000_003 * (SHAPES.indexOf(shape) + 1) + o.seed);
  const durationMs = o.durationMs ?? DEFAULT_DURATION_MS;
  const trace = buildShape(shape, r, o.load, durationMs);
  const ram = o.ramCacheCheckpoints;
  const withRam = ram === undefined ? trace : { ...trace, nodes: trace.nodes.map((n) => ({ ...n, ramCacheCheckpoints: ram })) };
  return traceSchema.parse(withRam);
}

function buildShape(shape: ShapeName, r: Rand, load: number, durationMs: number): TraceInput {
  const over = { offeredLoad: load, durationMs };
  switch (shape) {
    case "long-tail": {
      const ckpts = names("sd15", 40).map((n) => checkpointSpec(r, n, "sd15"));
      const weights = zipfWeights(ckpts.length, ZIPF_S);
      return {
        name: shape,
        description: "40 SD1.5 checkpoints, Zipf(1.1) popularity, 8 warm 24 GB nodes",
        nodes: warmNodes(r, 8, ckpts, weights, uniformNodes("rtx4090")),
        checkpoints: ckpts,
        arrivals: arrivalsOver(r, ckpts, weights, { ...over, nodeCount: 8 }),
      };
    }
    case "heterogeneous": {
      const sd15 = names("sd15", 10).map((n) => checkpointSpec(r, n, "sd15"));
      const sdxl = names("sdxl", 4).map((n) => ({ ...checkpointSpec(r, n, "sdxl"), minGpuMemoryMb: SDXL_MIN_GPU_MEMORY_MB }));
      const ckpts = [...sd15, ...sdxl];
      // A quarter of the work is SDXL: weights scaled so each family's share of work is fixed.
      const family = (list: TraceCheckpoint[], share: number) => {
        const w = zipfWeights(list.length, ZIPF_S);
        const work = list.reduce((s, c, i) => s + c.inferenceMs * w[i]!, 0);
        return w.map((x) => (share * x) / work);
      };
      const weights = [...family(sd15, 0.75), ...family(sdxl, 0.25)];
      const nodes = warmNodes(r, 12, ckpts, weights, (i) =>
        i < 4 ? { id: `big-${i + 1}`, gpuMemoryMb: 24_576, gpuClass: "rtx4090" } : { id: `small-${i - 3}`, gpuMemoryMb: 12_288, gpuClass: "rtx3060" },
      );
      return {
        name: shape,
        description: "4 × 24 GB + 8 × 12 GB warm nodes; 10 SD1.5 checkpoints (Zipf 1.1) and 4 SDXL (a quarter of the work) only the 24 GB nodes run",
        nodes,
        checkpoints: ckpts,
        arrivals: arrivalsOver(r, ckpts, weights, { ...over, nodeCount: 12 }),
      };
    }
    case "diurnal": {
      const ckpts = shuffled(r, [...names("sd15", 8).map((n) => checkpointSpec(r, n, "sd15")), ...names("sdxl", 4).map((n) => checkpointSpec(r, n, "sdxl"))]);
      const weights = zipfWeights(ckpts.length, ZIPF_S);
      const flashShare = 1 / 6;
      const swing = 0.6;
      const background = arrivalsOver(r, ckpts, weights, {
        offeredLoad: load * (1 - flashShare),
        nodeCount: 8,
        durationMs,
        rate: (t) => 1 + swing * Math.sin((4 * Math.PI * t) / durationMs),
        peakRate: 1 + swing,
      });
      const flashWindowMs = 90_000;
      const flashAtMs = between(r, 0.2, 0.7) * durationMs;
      const flashCkpt = ckpts[2 + Math.floor(r() * (ckpts.length - 2))]!;
      const flash = arrivalsOver(r, [flashCkpt], [1], {
        offeredLoad: (load * flashShare * durationMs) / flashWindowMs,
        nodeCount: 8,
        durationMs: flashWindowMs,
      }).map((a) => ({ ...a, atMs: a.atMs + Math.round(flashAtMs) }));
      return {
        name: shape,
        description:
          "12 checkpoints (8 SD1.5, 4 SDXL, Zipf 1.1), 8 warm nodes; rate ±60 % over two cycles plus a flash crowd (a sixth of the work on one less popular checkpoint within 90 s)",
        nodes: warmNodes(r, 8, ckpts, weights, uniformNodes("rtx4090")),
        checkpoints: ckpts,
        arrivals: [...background, ...flash].sort((a, b) => a.atMs - b.atMs),
      };
    }
    case "cold": {
      const ckpts = shuffled(r, [...names("sd15", 16).map((n) => checkpointSpec(r, n, "sd15")), ...names("sdxl", 4).map((n) => checkpointSpec(r, n, "sdxl"))]);
      const weights = zipfWeights(ckpts.length, ZIPF_S);
      return {
        name: shape,
        description: "20 checkpoints (16 SD1.5, 4 SDXL, Zipf 1.1), 16 nodes with nothing loaded or cached",
        nodes: Array.from({ length: 16 }, (_, i) => ({ ...uniformNodes("rtx4090")(i), loaded: null, cached: [] })),
        checkpoints: ckpts,
        arrivals: arrivalsOver(r, ckpts, weights, { ...over, nodeCount: 16 }),
      };
    }
    case "zipf": {
      const ckpts = shuffled(r, [...names("sd15", 8).map((n) => checkpointSpec(r, n, "sd15")), ...names("sdxl", 4).map((n) => checkpointSpec(r, n, "sdxl"))]);
      const weights = zipfWeights(ckpts.length, ZIPF_S);
      return {
        name: shape,
        description: "12 checkpoints (8 SD1.5, 4 SDXL, Zipf 1.1), 8 warm nodes",
        nodes: warmNodes(r, 8, ckpts, weights, uniformNodes("rtx4090")),
        checkpoints: ckpts,
        arrivals: arrivalsOver(r, ckpts, weights, { ...over, nodeCount: 8 }),
      };
    }
  }
}
