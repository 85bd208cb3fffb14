// The placement benchmark's machinery (bench/placement): the simulator keeps every task and
// every rule, the baselines do what they claim, the lower bound is a bound. No timings asserted.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { figures, lowerBound, percentile } from "../../bench/placement/metrics.ts";
import { fifoAnyPolicy, makePolicy, POLICY_NAMES, staticAssignment } from "../../bench/placement/policies.ts";
import { generateTrace, SHAPES } from "../../bench/placement/shapes.ts";
import { type SimResult, simulate } from "../../bench/placement/simulator.ts";
import { MAX_LOAD, sustainableLoad } from "../../bench/placement/sweep.ts";
import { loadTrace, type Trace, traceSchema } from "../../bench/placement/trace.ts";

const TRACES = join(import.meta.dirname, "../../bench/placement/traces");

/** A small trace: 3 nodes, 4 checkpoints (one capped at 1), 120 tasks in bursts. */
function smallTrace(): Trace {
  const checkpoints = ["a", "b", "c", "d"].map((name, i) => ({
    name,
    family: i === 3 ? ("sdxl" as const) : ("sd15" as const),
    inferenceMs: i === 3 ? 5_000 : 2_000,
    loadMs: i === 3 ? 20_000 : 6_000,
    downloadMs: i === 3 ? 70_000 : 30_000,
    concurrencyCap: name === "b" ? 1 : undefined,
    minNodes: 0,
    maxNodes: 0,
    minGpuMemoryMb: i === 3 ? 16_000 : 0,
    gpuClass: null,
  }));
  const arrivals = Array.from({ length: 120 }, (_, i) => ({
    atMs: Math.floor(i / 10) * 7_000 + (i % 10) * 100,
    checkpoint: ["a", "a", "b", "c", "d"][i % 5]!,
    inferenceMs: 1_500 + (i % 7) * 200,
  }));
  return traceSchema.parse({
    name: "small",
    description: "test",
    nodes: [
      { id: "n1", gpuMemoryMb: 24_576, gpuClass: "rtx4090", loaded: "a", cached: ["a"] },
      { id: "n2", gpuMemoryMb: 24_576, gpuClass: "rtx4090", loaded: "c", cached: ["c", "d"] },
      { id: "n3", gpuMemoryMb: 12_288, gpuClass: "t4", loaded: null, cached: [] },
    ],
    checkpoints,
    arrivals,
  });
}

/** Every task ran once, after it arrived, on a node allowed to run it, one at a time per node, and no checkpoint ever had more leases than its cap. */
function expectConsistent(trace: Trace, run: SimResult): void {
  const specs = new Map(trace.checkpoints.map((c) => [c.name, c]));
  const nodes = new Map(trace.nodes.map((n) => [n.id, n]));
  expect(run.tasks).toHaveLength(trace.arrivals.length);
  const byNode = new Map<string, typeof run.tasks>();
  for (const task of run.tasks) {
    expect(task.claimMs).not.toBeNull();
    expect(task.claimMs!).toBeGreaterThanOrEqual(task.arrivalMs);
    expect(task.startMs!).toBeGreaterThanOrEqual(task.claimMs!);
    expect(task.endMs).toBe(task.startMs! + task.inferenceMs);
    expect(task.endMs!).toBeLessThanOrEqual(run.makespanMs);
    const node = nodes.get(task.nodeId!)!;
    const spec = specs.get(task.checkpoint)!;
    expect(node.gpuMemoryMb).toBeGreaterThanOrEqual(spec.minGpuMemoryMb);
    byNode.set(node.id, [...(byNode.get(node.id) ?? []), task]);
  }
  for (const tasks of byNode.values()) {
    tasks.sort((x, y) => x.claimMs! - y.claimMs!);
    for (let i = 1; i < tasks.length; i++) expect(tasks[i]!.claimMs!).toBeGreaterThanOrEqual(tasks[i - 1]!.endMs!);
  }
  // Leases held at once per checkpoint, from claim to end.
  for (const spec of trace.checkpoints) {
    const events = run.tasks
      .filter((t) => t.checkpoint === spec.name)
      .flatMap((t) => [
        { atMs: t.claimMs!, delta: 1 },
        { atMs: t.endMs!, delta: -1 },
      ])
      .sort((x, y) => x.atMs - y.atMs || x.delta - y.delta);
    let held = 0;
    for (const e of events) {
      held += e.delta;
      expect(held).toBeLessThanOrEqual(spec.concurrencyCap ?? Infinity);
    }
  }
}

