// The scaling policy's decisions (src/fleet/scaling.ts): how many nodes each group should have,
// and which nodes leave.
import { describe, expect, it } from "vitest";
import { decideScaling, type ScalingGroup, type ScalingNode, type ScalingQueue, unservedCheckpoints } from "../../src/fleet/scaling.ts";

const NOW = 10_000_000;

function group(overrides: Partial<ScalingGroup> = {}): ScalingGroup {
  return {
    name: "l4-24gb",
    gpuClass: "L4",
    gpuMemoryMb: 24_576,
    minNodes: 0,
    maxNodes: 0,
    idleMs: 300_000,
    targetWaitMs: 60_000,
    bootMs: 20_000,
    configured: true,
    ...overrides,
  };
}

function node(nodeId: string, overrides: Partial<ScalingNode> = {}): ScalingNode {
  return { nodeId, group: "l4-24gb", state: "idle", idleSinceMs: NOW, loadedCheckpoint: null, cachedCheckpoints: [], ...overrides };
}

function queue(checkpoint: string, overrides: Partial<ScalingQueue> = {}): ScalingQueue {
  return {
    checkpoint,
    waiting: 0,
    running: 0,
    oldestWaitingAgeMs: 0,
    arrivalsPerS: 0,
    inferenceMs: 3_000,
    loadMs: 8_000,
    concurrencyCap: 10,
    maxNodes: 0,
    minGpuMemoryMb: 0,
    gpuClass: null,
    ...overrides,
  };
}

const only = <T>(items: readonly T[]): T => {
  expect(items).toHaveLength(1);
  return items[0]!;
};

