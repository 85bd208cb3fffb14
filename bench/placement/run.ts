// Placement benchmark: runs affinity (src/fleet/placement.ts), fifo-any and static on the same
// traces in a discrete-event simulator and prints their figures.
//
//   tsx bench/placement/run.ts [trace.json ...]     (default: every trace in ./traces)
//
// It prints; it never fails on figures (the acceptance lines say whether they are met).
import { readdir } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { figures, lowerBound, type RunFigures } from "./metrics.ts";
import { makePolicy, POLICY_NAMES } from "./policies.ts";
import { simulate } from "./simulator.ts";
import { loadTrace } from "./trace.ts";

/** The acceptance: efficiency everywhere, throughput vs fifo-any on these traces. */
const MIN_EFFICIENCY = 0.9;
const MIN_THROUGHPUT_VS_FIFO_ANY = 1.5;
const THROUGHPUT_TRACES = new Set(["zipf", "bursty"]);
/** The lower bound leaves add-on downloads out, so the efficiency requirement holds on the traces without add-ons. */
const EFFICIENCY_TRACES = new Set(["uniform", "zipf", "bursty"]);

const TRACE_DIR = join(dirname(fileURLToPath(import.meta.url)), "traces");

const seconds = (ms: number, digits = 1) => (ms / 1000).toFixed(digits);

function table(rows: readonly RunFigures[]): string {
  const header = [
    "policy",
    "makespan s",
    "efficiency",
    "tasks/s",
    "switches",
    "downloads",
    "switching %",
    "add-on dl",
    "add-on dl %",
    "p50 wait s",
    "p95 wait s",
    "max wait s",
  ];
  const body = rows.map((f) => [
    f.policy,
    seconds(f.makespanMs),
    f.efficiency.toFixed(3),
    f.throughputPerS.toFixed(3),
    String(f.switches),
    String(f.downloads),
    (100 * f.switchingShare).toFixed(1),
    String(f.addonDownloads),
    (100 * f.addonShare).toFixed(1),
    seconds(f.p50WaitMs),
    seconds(f.p95WaitMs),
    seconds(f.maxWaitMs),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n");
}

const verdict = (ok: boolean) => (ok ? "PASS" : "FAIL");

const args = process.argv.slice(2);
const paths =
  args.length > 0
    ? args
    : (await readdir(TRACE_DIR))
        .filter((f) => f.endsWith(".json"))
        .sort()
        .map((f) => join(TRACE_DIR, f));
let allMet = true;

for (const path of paths) {
  const trace = await loadTrace(path);
  const bound = lowerBound(trace);
  const runs = POLICY_NAMES.map((name) => figures(trace, simulate(trace, makePolicy(name, trace)), bound));
  const [affinity, fifoAny, staticRun] = runs as [RunFigures, RunFigures, RunFigures];

  console.log(`\n== ${trace.name} (${basename(path)}): ${trace.description}`);
  console.log(
    `lower bound ${seconds(bound.boundMs)} s = max of: work ${seconds(bound.workMs)} s ((Σ inference + first load per checkpoint) / ${trace.nodes.length} nodes), ` +
      `arrivals ${seconds(bound.arrivalsMs)} s (max over t of t + inference arriving from t on / nodes), last task ${seconds(bound.lastTaskMs)} s (arrival + own inference)`,
  );
  console.log(table(runs));
  const reasons = Object.entries(affinity.switchReasons)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  console.log(`affinity switches by reason: ${reasons || "none"}`);

  const throughputRatio = affinity.throughputPerS / fifoAny.throughputPerS;
  const efficiencyNeeded = EFFICIENCY_TRACES.has(trace.name);
  const efficiencyOk = !efficiencyNeeded || affinity.efficiency >= MIN_EFFICIENCY;
  const p95Ok = affinity.p95WaitMs <= staticRun.p95WaitMs;
  const throughputNeeded = THROUGHPUT_TRACES.has(trace.name);
  const throughputOk = !throughputNeeded || throughputRatio >= MIN_THROUGHPUT_VS_FIFO_ANY;
  console.log(
    `efficiency        affinity ${affinity.efficiency.toFixed(3)}` +
      (efficiencyNeeded ? ` (needs >= ${MIN_EFFICIENCY})  ${verdict(efficiencyOk)}` : " (no requirement: the bound leaves out add-on downloads)"),
  );
  console.log(
    `throughput        affinity / fifo-any = ${throughputRatio.toFixed(2)}x, affinity / static = ${(affinity.throughputPerS / staticRun.throughputPerS).toFixed(2)}x` +
      (throughputNeeded ? ` (needs >= ${MIN_THROUGHPUT_VS_FIFO_ANY}x fifo-any)  ${verdict(throughputOk)}` : " (no requirement on this trace)"),
  );
  console.log(`p95 wait          affinity ${seconds(affinity.p95WaitMs)} s vs static ${seconds(staticRun.p95WaitMs)} s (needs <=)  ${verdict(p95Ok)}`);
  allMet &&= efficiencyOk && throughputOk && p95Ok;
}

console.log(`\nacceptance: ${allMet ? "met on every trace" : "NOT met (see FAIL lines)"}`);
console.log("wait = arrival until inference starts (includes the download/load the task waited for); makespan from t = 0 to the last completion.");