describe("placement simulator", () => {
  for (const policy of POLICY_NAMES) {
    it(`${policy}: conserves tasks and honours caps, GPU limits and one task per node`, () => {
      const trace = smallTrace();
      const run = simulate(trace, makePolicy(policy, trace));
      expectConsistent(trace, run);
      expect(run.makespanMs).toBeGreaterThanOrEqual(lowerBound(trace).boundMs);
    });
  }

  it("is deterministic", () => {
    const trace = smallTrace();
    const first = simulate(trace, makePolicy("sdgate", trace));
    const second = simulate(trace, makePolicy("sdgate", trace));
    expect(second.tasks.map((t) => [t.nodeId, t.startMs])).toEqual(first.tasks.map((t) => [t.nodeId, t.startMs]));
  });

  it("counts a switch for every change of loaded checkpoint and a download for every file not yet on the node", () => {
    const trace = smallTrace();
    const run = simulate(trace, fifoAnyPolicy());
    expect(run.switches).toBeGreaterThan(0);
    expect(run.downloads).toBeLessThanOrEqual(run.switches);
    // Each node downloads a file at most once (files stay cached).
    expect(run.downloads).toBeLessThanOrEqual(trace.nodes.length * trace.checkpoints.length);
  });

  it("charges a switch to a checkpoint held in the node's RAM cache its own, lower cost; without a RAM cache every switch is from disk", () => {
    // One node alternating between two cached checkpoints: a, b, a, b, ...
    const trace = (ramCacheCheckpoints?: number) =>
      traceSchema.parse({
        name: "ram",
        description: "test",
        nodes: [{ id: "n1", gpuMemoryMb: 24_576, gpuClass: "rtx4090", loaded: "a", cached: ["a", "b"], ramCacheCheckpoints }],
        checkpoints: ["a", "b"].map((name) => ({ name, family: "sd15", inferenceMs: 2_000, loadMs: 8_000, downloadMs: 30_000, ramLoadMs: 1_000 })),
        arrivals: Array.from({ length: 6 }, (_, i) => ({ atMs: i * 60_000, checkpoint: i % 2 === 0 ? "a" : "b" })),
      });
    const disk = simulate(trace(), fifoAnyPolicy());
    expect(disk.switches).toBe(5);
    expect(disk.ramSwitches).toBe(0);
    expect(disk.switchingMs).toBe(5 * 8_000);
    // With a RAM cache the first switch to b is from disk; every later one finds the other checkpoint in RAM.
    const ram = simulate(trace(1), fifoAnyPolicy());
    expect(ram.switches).toBe(5);
    expect(ram.ramSwitches).toBe(4);
    expect(ram.switchingMs).toBe(8_000 + 4 * 1_000);
  });

  it("a file the policy prefetches is on the node's disk after its download time, at no GPU time: the task that needs it later does not download it", () => {
    // One node serving a; b's task comes 2 min later.
    const trace = traceSchema.parse({
      name: "prefetch",
      description: "test",
      nodes: [{ id: "n1", gpuMemoryMb: 24_576, gpuClass: "rtx4090", loaded: "a", cached: ["a"] }],
      checkpoints: ["a", "b"].map((name) => ({ name, family: "sd15", inferenceMs: 2_000, loadMs: 8_000, downloadMs: 30_000 })),
      arrivals: [
        { atMs: 0, checkpoint: "a" },
        { atMs: 120_000, checkpoint: "b" },
      ],
    });
    const plain = simulate(trace, fifoAnyPolicy());
    expect(plain.downloads).toBe(1);
    expect(plain.prefetches).toBe(0);
    const prefetching = simulate(trace, { ...fifoAnyPolicy(), prefetch: (node) => (node.cached.has("b") ? null : "b") });
    expect(prefetching.prefetches).toBe(1);
    expect(prefetching.downloads).toBe(0);
    expect(prefetching.switchingMs).toBe(8_000);
    const b = prefetching.tasks.find((t) => t.checkpoint === "b")!;
    expect(b.startMs! - b.arrivalMs).toBe(8_000);
    // A prefetch never evicts: on a disk with no room for b, nothing is fetched and a stays.
    const full = traceSchema.parse({
      ...trace,
      nodes: [{ ...trace.nodes[0]!, diskBudgetMb: 3_000 }],
      checkpoints: trace.checkpoints.map((c) => ({ ...c, sizeMb: 2_000 })),
    });
    const noRoom = simulate(full, { ...fifoAnyPolicy(), prefetch: (node) => (node.cached.has("b") ? null : "b") });
    expect(noRoom.prefetches).toBe(0);
    expect(noRoom.downloads).toBe(1);
  });

  it("fifo-any starts tasks in arrival order on a single node", () => {
    const trace = traceSchema.parse({
      ...smallTrace(),
      nodes: [smallTrace().nodes[0]!],
      checkpoints: smallTrace().checkpoints.map((c) => ({ ...c, minGpuMemoryMb: 0, concurrencyCap: undefined })),
    });
    const run = simulate(trace, fifoAnyPolicy());
    const order = [...run.tasks].sort((x, y) => x.startMs! - y.startMs!).map((t) => t.id);
    expect(order).toEqual(run.tasks.map((t) => t.id));
  });

  it("every shipped trace loads and every policy finishes it consistently", async () => {
    for (const file of ["uniform.json", "zipf.json", "bursty.json"]) {
      const trace = await loadTrace(join(TRACES, file));
      expect(trace.arrivals.length).toBeGreaterThanOrEqual(1_000);
      for (const policy of POLICY_NAMES) {
        const run = simulate(trace, makePolicy(policy, trace));
        expectConsistent(trace, run);
        const f = figures(trace, run);
        expect(f.efficiency).toBeLessThanOrEqual(1);
        expect(f.efficiency).toBeGreaterThan(0);
      }
    }
  }, 60_000);
});