describe("desired nodes", () => {
  it("is zero for an idle group that may go to zero", () => {
    const d = only(decideScaling([group()], [], [queue("a")], NOW));
    expect(d).toMatchObject({ desired: 0, current: 0, leave: [] });
  });

  it("never falls below the group's minimum", () => {
    expect(only(decideScaling([group({ minNodes: 2 })], [], [], NOW)).desired).toBe(2);
  });

  it("asks for a node from zero as soon as one task waits", () => {
    const d = only(decideScaling([group()], [], [queue("a", { waiting: 1 })], NOW));
    expect(d.desired).toBe(1);
    expect(d.reasons.join(" ")).toContain("a: 1 waiting");
  });

  it("grows with the backlog so that it clears within the target wait", () => {
    // 100 tasks × 3 s = 300 s of work; target 60 s less a 20 s boot leaves 40 s → 7.5+ nodes.
    const d = only(decideScaling([group()], [], [queue("a", { waiting: 100 })], NOW));
    expect(d.desired).toBe(8);
  });

  it("asks for more when nodes take longer to boot (less of the target wait is left to run the work)", () => {
    const fast = only(decideScaling([group({ bootMs: 5_000 })], [], [queue("a", { waiting: 100 })], NOW)).desired;
    const slow = only(decideScaling([group({ bootMs: 40_000 })], [], [queue("a", { waiting: 100 })], NOW)).desired;
    expect(slow).toBeGreaterThan(fast);
  });

  it("lets arrivals too sparse to come within the idle time go: the fleet reaches zero", () => {
    const idle = [node("n1", { idleSinceMs: NOW - 400_000 })];
    // One arrival every ~7 s, an idle time of 2 s: the node would sit idle longer than that anyway.
    expect(only(decideScaling([group({ idleMs: 2_000 })], idle, [queue("a", { arrivalsPerS: 0.15 })], NOW))).toMatchObject({ desired: 0, leave: ["n1"] });
    // With the default 300 s idle time the same arrivals keep it.
    expect(only(decideScaling([group()], idle, [queue("a", { arrivalsPerS: 0.15 })], NOW)).desired).toBe(1);
  });

  it("keeps enough nodes for the arrival rate even with nothing waiting", () => {
    // 2 tasks/s × 3 s = 6 busy nodes, at 75 % utilisation → 8.
    const ready = Array.from({ length: 10 }, (_, i) => node(`n${i}`));
    expect(only(decideScaling([group()], ready, [queue("a", { arrivalsPerS: 2 })], NOW)).demand).toBe(8);
    // From zero it starts more: the arrivals pile up while the nodes boot.
    expect(only(decideScaling([group()], [], [queue("a", { arrivalsPerS: 2 })], NOW)).desired).toBeGreaterThan(8);
  });

  it("keeps a node for every running task", () => {
    const nodes = [node("n1", { state: "busy", idleSinceMs: null }), node("n2", { state: "busy", idleSinceMs: null })];
    expect(only(decideScaling([group()], nodes, [queue("a", { running: 2 })], NOW)).desired).toBe(2);
  });

  it("asks for no more nodes than there are tasks, nor than the pool's cap or maxNodes", () => {
    const few = queue("a", { waiting: 2, inferenceMs: 600_000 });
    expect(only(decideScaling([group()], [], [few], NOW)).desired).toBe(2);
    expect(only(decideScaling([group()], [], [{ ...few, waiting: 50, concurrencyCap: 3 }], NOW)).desired).toBe(3);
    expect(only(decideScaling([group()], [], [{ ...few, waiting: 50, maxNodes: 4 }], NOW)).desired).toBe(4);
  });

  it("is capped at the group's maxNodes, and says so", () => {
    const d = only(decideScaling([group({ maxNodes: 3 })], [], [queue("a", { waiting: 100 })], NOW));
    expect(d.desired).toBe(3);
    expect(d.reasons.join(" ")).toContain("maxNodes 3");
  });

  it("counts booting nodes as current: they are not asked for twice", () => {
    const d = only(decideScaling([group()], [node("n1", { state: "booting", idleSinceMs: null })], [queue("a", { waiting: 1 })], NOW));
    expect(d).toMatchObject({ desired: 1, current: 1, booting: 1, ready: 0 });
  });

  it("sends work only to groups whose GPU fits the pool", () => {
    const small = group({ name: "t4-16gb", gpuClass: "T4", gpuMemoryMb: 16_384 });
    const big = group({ name: "a100-80gb", gpuClass: "A100", gpuMemoryMb: 81_920 });
    const decisions = decideScaling([small, big], [], [queue("xl", { waiting: 5, minGpuMemoryMb: 40_000 }), queue("any", { waiting: 1 })], NOW);
    const byName = Object.fromEntries(decisions.map((d) => [d.group, d.desired]));
    // "any" fits both and goes to the cheaper (smaller) group; "xl" only fits the big one.
    expect(byName).toEqual({ "t4-16gb": 1, "a100-80gb": 1 });
    expect(unservedCheckpoints([small], [], [queue("xl", { waiting: 5, minGpuMemoryMb: 40_000 })])).toEqual(["xl"]);
    expect(unservedCheckpoints([small], [], [queue("only-a100", { waiting: 1, gpuClass: "A100" })])).toEqual(["only-a100"]);
  });

  it("leaves work to groups somebody scales, not to one only seen once that has no node left", () => {
    const forgotten = group({ name: "old-emulator-23gb", gpuClass: "emulator", gpuMemoryMb: 23_000, configured: false });
    const kept = group({ name: "l4-24gb" });
    const decisions = decideScaling([forgotten, kept], [], [queue("a", { waiting: 1 })], NOW);
    expect(Object.fromEntries(decisions.map((d) => [d.group, d.desired]))).toEqual({ "old-emulator-23gb": 0, "l4-24gb": 1 });
    // With a node of its own it is scaled again.
    const withNode = decideScaling([forgotten, kept], [node("e1", { group: "old-emulator-23gb" })], [queue("a", { waiting: 1 })], NOW);
    expect(Object.fromEntries(withNode.map((d) => [d.group, d.desired]))).toEqual({ "old-emulator-23gb": 1, "l4-24gb": 0 });
  });

  it("keeps a checkpoint's work in the group that already serves it", () => {
    const small = group({ name: "t4-16gb", gpuClass: "T4", gpuMemoryMb: 16_384 });
    const big = group({ name: "a100-80gb", gpuClass: "A100", gpuMemoryMb: 81_920 });
    const nodes = [node("big-1", { group: "a100-80gb", state: "busy", idleSinceMs: null, loadedCheckpoint: "a" })];
    const decisions = decideScaling([small, big], nodes, [queue("a", { waiting: 30, running: 1 })], NOW);
    expect(Object.fromEntries(decisions.map((d) => [d.group, d.desired]))).toEqual({ "t4-16gb": 0, "a100-80gb": 2 });
  });
});

