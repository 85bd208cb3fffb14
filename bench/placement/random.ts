// Seeded randomness for the trace generators: the same seed always draws the same trace.

export type Rand = () => number;

/** mulberry32: small, fast, deterministic. */
export function rng(seed: number): Rand {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const between = (r: Rand, lo: number, hi: number) => lo + (hi - lo) * r();
export const exponential = (r: Rand, mean: number) => -Math.log(1 - r()) * mean;
export const roundTo = (ms: number, step: number) => Math.round(ms / step) * step;

export function pickWeighted<T>(r: Rand, items: readonly T[], weights: readonly number[]): T {
  const total = weights.reduce((a, b) => a + b, 0);
  let x = r() * total;
  for (const [i, item] of items.entries()) {
    x -= weights[i]!;
    if (x < 0) return item;
  }
  return items[items.length - 1]!;
}

/** A Fisher–Yates shuffle (popularity weights shuffled over checkpoints so rank does not follow family). */
export function shuffled<T>(r: Rand, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

export function zipfWeights(n: number, s: number): number[] {
  return Array.from({ length: n }, (_, i) => 1 / (i + 1) ** s);
}
