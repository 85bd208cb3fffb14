// The placement policy's decisions (src/fleet/placement.ts): what an idle node is told to serve.
import { describe, expect, it } from "vitest";
import {
  BATCH_WAIT_MS,
  BURST_DRAIN_MS,
  choosePlacement,
  FLOOD_BACKLOG_MS,
  HOLDER_GRACE_MS,
  JOIN_DRAIN_MS,
  KEPT_DEMAND_SHARE,
  KEPT_LEAVE_MS,
  LEAVE_AGE_MS,
  LONE_TASK_BOUND_MS,
  MIN_RESIDENCY_MS,
  type PlacementNode,
  type PlacementQueue,
  PREFETCH_SPARE_COPIES,
  prefetchFor,
  ramLoadMsFor,
  SPARE_IDLE_MS,
  switchCostMs,
} from "../../src/fleet/placement.ts";

const NOW = 10_000_000;
const LONG_AGO = NOW - 10 * MIN_RESIDENCY_MS;

function node(overrides: Partial<PlacementNode> = {}): PlacementNode {
  return {
    nodeId: "n1",
    loadedCheckpoint: null,
    cachedCheckpoints: [],
    gpuMemoryMb: 24_576,
    gpuClass: "rtx4090",
    servingSinceMs: null,
    ...overrides,
  };
}

function queue(checkpoint: string, overrides: Partial<PlacementQueue> = {}): PlacementQueue {
  return {
    checkpoint,
    waiting: 0,
    oldestWaitingAgeMs: 0,
    running: 0,
    concurrencyCap: Infinity,
    nodesServing: 0,
    minNodes: 0,
    maxNodes: 0,
    minGpuMemoryMb: 0,
    gpuClass: null,
    loadMs: 6_000,
    downloadMs: 30_000,
    inferenceMs: 2_000,
    ...overrides,
  };
}

/** A node that has served `checkpoint` for a long time (past the anti-thrash residency). */
function servingNode(checkpoint: string, overrides: Partial<PlacementNode> = {}): PlacementNode {
  return node({ loadedCheckpoint: checkpoint, cachedCheckpoints: [checkpoint], servingSinceMs: LONG_AGO, ...overrides });
}

