// Writes the shipped placement traces (bench/placement/traces/*.json) from a seeded PRNG, so
// they are reproducible: `tsx bench/placement/make-traces.ts`.
//
// Figures: SD1.5 checkpoints (~2 GB) load in 5–8 s, download in 20–40 s, run a task in 1.5–3 s;
// SDXL (~6.5 GB) load in 12–30 s, download in 60–100 s, run in 4–7 s (RTX 4090 / L4 class).
// Each task's inference varies ±20 % around its checkpoint's mean. Eight 24 GB nodes that have
// been running for a while: each has a checkpoint loaded and a few files cached, drawn by
// popularity. Arrivals offer more work than the fleet can do (offered load > 1) so tasks queue
// and placement decides how fast the backlog goes. 5000 tasks (20–45 min of traffic) so that
// the start (nodes loaded with the wrong checkpoints) and the drain at the end do not dominate.
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { between, exponential, pickWeighted, type Rand, rng, roundTo, shuffled, zipfWeights } from "./random.ts";
import { type Arrival, arrival, checkpointSpec, poisson, type TraceInput as Trace, warmNodes } from "./shapes.ts";
import { traceSchema } from "./trace.ts";

type TraceCheckpoint = Trace["checkpoints"][number];
type TraceNode = Trace["nodes"][number];
type TraceAddon = NonNullable<Trace["addons"]>[number];

// Options, for checking that a policy change is not fitted to the shipped draws:
// `--seed-offset N` (other seeds; the shipped traces use 0), `--tasks N` (default 5000),
// `--out DIR` (default bench/placement/traces).
const argv = process.argv.slice(2);
const flag = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const SEED_OFFSET = Number(flag("--seed-offset") ?? 0);
const TASKS = Number(flag("--tasks") ?? 5000);
const NODES = 8;
/** Offered load of the Poisson traces: work arriving per second / the fleet's capacity. */
const OFFERED_LOAD = 1.15;
const OUT_DIR = flag("--out") ?? join(dirname(fileURLToPath(import.meta.url)), "traces");

const SD15_NAMES = [
  "v1-5-pruned-emaonly",
  "realisticVisionV60B1",
  "dreamshaper_8",
  "revAnimated_v122",
  "majicmixRealistic_v7",
  "anything-v5",
  "deliberate_v3",
  "cyberrealistic_v42",
];
const SDXL_NAMES = ["sd_xl_base_1.0", "juggernautXL_v9", "animagineXL_v31", "realvisxlV40"];

function checkpoints(r: Rand, sd15: number, sdxl: number): TraceCheckpoint[] {
  return [...SD15_NAMES.slice(0, sd15).map((n) => checkpointSpec(r, n, "sd15")), ...SDXL_NAMES.slice(0, sdxl).map((n) => checkpointSpec(r, n, "sdxl"))];
}

function nodes(r: Rand, ckpts: readonly TraceCheckpoint[], weights: readonly number[]): TraceNode[] {
  return warmNodes(r, NODES, ckpts, weights, (i) => ({ id: `node-${i + 1}`, gpuMemoryMb: 24_576, gpuClass: i < 5 ? "rtx4090" : "l4" }));
}

function uniformTrace(): Trace {
  const r = rng(1 + SEED_OFFSET);
  const ckpts = checkpoints(r, 6, 2);
  const weights = ckpts.map(() => 1);
  return {
    name: "uniform",
    description: "8 checkpoints (6 SD1.5, 2 SDXL) equally popular, Poisson arrivals",
    nodes: nodes(r, ckpts, weights),
    checkpoints: ckpts,
    arrivals: poisson(r, ckpts, weights, TASKS, OFFERED_LOAD, NODES),
  };
}

function zipfTrace(): Trace {
  const r = rng(2 + SEED_OFFSET);
  const ckpts = shuffled(r, checkpoints(r, 8, 4));
  const weights = zipfWeights(ckpts.length, 1.1);
  return {
    name: "zipf",
    description: "12 checkpoints (8 SD1.5, 4 SDXL) with Zipf(1.1) popularity, Poisson arrivals",
    nodes: nodes(r, ckpts, weights),
    checkpoints: ckpts,
    arrivals: poisson(r, ckpts, weights, TASKS, OFFERED_LOAD, NODES),
  };
}