describe("scale in", () => {
  const idleFor = (ms: number) => NOW - ms;

  it("keeps surplus nodes until they have been idle for the group's idle time", () => {
    const nodes = [node("n1", { idleSinceMs: idleFor(200_000) }), node("n2", { idleSinceMs: idleFor(10_000) })];
    const d = only(decideScaling([group({ idleMs: 300_000 })], nodes, [], NOW));
    expect(d).toMatchObject({ desired: 2, leave: [] });
  });

  it("lets idle nodes go, down to zero, once idle long enough", () => {
    const nodes = [node("n1", { idleSinceMs: idleFor(400_000) }), node("n2", { idleSinceMs: idleFor(301_000) })];
    const d = only(decideScaling([group({ idleMs: 300_000 })], nodes, [], NOW));
    expect(d.desired).toBe(0);
    expect([...d.leave].sort()).toEqual(["n1", "n2"]);
  });

  it("never picks a busy or booting node, even past the idle time", () => {
    const nodes = [
      node("busy", { state: "busy", idleSinceMs: null }),
      node("boot", { state: "booting", idleSinceMs: null }),
      node("idle", { idleSinceMs: idleFor(400_000) }),
    ];
    const d = only(decideScaling([group()], nodes, [queue("a", { running: 1 })], NOW));
    expect(d.leave).toEqual(["idle"]);
    expect(d.desired).toBe(2);
  });

  it("keeps the minimum", () => {
    const nodes = ["n1", "n2", "n3"].map((id) => node(id, { idleSinceMs: idleFor(400_000) }));
    const d = only(decideScaling([group({ minNodes: 2 })], nodes, [], NOW));
    expect(d.desired).toBe(2);
    expect(d.leave).toHaveLength(1);
  });

  it("lets the node whose cache is least valuable go first", () => {
    const nodes = [
      // The only node with "popular" on disk, which has work arriving.
      node("keeps-popular", { idleSinceMs: idleFor(900_000), cachedCheckpoints: ["popular"] }),
      // What it holds, another node holds too.
      node("duplicate", { idleSinceMs: idleFor(400_000), cachedCheckpoints: ["rare"] }),
      node("has-rare", { idleSinceMs: idleFor(400_000), cachedCheckpoints: ["rare"] }),
    ];
    const d = only(decideScaling([group({ minNodes: 2 })], nodes, [queue("popular", { arrivalsPerS: 0.01, inferenceMs: 1 }), queue("rare")], NOW));
    expect(d.leave).toHaveLength(1);
    expect(d.leave[0]).not.toBe("keeps-popular");
  });

  it("shrinks a group whose nodes all keep getting some work once it has had too many for the idle time, busy nodes after their task", () => {
    const g = group({ idleMs: 120_000 });
    // Six nodes that each ran a task lately; the work needs two.
    const nodes = ["n1", "n2", "n3", "n4"].map((id) => node(id, { state: "busy", idleSinceMs: null }));
    nodes.push(node("idle-1", { idleSinceMs: NOW - 5_000 }), node("idle-2", { idleSinceMs: NOW - 5_000 }));
    const queues = [queue("a", { running: 4, arrivalsPerS: 0.3 })];
    const first = only(decideScaling([g], nodes, queues, NOW));
    expect(first).toMatchObject({ desired: 6, leave: [] });
    expect(first.surplus).toEqual({ sinceMs: NOW, peakWanted: 4 });
    // Not yet the idle time: still all kept.
    const state = new Map([[g.name, first.surplus!]]);
    expect(only(decideScaling([g], nodes, queues, NOW + 60_000, state)).leave).toEqual([]);
    // Past it: down to the most it wanted meanwhile (4), the idle nodes first.
    const later = only(decideScaling([g], nodes, queues, NOW + 120_000, state));
    expect([...later.leave].sort()).toEqual(["idle-1", "idle-2"]);
    expect(later.desired).toBe(4);
    // Wanting two all along, busy nodes go too (they get no more work and finish theirs).
    const quietest = only(decideScaling([g], nodes, [queue("a", { running: 2 })], NOW + 120_000, new Map([[g.name, { sinceMs: NOW, peakWanted: 2 }]])));
    expect(quietest.leave).toHaveLength(4);
    expect(quietest.leave.slice(0, 2).sort()).toEqual(["idle-1", "idle-2"]);
    expect(quietest.desired).toBe(2);
  });

  it("does not count draining nodes, nor ask for their replacement while demand is met", () => {
    const nodes = [node("leaving", { state: "draining", idleSinceMs: null }), node("n2", { state: "busy", idleSinceMs: null })];
    const d = only(decideScaling([group()], nodes, [queue("a", { running: 1 })], NOW));
    expect(d).toMatchObject({ desired: 1, current: 1, draining: 1, leave: [] });
  });
});
