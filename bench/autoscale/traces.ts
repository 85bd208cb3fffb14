// The autoscaling traces, drawn from bench/placement's seeded PRNG: a day of diurnal traffic (quiet nights,
// a busy afternoon) and six hours of bursty traffic (a low trickle with batch jobs of hundreds
// of tasks landing at once). Both over four checkpoints of bench/placement's kind (SD1.5 and
// SDXL timings), popularity skewed.
import { rng } from "../placement/random.ts";
import type { TraceCheckpoint } from "../placement/trace.ts";

export interface Arrival {
  atMs: number;
  checkpoint: string;
  inferenceMs: number;
}

export interface AutoscaleTrace {
  name: string;
  durationMs: number;
  checkpoints: TraceCheckpoint[];
  arrivals: Arrival[];
}

const checkpoint = (name: string, family: "sd15" | "sdxl", inferenceMs: number, loadMs: number, downloadMs: number): TraceCheckpoint => ({
  name,
  family,
  inferenceMs,
  loadMs,
  downloadMs,
  sizeMb: family === "sd15" ? 2_000 : 6_500,
  minNodes: 0,
  maxNodes: 0,
  minGpuMemoryMb: 0,
  gpuClass: null,
});

const CHECKPOINTS: TraceCheckpoint[] = [
  checkpoint("dreamshaper_8", "sd15", 2_500, 6_000, 30_000),
  checkpoint("sd_xl_base_1.0", "sdxl", 5_500, 18_000, 90_000),
  checkpoint("realisticVision_v51", "sd15", 2_200, 7_000, 30_000),
  checkpoint("juggernautXL_v9", "sdxl", 6_000, 20_000, 95_000),
];
const POPULARITY = [0.45, 0.3, 0.15, 0.1];

function pick(r: () => number): TraceCheckpoint {
  let x = r();
  for (const [i, c] of CHECKPOINTS.entries()) {
    x -= POPULARITY[i]!;
    if (x <= 0) return c;
  }
  return CHECKPOINTS[CHECKPOINTS.length - 1]!;
}

/** Poisson arrivals of a time-varying rate (per second), by thinning. */
function arrivals(r: () => number, durationMs: number, ratePerS: (atMs: number) => number, maxRatePerS: number): Arrival[] {
  const out: Arrival[] = [];
  let atMs = 0;
  for (;;) {
    atMs += (-Math.log(1 - r()) / maxRatePerS) * 1000;
    if (atMs >= durationMs) return out;
    if (r() * maxRatePerS > ratePerS(atMs)) continue;
    const c = pick(r);
    out.push({ atMs: Math.round(atMs), checkpoint: c.name, inferenceMs: Math.round(c.inferenceMs * (0.8 + 0.4 * r())) });
  }
}

const HOUR_MS = 3_600_000;

/** 24 h: 0.01 tasks/s at 4 am rising to about 1.2/s at 3 pm, back down in the evening. */
export function diurnalTrace(seed: number): AutoscaleTrace {
  const r = rng(seed);
  const durationMs = 24 * HOUR_MS;
  const PEAK_PER_S = 1.2;
  const NIGHT_PER_S = 0.01;
  const rate = (atMs: number) => {
    const hour = atMs / HOUR_MS;
    const day = Math.max(0, Math.sin(((hour - 6) / 18) * Math.PI)) ** 2; // 0 before 6 am and after midnight, 1 at 3 pm
    return NIGHT_PER_S + (PEAK_PER_S - NIGHT_PER_S) * day;
  };
  return { name: "diurnal", durationMs, checkpoints: CHECKPOINTS, arrivals: arrivals(r, durationMs, rate, PEAK_PER_S) };
}

/** 6 h: a 0.05/s trickle, and every 20–60 min a batch of 150–400 tasks arriving within a minute. */
export function burstyTrace(seed: number): AutoscaleTrace {
  const r = rng(seed);
  const durationMs = 6 * HOUR_MS;
  const trickle = arrivals(r, durationMs, () => 0.05, 0.05);
  const bursts: Arrival[] = [];
  for (let atMs = (20 + 40 * r()) * 60_000; atMs < durationMs - 30 * 60_000; atMs += (20 + 40 * r()) * 60_000) {
    const c = pick(r);
    const size = Math.round(150 + 250 * r());
    for (let i = 0; i < size; i++)
      bursts.push({ atMs: Math.round(atMs + 60_000 * r()), checkpoint: c.name, inferenceMs: Math.round(c.inferenceMs * (0.8 + 0.4 * r())) });
  }
  const all = [...trickle, ...bursts].sort((a, b) => a.atMs - b.atMs);
  return { name: "bursty", durationMs, checkpoints: CHECKPOINTS, arrivals: all };
}