function burstyTrace(): Trace {
  const r = rng(3 + SEED_OFFSET);
  const ckpts = shuffled(r, checkpoints(r, 7, 3));
  const weights = zipfWeights(ckpts.length, 0.8);
  const nodeCount = NODES;
  const count = TASKS;
  // Background: Poisson over all checkpoints at 0.45x capacity. Bursts (a batch job, a
  // campaign): one checkpoint, picked by popularity, gets 60–250 tasks spread over 10–40 s —
  // far more than one node can do while it lasts; bursts start as a Poisson process spaced so
  // that they add 0.6x capacity on average.
  const background = poisson(r, ckpts, weights, count, 0.45, nodeCount);
  const totalWeight = weights.reduce((a, b) => a + b, 0);
  const meanInferenceMs = ckpts.reduce((sum, c, i) => sum + (c.inferenceMs * weights[i]!) / totalWeight, 0);
  const meanBurstGapMs = (155 * meanInferenceMs) / (0.6 * nodeCount);
  const bursts: Arrival[] = [];
  for (let t = exponential(r, meanBurstGapMs); ; t += exponential(r, meanBurstGapMs)) {
    const c = pickWeighted(r, ckpts, weights);
    const size = Math.round(between(r, 60, 250));
    const spanMs = between(r, 10_000, 40_000);
    for (let i = 0; i < size; i++) bursts.push(arrival(r, t + r() * spanMs, c));
    if (bursts.length >= count * 0.55) break;
  }
  const all = [...background.slice(0, count - bursts.length), ...bursts].sort((a, b) => a.atMs - b.atMs);
  return {
    name: "bursty",
    description:
      "10 checkpoints (7 SD1.5, 3 SDXL); Poisson background at 0.45x capacity (Zipf(0.8) popularity) plus bursts of 60-250 tasks of one checkpoint within 10-40 s (0.6x capacity on average)",
    nodes: nodes(r, ckpts, weights),
    checkpoints: ckpts,
    arrivals: all,
  };
}

// Add-ons (issue 12): file sizes of a LoRA, a VAE and a ControlNet model, fetched at the
// bandwidth the checkpoints' downloads assume (an SD1.5 file of ~2 GB in 20–40 s).
const DOWNLOAD_MB_PER_S = 70;
const ADDON_SIZE_MB = { lora: 150, vae: 300, controlnet: 1400 } as const;
const CHECKPOINT_SIZE_MB = { sd15: 2_000, sdxl: 6_500 } as const;
/** Disk for models on each node of the add-ons trace: about half of its checkpoints and add-ons fit. */
const ADDONS_DISK_BUDGET_MB = 30_000;

function addon(name: string, type: keyof typeof ADDON_SIZE_MB): TraceAddon {
  const sizeMb = ADDON_SIZE_MB[type];
  return { name, type, sizeMb, downloadMs: roundTo((1000 * sizeMb) / DOWNLOAD_MB_PER_S, 100) };
}

/**
 * The zipf trace's shape with add-ons: each task carries a LoRA with probability 0.6 (drawn
 * Zipf(1.0) from 15 made for its checkpoint), a VAE of its family with 0.2, a ControlNet model of
 * its family with 0.1; nodes have a disk budget shared by checkpoints and add-ons.
 */