describe("choosePlacement", () => {
  it("answers null when no checkpoint has work", () => {
    expect(choosePlacement(node(), [], NOW)).toBeNull();
    expect(choosePlacement(servingNode("a"), [queue("a"), queue("b")], NOW)).toBeNull();
  });

  it("answers null when the only work is on checkpoints the node may not serve", () => {
    const queues = [
      queue("big", { waiting: 50, oldestWaitingAgeMs: 60_000, minGpuMemoryMb: 40_000 }),
      queue("a100-only", { waiting: 50, oldestWaitingAgeMs: 60_000, gpuClass: "a100" }),
      queue("capped", { waiting: 50, oldestWaitingAgeMs: 60_000, running: 2, concurrencyCap: 2 }),
      queue("full", { waiting: 50, oldestWaitingAgeMs: 60_000, nodesServing: 3, maxNodes: 3 }),
    ];
    expect(choosePlacement(node(), queues, NOW)).toBeNull();
  });

  it("keeps serving the loaded checkpoint while it has work, even when another has more", () => {
    const queues = [
      queue("a", { waiting: 3, oldestWaitingAgeMs: 5_000, nodesServing: 0 }),
      queue("b", { waiting: 40, oldestWaitingAgeMs: 60_000, nodesServing: 1 }),
    ];
    expect(choosePlacement(servingNode("a"), queues, NOW)).toEqual({ checkpoint: "a", switching: false, reason: "affinity" });
  });

  it("an idle node with nothing loaded takes the checkpoint whose backlog hurts most", () => {
    const queues = [queue("light", { waiting: 2, oldestWaitingAgeMs: 4_000 }), queue("heavy", { waiting: 30, oldestWaitingAgeMs: 20_000 })];
    expect(choosePlacement(node(), queues, NOW)).toEqual({ checkpoint: "heavy", switching: true, reason: "backlog" });
  });

  it("leaves its work for a checkpoint nobody serves that has waited far longer", () => {
    const queues = [
      queue("a", { waiting: 5, oldestWaitingAgeMs: 10_000, nodesServing: 2 }),
      queue("rare", { waiting: 2, oldestWaitingAgeMs: LEAVE_AGE_MS + 20_000, nodesServing: 0 }),
    ];
    const decision = choosePlacement(servingNode("a", { cachedCheckpoints: ["a", "rare"] }), queues, NOW);
    expect(decision).toEqual({ checkpoint: "rare", switching: true, reason: "starvation" });
  });

  it("proportional capacity: leaves work others keep serving for a backlog that needs more nodes, and pays for the switch", () => {
    const queues = [
      // Three other nodes keep serving "a"; "b" has one node and a deep backlog.
      queue("a", { waiting: 4, oldestWaitingAgeMs: 8_000, nodesServing: 3 }),
      queue("b", { waiting: 400, oldestWaitingAgeMs: 20_000, nodesServing: 1 }),
    ];
    const decision = choosePlacement(servingNode("a", { cachedCheckpoints: ["a", "b"] }), queues, NOW);
    expect(decision).toEqual({ checkpoint: "b", switching: true, reason: "backlog" });
    // The popular checkpoint is not starved to even out ages: the node does not leave a deep
    // backlog of its own for one whose tasks are merely older.
    const older = [
      queue("a", { waiting: 60, oldestWaitingAgeMs: 8_000, nodesServing: 1 }),
      queue("b", { waiting: 10, oldestWaitingAgeMs: 40_000, nodesServing: 1 }),
    ];
    expect(choosePlacement(servingNode("a", { cachedCheckpoints: ["a", "b"] }), older, NOW)?.checkpoint).toBe("a");
  });

  it("does not leave its work for a small imbalance", () => {
    const queues = [
      queue("a", { waiting: 10, oldestWaitingAgeMs: 30_000, nodesServing: 1 }),
      queue("b", { waiting: 30, oldestWaitingAgeMs: 40_000, nodesServing: 1 }),
    ];
    expect(choosePlacement(servingNode("a", { cachedCheckpoints: ["a", "b"] }), queues, NOW)?.checkpoint).toBe("a");
  });

  it("an idle node joins a busy checkpoint its nodes cannot clear soon, not one they will", () => {
    const deep = [queue("a", { waiting: 40, oldestWaitingAgeMs: 5_000, nodesServing: 2 })];
    expect(choosePlacement(node({ cachedCheckpoints: ["a"] }), deep, NOW)?.checkpoint).toBe("a");
    const shallow = [queue("a", { waiting: 2, oldestWaitingAgeMs: 1_000, nodesServing: 2 })];
    expect(choosePlacement(servingNode("b", { cachedCheckpoints: ["a", "b"] }), shallow, NOW)).toBeNull();
  });

  it("batches rare work: a busy fleet's idle node does not jump to a fresh single task, but goes once it is due", () => {
    // Just finished its task (not yet spare), loaded with a checkpoint that may get work again.
    const justIdle = servingNode("popular", { cachedCheckpoints: ["popular", "rare"], idleSinceMs: NOW });
    const fresh = [queue("popular"), queue("rare", { waiting: 1, oldestWaitingAgeMs: 2_000 })];
    expect(choosePlacement(justIdle, fresh, NOW)).toBeNull();
    const due = [queue("popular"), queue("rare", { waiting: 1, oldestWaitingAgeMs: BATCH_WAIT_MS })];
    expect(choosePlacement(justIdle, due, NOW)?.checkpoint).toBe("rare");
    // A batch worth its switch goes at once.
    const batch = [queue("popular"), queue("rare", { waiting: 8, oldestWaitingAgeMs: 2_000 })];
    expect(choosePlacement(justIdle, batch, NOW)?.checkpoint).toBe("rare");
    // A node idle for a while is spare: it takes the single task at once.
    expect(choosePlacement({ ...justIdle, idleSinceMs: NOW - SPARE_IDLE_MS }, fresh, NOW)?.checkpoint).toBe("rare");
  });

  it("bounded wait: a lone rare task gets a node within LEAVE_AGE_MS even when every node is busy alone on its checkpoint", () => {
    const busy = servingNode("hot", { cachedCheckpoints: ["hot", "rare"] });
    const queuesAt = (ageMs: number) => [
      queue("hot", { waiting: 100, oldestWaitingAgeMs: 5_000, nodesServing: 0 }),
      queue("rare", { waiting: 1, oldestWaitingAgeMs: ageMs, nodesServing: 0 }),
    ];
    expect(choosePlacement(busy, queuesAt(20_000), NOW)?.checkpoint).toBe("hot");
    expect(choosePlacement(busy, queuesAt(5_000 + LEAVE_AGE_MS), NOW)).toEqual({ checkpoint: "rare", switching: true, reason: "starvation" });
    // A node whose checkpoint others keep serving goes as soon as the rare work is due.
    const covered = [
      queue("hot", { waiting: 2, oldestWaitingAgeMs: 1_000, nodesServing: 3 }),
      queue("rare", { waiting: 1, oldestWaitingAgeMs: BATCH_WAIT_MS }),
    ];
    expect(choosePlacement(busy, covered, NOW)?.checkpoint).toBe("rare");
  });

  it("the bound is relative: a fleet backlogged everywhere (short of a flood) does not leave its work for older work", () => {
    const busy = servingNode("hot", { cachedCheckpoints: ["hot", "rare"] });
    const queues = [
      queue("hot", { waiting: 100, oldestWaitingAgeMs: 500_000, nodesServing: 0 }),
      queue("rare", { waiting: 1, oldestWaitingAgeMs: 520_000, nodesServing: 0 }),
    ];
    expect(choosePlacement(busy, queues, NOW)?.checkpoint).toBe("hot");
  });

  it("a flood of work on a node's checkpoint holds it from a lone task for LONE_TASK_BOUND_MS at most, however old the flood is (issue 14)", () => {
    const busy = servingNode("flooded", { cachedCheckpoints: ["flooded", "lone"] });
    const floodTasks = FLOOD_BACKLOG_MS / 2_000; // inferenceMs 2 s: FLOOD_BACKLOG_MS of work for the one node on it
    const queuesAt = (waiting: number, loneAgeMs: number, loneWaiting = 1) => [
      queue("flooded", { waiting, oldestWaitingAgeMs: 900_000, nodesServing: 0 }),
      queue("lone", { waiting: loneWaiting, oldestWaitingAgeMs: loneAgeMs, nodesServing: 0 }),
    ];
    expect(choosePlacement(busy, queuesAt(floodTasks, LONE_TASK_BOUND_MS - 1_000), NOW)?.checkpoint).toBe("flooded");
    expect(choosePlacement(busy, queuesAt(floodTasks, LONE_TASK_BOUND_MS), NOW)).toEqual({ checkpoint: "lone", switching: true, reason: "starvation" });
    // Work that gathers (more than one task) is batched by the other rules, which keep an overloaded fleet from thrashing.
    expect(choosePlacement(busy, queuesAt(floodTasks, LONE_TASK_BOUND_MS, 2), NOW)?.checkpoint).toBe("flooded");
    // Short of a flood, the bound stays relative to the node's own oldest task.
    expect(choosePlacement(busy, queuesAt(floodTasks - 1, LONE_TASK_BOUND_MS), NOW)?.checkpoint).toBe("flooded");
    // Within its residency a node does not leave for it.
    const justMoved = servingNode("flooded", { cachedCheckpoints: ["flooded", "lone"], servingSinceMs: NOW - 1_000 });
    expect(choosePlacement(justMoved, queuesAt(floodTasks, LONE_TASK_BOUND_MS), NOW)?.checkpoint).toBe("flooded");
  });

  it("keeps a node on a checkpoint whose arrivals keep it busy: rare work waits KEPT_LEAVE_MS for it, not one switch each way", () => {
    const idle = servingNode("pop", { idleSinceMs: NOW - 10 * SPARE_IDLE_MS });
    const pop = (o: Partial<PlacementQueue> = {}) => queue("pop", { arrivalsPerS: 0.5, inferenceMs: 2_000, ...o });
    const rare = (oldestWaitingAgeMs: number) => queue("rare", { waiting: 1, oldestWaitingAgeMs, downloadMs: 0 });
    // Without arrivals on its checkpoint an idle node is spare and takes rare work at once ...
    expect(choosePlacement(idle, [pop({ arrivalsPerS: 0 }), rare(0)], NOW)?.checkpoint).toBe("rare");
    // ... with a task a second due there, it stays, even for rare work due for other nodes ...
    expect(choosePlacement(idle, [pop(), rare(0)], NOW)).toBeNull();
    expect(choosePlacement(idle, [pop(), rare(BATCH_WAIT_MS)], NOW)).toBeNull();
    // ... until that has waited KEPT_LEAVE_MS.
    expect(choosePlacement(idle, [pop(), rare(KEPT_LEAVE_MS)], NOW)?.checkpoint).toBe("rare");
    // A second node on it is not kept when the arrivals keep one node busy: it goes.
    expect(choosePlacement(idle, [pop({ nodesServing: 1 }), rare(0)], NOW)?.checkpoint).toBe("rare");
    // Arrivals that keep it busy KEPT_DEMAND_SHARE of the time are enough.
    expect(choosePlacement(idle, [pop({ arrivalsPerS: (KEPT_DEMAND_SHARE * 1000) / 2_000 }), rare(0)], NOW)).toBeNull();
  });

  it("keeps large-memory nodes for work only they can run", () => {
    const sd15 = (o: Partial<PlacementQueue> = {}) => queue("sd15", { waiting: 120, oldestWaitingAgeMs: 20_000, nodesServing: 6, eligibleNodes: 12, ...o });
    const sdxl = (o: Partial<PlacementQueue> = {}) =>
      queue("sdxl", { waiting: 1, oldestWaitingAgeMs: 5_000, minGpuMemoryMb: 16_384, loadMs: 20_000, inferenceMs: 5_000, eligibleNodes: 4, ...o });
    const big = node({ loadedCheckpoint: null, cachedCheckpoints: ["sd15", "sdxl"] });
    // An idle large node takes the SDXL task though SD1.5 work is older and deeper.
    expect(choosePlacement(big, [sd15(), sdxl()], NOW)?.checkpoint).toBe("sdxl");
    // A small node may not, and takes SD1.5.
    expect(choosePlacement({ ...big, gpuMemoryMb: 12_288 }, [sd15(), sdxl()], NOW)?.checkpoint).toBe("sd15");
    // A large node busy on SD1.5 leaves it for SDXL work that is due.
    const onSd15 = servingNode("sd15", { cachedCheckpoints: ["sd15", "sdxl"] });
    expect(choosePlacement(onSd15, [sd15(), sdxl({ oldestWaitingAgeMs: BATCH_WAIT_MS })], NOW)?.checkpoint).toBe("sdxl");
    // ... even one that has just switched to SD1.5: its residency does not hold SDXL work back.
    const justOnSd15 = { ...onSd15, servingSinceMs: NOW - MIN_RESIDENCY_MS / 2 };
    expect(choosePlacement(justOnSd15, [sd15(), sdxl({ oldestWaitingAgeMs: BATCH_WAIT_MS })], NOW)?.checkpoint).toBe("sdxl");
    expect(choosePlacement(justOnSd15, [sd15(), sdxl({ oldestWaitingAgeMs: 0 })], NOW)?.checkpoint).toBe("sd15");
    // An idle large node on SDXL stays free for it rather than join SD1.5 work, until that work has waited the lone-task bound.
    const onSdxl = servingNode("sdxl", { cachedCheckpoints: ["sd15", "sdxl"] });
    expect(choosePlacement(onSdxl, [sd15(), sdxl({ waiting: 0, oldestWaitingAgeMs: 0 })], NOW)).toBeNull();
    expect(choosePlacement(onSdxl, [sd15({ oldestWaitingAgeMs: LEAVE_AGE_MS }), sdxl({ waiting: 0, oldestWaitingAgeMs: 0 })], NOW)?.checkpoint).toBe("sd15");
    // When every node may run both, nothing is kept.
    expect(choosePlacement(onSd15, [sd15({ eligibleNodes: 8 }), sdxl({ eligibleNodes: 8, oldestWaitingAgeMs: BATCH_WAIT_MS })], NOW)?.checkpoint).toBe("sd15");
  });

  it("an expensive checkpoint is not pushed back by its own load time", () => {
    const queues = [
      queue("cheap", { waiting: 3, oldestWaitingAgeMs: 40_000, loadMs: 5_000 }),
      queue("costly", { waiting: 3, oldestWaitingAgeMs: 50_000, loadMs: 30_000, inferenceMs: 5_000 }),
    ];
    expect(choosePlacement(node({ cachedCheckpoints: ["cheap", "costly"] }), queues, NOW)?.checkpoint).toBe("costly");
  });

  it("a switch from RAM counts as cheaper than one from disk", () => {
    const n = node({ cachedCheckpoints: ["a"], ramCheckpoints: ["a"] });
    const q = queue("a", { loadMs: 8_000 });
    expect(switchCostMs(n, q)).toBe(ramLoadMsFor(8_000));
    expect(switchCostMs(n, { ...q, ramLoadMs: 1_000 })).toBe(1_000);
    expect(switchCostMs(node({ cachedCheckpoints: ["a"] }), q)).toBe(8_000);
    expect(ramLoadMsFor(8_000)).toBeLessThan(8_000);
  });

  it("anti-thrash: a node that just switched stays while its checkpoint has work", () => {
    const queues = [
      queue("a", { waiting: 4, oldestWaitingAgeMs: 8_000, nodesServing: 3 }),
      queue("b", { waiting: 400, oldestWaitingAgeMs: LEAVE_AGE_MS * 2, nodesServing: 0 }),
    ];
    const justSwitched = servingNode("a", { cachedCheckpoints: ["a", "b"], servingSinceMs: NOW - MIN_RESIDENCY_MS / 2 });
    expect(choosePlacement(justSwitched, queues, NOW)).toEqual({ checkpoint: "a", switching: false, reason: "affinity" });
    // Once its queue is empty it may go at once.
    const drained = [queue("a", { nodesServing: 3 }), queues[1]!];
    expect(choosePlacement(justSwitched, drained, NOW)?.checkpoint).toBe("b");
  });

  it("no bouncing back: after moving to a backlog, the node does not return to where it came from", () => {
    const before = [
      queue("a", { waiting: 4, oldestWaitingAgeMs: 8_000, nodesServing: 3 }),
      queue("b", { waiting: 400, oldestWaitingAgeMs: 20_000, nodesServing: 1 }),
    ];
    const mover = servingNode("a", { cachedCheckpoints: ["a", "b"] });
    expect(choosePlacement(mover, before, NOW)?.checkpoint).toBe("b");
    // After, even past the residency and with "a" a little busier, it stays on "b".
    const after = [
      queue("a", { waiting: 20, oldestWaitingAgeMs: 40_000, nodesServing: 3 }),
      queue("b", { waiting: 380, oldestWaitingAgeMs: 20_000, nodesServing: 1 }),
    ];
    const moved = servingNode("b", { cachedCheckpoints: ["a", "b"], servingSinceMs: NOW - 2 * MIN_RESIDENCY_MS });
    expect(choosePlacement(moved, after, NOW + 2 * MIN_RESIDENCY_MS)).toEqual({ checkpoint: "b", switching: false, reason: "affinity" });
  });

  it("prefers a checkpoint whose file is on its disk over an equal one it must download", () => {
    const queues = [queue("far", { waiting: 10, oldestWaitingAgeMs: 20_000 }), queue("near", { waiting: 10, oldestWaitingAgeMs: 20_000 })];
    const decision = choosePlacement(node({ cachedCheckpoints: ["near"] }), queues, NOW);
    expect(decision?.checkpoint).toBe("near");
  });

  it("leaves a download to a node that has the file, within a grace, then goes", () => {
    const waitingFor = (ageMs: number) => [queue("x", { waiting: 1, oldestWaitingAgeMs: ageMs, downloadMs: 30_000, cachedOnNodes: 2 })];
    expect(choosePlacement(node(), waitingFor(BATCH_WAIT_MS), NOW)).toBeNull();
    // The node that has the file goes.
    expect(choosePlacement(node({ cachedCheckpoints: ["x"] }), waitingFor(BATCH_WAIT_MS), NOW)?.checkpoint).toBe("x");
    expect(choosePlacement(node(), waitingFor(30_000 + HOLDER_GRACE_MS), NOW)?.checkpoint).toBe("x");
    // Nobody has the file: someone must download it, so the node goes.
    const nowhere = [queue("x", { waiting: 1, oldestWaitingAgeMs: BATCH_WAIT_MS, cachedOnNodes: 0 })];
    expect(choosePlacement(node(), nowhere, NOW)?.checkpoint).toBe("x");
    // The holders already serve it and need help: no reason to wait for them.
    const helped = [queue("x", { waiting: 60, oldestWaitingAgeMs: 10_000, nodesServing: 2, cachedOnNodes: 2 })];
    expect(choosePlacement(node(), helped, NOW)?.checkpoint).toBe("x");
  });

  it("a node leaving its work never downloads a file another node has: that node goes", () => {
    const queues = [
      queue("a", { waiting: 40, oldestWaitingAgeMs: 8_000 }),
      queue("b", { waiting: 3, oldestWaitingAgeMs: 10 * LEAVE_AGE_MS, nodesServing: 0, cachedOnNodes: 1 }),
    ];
    expect(choosePlacement(servingNode("a"), queues, NOW)?.checkpoint).toBe("a");
    expect(choosePlacement(servingNode("a", { cachedCheckpoints: ["a", "b"] }), queues, NOW)?.checkpoint).toBe("b");
  });

  it("does not join a checkpoint whose nodes will have finished its backlog before it is ready", () => {
    // Two nodes serve 3 tasks of 2 s; a 6 s load would arrive after they are done.
    const queues = [queue("a", { waiting: 3, oldestWaitingAgeMs: 3_000, nodesServing: 2 })];
    expect(choosePlacement(node(), queues, NOW)).toBeNull();
    // A deep backlog is worth joining.
    const deep = [queue("a", { waiting: 300, oldestWaitingAgeMs: 30_000, nodesServing: 2 })];
    expect(choosePlacement(node(), deep, NOW)?.checkpoint).toBe("a");
  });

  it("joins a backlog whose arrivals need more nodes than serve it at JOIN_DRAIN_MS; a burst its nodes keep up with only at BURST_DRAIN_MS", () => {
    // Two nodes serve it; 10 tasks of 2 s is 10 s for them to drain.
    const backlog = (arrivalsPerS: number, waiting = 10) => [queue("a", { waiting, oldestWaitingAgeMs: 5_000, nodesServing: 2, arrivalsPerS })];
    // Arrivals keep 3 nodes busy: one more is needed.
    expect(choosePlacement(node(), backlog(1.5), NOW)?.checkpoint).toBe("a");
    // Arrivals keep 1 node busy: the two drain the burst themselves ...
    expect(choosePlacement(node(), backlog(0.5), NOW)).toBeNull();
    // ... unless it takes them BURST_DRAIN_MS.
    expect(choosePlacement(node(), backlog(0.5, (2 * BURST_DRAIN_MS) / 2_000), NOW)?.checkpoint).toBe("a");
    expect(JOIN_DRAIN_MS).toBeLessThan(BURST_DRAIN_MS);
  });

  describe("concurrency cap", () => {
    it("does not claim on its own checkpoint at the cap, and may serve another", () => {
      const queues = [
        queue("a", { waiting: 10, oldestWaitingAgeMs: 5_000, running: 4, concurrencyCap: 4, nodesServing: 4 }),
        queue("b", { waiting: 10, oldestWaitingAgeMs: 5_000 }),
      ];
      expect(choosePlacement(servingNode("a", { cachedCheckpoints: ["a", "b"] }), queues, NOW)?.checkpoint).toBe("b");
      expect(choosePlacement(servingNode("a"), [queues[0]!], NOW)).toBeNull();
    });

    it("does not join a pool whose nodes already fill its cap", () => {
      const queues = [queue("a", { waiting: 100, oldestWaitingAgeMs: 60_000, running: 1, concurrencyCap: 2, nodesServing: 2 })];
      expect(choosePlacement(node({ cachedCheckpoints: ["a"] }), queues, NOW)).toBeNull();
    });

    it("never picks a checkpoint at its cap, whatever the state (seeded fuzz)", () => {
      let seed = 42;
      const random = () => {
        seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
        return seed / 2 ** 31;
      };
      const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
      const names = ["a", "b", "c", "d", "e"];
      for (let i = 0; i < 2_000; i++) {
        const queues = names.map((name) => {
          const cap = pick([1, 2, 4, Infinity]);
          return queue(name, {
            waiting: pick([0, 0, 1, 5, 50, 500]),
            oldestWaitingAgeMs: Math.floor(random() * 4 * LEAVE_AGE_MS),
            running: cap === Infinity ? Math.floor(random() * 5) : Math.floor(random() * (cap + 1)),
            concurrencyCap: cap,
            nodesServing: Math.floor(random() * 4),
            minNodes: pick([0, 0, 0, 1, 2]),
            maxNodes: pick([0, 0, 1, 2]),
            minGpuMemoryMb: pick([0, 0, 16_000, 40_000]),
            gpuClass: pick([null, null, "rtx4090", "a100"]),
            cachedOnNodes: Math.floor(random() * 3),
          });
        });
        const self = node({
          loadedCheckpoint: pick([null, ...names]),
          cachedCheckpoints: names.filter(() => random() < 0.5),
          gpuClass: pick(["rtx4090", "l4"]),
          servingSinceMs: pick([null, NOW - 1_000, LONG_AGO]),
        });
        const decision = choosePlacement(self, queues, NOW);
        if (!decision) continue;
        const q = queues.find((x) => x.checkpoint === decision.checkpoint)!;
        expect(decision.switching).toBe(decision.checkpoint !== self.loadedCheckpoint);
        expect(q.running).toBeLessThan(q.concurrencyCap);
        expect(q.waiting).toBeGreaterThan(0);
        expect(self.gpuMemoryMb).toBeGreaterThanOrEqual(q.minGpuMemoryMb);
        if (q.gpuClass !== null) expect(self.gpuClass).toBe(q.gpuClass);
        if (decision.switching) {
          expect(q.nodesServing).toBeLessThan(q.concurrencyCap);
          if (q.maxNodes > 0) expect(q.nodesServing).toBeLessThan(q.maxNodes);
        }
      }
    });
  });

  describe("GPU constraints", () => {
    it("skips a checkpoint that needs more GPU memory than the node has", () => {
      const queues = [
        queue("xl", { waiting: 50, oldestWaitingAgeMs: 60_000, minGpuMemoryMb: 16_000 }),
        queue("sd15", { waiting: 2, oldestWaitingAgeMs: 1_000 }),
      ];
      expect(choosePlacement(node({ gpuMemoryMb: 12_288 }), queues, NOW)?.checkpoint).toBe("sd15");
      expect(choosePlacement(node({ gpuMemoryMb: 24_576 }), queues, NOW)?.checkpoint).toBe("xl");
    });

    it("skips a checkpoint pinned to another GPU class", () => {
      const queues = [queue("pinned", { waiting: 50, oldestWaitingAgeMs: 60_000, gpuClass: "a100" }), queue("any", { waiting: 2, oldestWaitingAgeMs: 1_000 })];
      expect(choosePlacement(node({ gpuClass: "rtx4090" }), queues, NOW)?.checkpoint).toBe("any");
      expect(choosePlacement(node({ gpuClass: "a100" }), queues, NOW)?.checkpoint).toBe("pinned");
    });

    it("does not keep serving a loaded checkpoint the node no longer qualifies for", () => {
      const queues = [queue("a", { waiting: 5, oldestWaitingAgeMs: 1_000, gpuClass: "a100" })];
      expect(choosePlacement(servingNode("a"), queues, NOW)).toBeNull();
    });
  });

  describe("pool node counts", () => {
    it("does not join a pool that has maxNodes nodes", () => {
      const queues = [queue("a", { waiting: 500, oldestWaitingAgeMs: 60_000, nodesServing: 2, maxNodes: 2 })];
      expect(choosePlacement(node({ cachedCheckpoints: ["a"] }), queues, NOW)).toBeNull();
      const room = [queue("a", { waiting: 500, oldestWaitingAgeMs: 60_000, nodesServing: 1, maxNodes: 2 })];
      expect(choosePlacement(node({ cachedCheckpoints: ["a"] }), room, NOW)?.checkpoint).toBe("a");
    });

    it("sends an idle node first to a pool below its minNodes", () => {
      const queues = [
        queue("deep", { waiting: 200, oldestWaitingAgeMs: 120_000, nodesServing: 1 }),
        queue("reserved", { waiting: 1, oldestWaitingAgeMs: 1_000, nodesServing: 0, minNodes: 1 }),
      ];
      expect(choosePlacement(node({ cachedCheckpoints: ["deep", "reserved"] }), queues, NOW)).toEqual({
        checkpoint: "reserved",
        switching: true,
        reason: "min-nodes",
      });
    });

    it("a node its pool needs for minNodes stays on it, idle, rather than leave", () => {
      const queues = [
        queue("reserved", { waiting: 0, nodesServing: 1, minNodes: 2 }),
        queue("deep", { waiting: 500, oldestWaitingAgeMs: LEAVE_AGE_MS * 2, nodesServing: 0 }),
      ];
      expect(choosePlacement(servingNode("reserved", { cachedCheckpoints: ["reserved", "deep"] }), queues, NOW)).toBeNull();
      // With enough nodes on it, the same node may go.
      const covered = [{ ...queues[0]!, nodesServing: 2 }, queues[1]!];
      expect(choosePlacement(servingNode("reserved", { cachedCheckpoints: ["reserved", "deep"] }), covered, NOW)?.checkpoint).toBe("deep");
    });
  });
});