describe("static assignment", () => {
  it("gives every checkpoint a node when there are enough, and more to the heavier ones", async () => {
    const trace = await loadTrace(join(TRACES, "uniform.json"));
    const owned = staticAssignment(trace);
    const served = new Map<string, number>();
    for (const list of owned.values()) for (const c of list) served.set(c, (served.get(c) ?? 0) + 1);
    expect([...served.keys()].sort()).toEqual(trace.checkpoints.map((c) => c.name).sort());
    expect(owned.size).toBe(trace.nodes.length);
  });

  it("co-hosts checkpoints on nodes when there are more checkpoints than nodes", async () => {
    const trace = await loadTrace(join(TRACES, "zipf.json"));
    const owned = staticAssignment(trace);
    const all = [...owned.values()].flat();
    expect(new Set(all)).toEqual(new Set(trace.checkpoints.map((c) => c.name)));
    expect(owned.size).toBe(trace.nodes.length);
  });
});

describe("metrics", () => {
  it("percentile is nearest-rank", () => {
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50)).toBe(5);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95)).toBe(10);
    expect(percentile([], 95)).toBe(0);
  });

  it("the lower bound counts work, first loads and arrivals", () => {
    const trace = smallTrace();
    const bound = lowerBound(trace);
    const inferenceMs = trace.arrivals.reduce((s, a) => s + a.inferenceMs!, 0);
    // "b" is neither loaded nor cached anywhere: its load and download count; "d" is cached on n2: its load counts.
    expect(bound.workMs).toBeCloseTo((inferenceMs + 6_000 + 30_000 + 20_000) / 3);
    expect(bound.lastTaskMs).toBe(Math.max(...trace.arrivals.map((a) => a.atMs + a.inferenceMs!)));
    expect(bound.boundMs).toBe(Math.max(bound.workMs, bound.arrivalsMs, bound.lastTaskMs));
  });
});