function addonsTrace(): Trace {
  const r = rng(4 + SEED_OFFSET);
  const ckpts = shuffled(r, checkpoints(r, 8, 4)).map((c) => ({ ...c, sizeMb: CHECKPOINT_SIZE_MB[c.family] }));
  const weights = zipfWeights(ckpts.length, 1.1);
  const loraWeights = zipfWeights(15, 1.0);
  const lorasOf = new Map(ckpts.map((c) => [c.name, Array.from({ length: 15 }, (_, i) => addon(`${c.name}-lora-${i + 1}`, "lora"))]));
  const vaes = { sd15: [addon("vae-ft-mse-840000", "vae"), addon("kl-f8-anime2", "vae")], sdxl: [addon("sdxl_vae", "vae")] };
  const controlnets = {
    sd15: ["control_v11p_sd15_canny", "control_v11f1p_sd15_depth", "control_v11p_sd15_openpose"].map((n) => addon(n, "controlnet")),
    sdxl: ["diffusers_xl_canny_mid", "diffusers_xl_depth_mid"].map((n) => addon(n, "controlnet")),
  };
  const family = new Map(ckpts.map((c) => [c.name, c.family]));
  const arrivals = poisson(r, ckpts, weights, TASKS, OFFERED_LOAD, NODES).map((a) => {
    const f = family.get(a.checkpoint)!;
    const names: string[] = [];
    if (r() < 0.6) names.push(pickWeighted(r, lorasOf.get(a.checkpoint)!, loraWeights).name);
    if (r() < 0.2)
      names.push(
        pickWeighted(
          r,
          vaes[f],
          vaes[f].map(() => 1),
        ).name,
      );
    if (r() < 0.1)
      names.push(
        pickWeighted(
          r,
          controlnets[f],
          controlnets[f].map(() => 1),
        ).name,
      );
    return names.length > 0 ? { ...a, addons: names } : a;
  });
  return {
    name: "addons",
    description: `12 checkpoints (8 SD1.5, 4 SDXL) with Zipf(1.1) popularity, Poisson arrivals; per task a LoRA (p 0.6, Zipf(1.0) of 15 per checkpoint, ${ADDON_SIZE_MB.lora} MB), a VAE (p 0.2, ${ADDON_SIZE_MB.vae} MB), a ControlNet (p 0.1, ${ADDON_SIZE_MB.controlnet} MB) at ${DOWNLOAD_MB_PER_S} MB/s; ${ADDONS_DISK_BUDGET_MB / 1000} GB of model disk per node (LRU)`,
    nodes: nodes(r, ckpts, weights).map((n) => ({ ...n, diskBudgetMb: ADDONS_DISK_BUDGET_MB })),
    checkpoints: ckpts,
    addons: [...[...lorasOf.values()].flat(), ...vaes.sd15, ...vaes.sdxl, ...controlnets.sd15, ...controlnets.sdxl],
    arrivals,
  };
}

/** JSON with one arrival per line: readable diffs, modest size. */
function serialise(trace: Trace): string {
  const { arrivals, ...rest } = trace;
  const head = JSON.stringify(rest, null, 2).replace(/\n}$/, "");
  const lines = arrivals.map((a) => `    ${JSON.stringify(a)}`).join(",\n");
  return `${head},\n  "arrivals": [\n${lines}\n  ]\n}\n`;
}

/** Completes the description with what the draw actually offers. */
function described(trace: Trace): Trace {
  const specs = new Map(trace.checkpoints.map((c) => [c.name, c]));
  const workMs = trace.arrivals.reduce((sum, a) => sum + (a.inferenceMs ?? specs.get(a.checkpoint)!.inferenceMs), 0);
  const spanMs = trace.arrivals[trace.arrivals.length - 1]!.atMs;
  const offered = workMs / (trace.nodes.length * spanMs);
  return {
    ...trace,
    description:
      `${trace.nodes.length} nodes, ${trace.description}; ${trace.arrivals.length} tasks over ${Math.round(spanMs / 1000)} s ` +
      `offering ${offered.toFixed(2)}x the fleet's capacity`,
  };
}

await mkdir(OUT_DIR, { recursive: true });
for (const trace of [uniformTrace(), zipfTrace(), burstyTrace(), addonsTrace()]) {
  const written = described(trace);
  const checked = traceSchema.parse(written);
  const path = join(OUT_DIR, `${trace.name}.json`);
  await writeFile(path, serialise(written));
  console.log(`${path}: ${checked.arrivals.length} arrivals, ${checked.checkpoints.length} checkpoints, ${checked.nodes.length} nodes`);
}
