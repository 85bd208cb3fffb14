// Autoscaling benchmark: sdgate's scaling policy (src/fleet/scaling.ts) against fixed fleets
// sized for the peak and for the mean, and KEDA's queue-length rule, on a diurnal and a bursty
// trace, nodes booting 45–150 s, GPU time billed per second (booting included).
//
//   npm run bench:autoscale [-- --seeds 1,2,3]
//
// It prints; it never fails on figures (the acceptance lines say whether they are met).
import { percentile } from "../placement/metrics.ts";
import { rng } from "../placement/random.ts";
import { kedaQueueLengthPolicy, meanSizedPolicy, peakSizedPolicy, sdgatePolicy } from "./policies.ts";
import { type SimResult, simulate } from "./simulator.ts";
import { type AutoscaleTrace, burstyTrace, diurnalTrace } from "./traces.ts";

/** A node's boot (scheduling, image pull, sd-webui start) takes this long, uniformly drawn. */
const BOOT_MIN_MS = 45_000;
const BOOT_MAX_MS = 150_000;
const MEAN_BOOT_MS = (BOOT_MIN_MS + BOOT_MAX_MS) / 2;
/** The target: p95 wait within this plus one boot time on the diurnal trace. */
const P95_BUDGET_MS = 60_000;

const argv = process.argv.slice(2);
const seedsFlag = argv.indexOf("--seeds");
const SEEDS = (seedsFlag >= 0 ? argv[seedsFlag + 1]! : "1,2,3").split(",").map(Number);

interface Figures {
  policy: string;
  gpuHours: number;
  gpuHoursPer1000: number;
  p50WaitS: number;
  p95WaitS: number;
  scaleUps: number;
  nodesStarted: number;
  peakNodes: number;
}

function figures(run: SimResult): Figures {
  const waits = run.tasks.map((t) => t.startMs! - t.atMs).sort((a, b) => a - b);
  const gpuHours = run.gpuMs / 3_600_000;
  return {
    policy: run.policy,
    gpuHours,
    gpuHoursPer1000: (gpuHours * 1000) / run.tasks.length,
    p50WaitS: percentile(waits, 50) / 1000,
    p95WaitS: percentile(waits, 95) / 1000,
    scaleUps: run.scaleUps,
    nodesStarted: run.nodesStarted,
    peakNodes: run.peakNodes,
  };
}

function table(rows: readonly Figures[]): string {
  const header = ["policy", "GPU-h", "GPU-h/1000 img", "p50 wait s", "p95 wait s", "scale-ups", "nodes started", "peak nodes"];
  const body = rows.map((f) => [
    f.policy,
    f.gpuHours.toFixed(1),
    f.gpuHoursPer1000.toFixed(3),
    f.p50WaitS.toFixed(1),
    f.p95WaitS.toFixed(1),
    String(f.scaleUps),
    String(f.nodesStarted),
    String(f.peakNodes),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n");
}

const verdict = (ok: boolean) => (ok ? "PASS" : "FAIL");

function runTrace(trace: AutoscaleTrace, seed: number): Figures[] {
  const policies = [sdgatePolicy(), peakSizedPolicy(trace), meanSizedPolicy(trace), kedaQueueLengthPolicy()];
  return policies.map((policy) => {
    // Every policy sees the same boot times, node by node.
    const random = rng(seed * 7919);
    return figures(simulate(trace, policy, (r) => BOOT_MIN_MS + (BOOT_MAX_MS - BOOT_MIN_MS) * r, random));
  });
}

let allPass = true;
for (const seed of SEEDS) {
  for (const trace of [diurnalTrace(seed), burstyTrace(seed)]) {
    const rows = runTrace(trace, seed);
    console.log(
      `\n${trace.name} (seed ${seed}): ${trace.arrivals.length} tasks over ${(trace.durationMs / 3_600_000).toFixed(0)} h, boot ${BOOT_MIN_MS / 1000}–${BOOT_MAX_MS / 1000} s`,
    );
    console.log(table(rows));
    const [sdgate, peak, , keda] = rows as [Figures, Figures, Figures, Figures];
    const checks: Array<[string, boolean]> = [
      [
        `sdgate cheaper than ${keda.policy} (${sdgate.gpuHoursPer1000.toFixed(3)} < ${keda.gpuHoursPer1000.toFixed(3)} GPU-h/1000)`,
        sdgate.gpuHours < keda.gpuHours,
      ],
      [`sdgate p95 below ${keda.policy}'s (${sdgate.p95WaitS.toFixed(1)} < ${keda.p95WaitS.toFixed(1)} s)`, sdgate.p95WaitS < keda.p95WaitS],
    ];
    if (trace.name === "diurnal") {
      checks.push([
        `sdgate ≤ half the peak fleet's GPU-hours (${sdgate.gpuHours.toFixed(1)} ≤ ${(peak.gpuHours / 2).toFixed(1)})`,
        sdgate.gpuHours <= peak.gpuHours / 2,
      ]);
      const budgetS = (P95_BUDGET_MS + MEAN_BOOT_MS) / 1000;
      checks.push([`sdgate p95 wait ≤ 60 s + one boot (${sdgate.p95WaitS.toFixed(1)} ≤ ${budgetS.toFixed(1)} s)`, sdgate.p95WaitS <= budgetS]);
    }
    for (const [what, ok] of checks) {
      allPass &&= ok;
      console.log(`  ${verdict(ok)}  ${what}`);
    }
  }
}
console.log(`\n${allPass ? "every acceptance line passes" : "some acceptance lines fail"} (seeds ${SEEDS.join(", ")})`);