describe("trace schema", () => {
  it("rejects arrivals for an unknown checkpoint and arrivals out of order", () => {
    const base = smallTrace();
    expect(traceSchema.safeParse({ ...base, arrivals: [{ atMs: 0, checkpoint: "nope" }] }).success).toBe(false);
    expect(
      traceSchema.safeParse({
        ...base,
        arrivals: [
          { atMs: 10, checkpoint: "a" },
          { atMs: 5, checkpoint: "a" },
        ],
      }).success,
    ).toBe(false);
  });

  it("rejects a checkpoint no node may serve", () => {
    const base = smallTrace();
    const checkpoints = base.checkpoints.map((c) => (c.name === "d" ? { ...c, gpuClass: "h100" } : c));
    expect(traceSchema.safeParse({ ...base, checkpoints }).success).toBe(false);
  });
});

describe("trace shapes and the load sweep", () => {
  const FIVE_MIN_MS = 5 * 60_000;

  it("draws each shape at the offered load asked for, the same trace for the same seed", () => {
    for (const shape of SHAPES) {
      const trace = generateTrace(shape, { seed: 7, load: 0.6, durationMs: FIVE_MIN_MS });
      const specs = new Map(trace.checkpoints.map((c) => [c.name, c]));
      const workMs = trace.arrivals.reduce((sum, a) => sum + (a.inferenceMs ?? specs.get(a.checkpoint)!.inferenceMs), 0);
      const offered = workMs / (trace.nodes.length * FIVE_MIN_MS);
      expect(offered).toBeGreaterThan(0.6 * 0.75);
      expect(offered).toBeLessThan(0.6 * 1.25);
      expect(generateTrace(shape, { seed: 7, load: 0.6, durationMs: FIVE_MIN_MS })).toEqual(trace);
    }
  });

  it("the heterogeneous fleet runs SDXL on its large nodes only; the cold fleet starts with nothing; RAM caches are declared when asked", () => {
    const hetero = generateTrace("heterogeneous", { seed: 1, load: 0.5, durationMs: FIVE_MIN_MS });
    const run = simulate(hetero, makePolicy("sdgate", hetero));
    const memory = new Map(hetero.nodes.map((n) => [n.id, n.gpuMemoryMb]));
    const family = new Map(hetero.checkpoints.map((c) => [c.name, c.family]));
    for (const t of run.tasks) if (family.get(t.checkpoint) === "sdxl") expect(memory.get(t.nodeId!)).toBeGreaterThanOrEqual(24_576);
    const cold = generateTrace("cold", { seed: 1, load: 0.5, durationMs: FIVE_MIN_MS });
    expect(cold.nodes.every((n) => n.loaded === null && n.cached.length === 0 && n.ramCacheCheckpoints === 0)).toBe(true);
    expect(generateTrace("cold", { seed: 1, load: 0.5, durationMs: FIVE_MIN_MS, ramCacheCheckpoints: 3 }).nodes.every((n) => n.ramCacheCheckpoints === 3)).toBe(
      true,
    );
  });

  it("sustainable load is the highest grid load within the bound", () => {
    const p95At = (load: number) => 1_000 * 2 ** (10 * load);
    expect(sustainableLoad(p95At, 60_000)).toBeCloseTo(0.55);
    expect(sustainableLoad(() => 120_000, 60_000)).toBe(0);
    expect(sustainableLoad(() => 0, 60_000)).toBeCloseTo(MAX_LOAD);
  });
});