describe("checkpoints that failed on the node", () => {
  it("are never offered to it, not even the one it has loaded, while other work is", () => {
    const refused = servingNode("a", { refusedCheckpoints: ["a"] });
    const queues = [queue("a", { waiting: 50, oldestWaitingAgeMs: 60_000 }), queue("b", { waiting: 1, oldestWaitingAgeMs: 1_000 })];
    expect(choosePlacement(refused, queues, NOW)?.checkpoint).toBe("b");
    expect(choosePlacement(refused, [queue("a", { waiting: 50, oldestWaitingAgeMs: 60_000 })], NOW)).toBeNull();
    expect(choosePlacement(servingNode("a"), queues, NOW)?.checkpoint).toBe("a");
  });
});

describe("prefetchFor: files a node fetches in the background", () => {
  // A 24 GB node in a fleet where 4 of 12 nodes may run SDXL and all 12 may run SD1.5.
  const big = (overrides: Partial<PlacementNode> = {}) => servingNode("sd15", { gpuMemoryMb: 24_576, ...overrides });
  const sd15 = queue("sd15", { waiting: 5, eligibleNodes: 12, arrivalsPerS: 2 });
  const sdxl = (overrides: Partial<PlacementQueue> = {}) =>
    queue("sdxl", { minGpuMemoryMb: 16_384, eligibleNodes: 4, inferenceMs: 5_000, arrivalsPerS: 0.1, cachedOnNodes: 0, ...overrides });

  it("names work that has demand and is on too few nodes, work only nodes like this one may run first", () => {
    expect(prefetchFor(big(), [sd15, sdxl()])).toBe("sdxl");
    expect(prefetchFor(big(), [sd15, queue("sd15-c", { eligibleNodes: 12, arrivalsPerS: 1, cachedOnNodes: 0 }), sdxl()])).toBe("sdxl");
    // Work every node may run, once the scarce work's file is here (sd15 is loaded on it: another SD1.5 checkpoint).
    const other = queue("sd15-b", { eligibleNodes: 12, arrivalsPerS: 0.01, cachedOnNodes: 0 });
    expect(prefetchFor(big({ cachedCheckpoints: ["sd15", "sdxl"] }), [sd15, sdxl(), other])).toBe("sd15-b");
    // Tasks waiting count as demand before any rate is known.
    expect(prefetchFor(big(), [sd15, sdxl({ arrivalsPerS: 0, waiting: 1 })])).toBe("sdxl");
  });

  it("the most demanded such work first", () => {
    const other = queue("sdxl-b", { minGpuMemoryMb: 16_384, eligibleNodes: 4, inferenceMs: 5_000, arrivalsPerS: 0.3, cachedOnNodes: 0 });
    expect(prefetchFor(big(), [sd15, sdxl(), other])).toBe("sdxl-b");
  });

  it("waiting work whose file no node has or is fetching before more demanded work, so nodes spread over such files", () => {
    const popular = queue("sd15-p", { eligibleNodes: 12, arrivalsPerS: 1, cachedOnNodes: 1 });
    const rare = (overrides: Partial<PlacementQueue> = {}) =>
      queue("sd15-r", { eligibleNodes: 12, waiting: 2, arrivalsPerS: 0.01, cachedOnNodes: 0, ...overrides });
    expect(prefetchFor(big(), [sd15, popular, rare()])).toBe("sd15-r");
    // Another node fetches it already (or has it): the most demanded again.
    expect(prefetchFor(big(), [sd15, popular, rare({ fetchingOnNodes: 1 })])).toBe("sd15-p");
    expect(prefetchFor(big(), [sd15, popular, rare({ cachedOnNodes: 1 })])).toBe("sd15-p");
    // Demand without waiting tasks does not jump the line.
    expect(prefetchFor(big(), [sd15, popular, rare({ waiting: 0 })])).toBe("sd15-p");
  });

  it("files other nodes are fetching do not count as copies: a growing checkpoint needs them where it will be served", () => {
    const wanted = 3 + PREFETCH_SPARE_COPIES;
    expect(prefetchFor(big(), [sd15, sdxl({ arrivalsPerS: 0.5, cachedOnNodes: wanted - 1, fetchingOnNodes: 2 })])).toBe("sdxl");
  });

  it("nothing for work without demand, or that a node cannot run", () => {
    expect(prefetchFor(big(), [sd15, sdxl({ arrivalsPerS: 0, waiting: 0 })])).toBeNull();
    expect(prefetchFor(big({ gpuMemoryMb: 12_288 }), [sd15, sdxl()])).toBeNull();
    expect(prefetchFor(big({ refusedCheckpoints: ["sdxl"] }), [sd15, sdxl()])).toBeNull();
  });

  it("nothing once the node holds the file, on disk or in RAM", () => {
    expect(prefetchFor(big({ cachedCheckpoints: ["sd15", "sdxl"] }), [sd15, sdxl()])).toBeNull();
    expect(prefetchFor(big({ ramCheckpoints: ["sdxl"] }), [sd15, sdxl()])).toBeNull();
  });

  it("copies follow demand: the nodes its arrivals keep busy, plus spare ones", () => {
    // 0.5 tasks/s × 5 s keeps 2.5 nodes busy: 3 + spare copies wanted.
    const wanted = 3 + PREFETCH_SPARE_COPIES;
    expect(prefetchFor(big(), [sd15, sdxl({ arrivalsPerS: 0.5, cachedOnNodes: wanted - 1 })])).toBe("sdxl");
    expect(prefetchFor(big(), [sd15, sdxl({ arrivalsPerS: 0.5, cachedOnNodes: wanted })])).toBeNull();
  });
});
