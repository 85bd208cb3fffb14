// The placement policy's decisions (src/fleet/placement.ts): what an idle node is told to serve.
import { describe, expect, it } from "vitest";
import { choosePlacement, MIN_RESIDENCY_MS, type PlacementNode, type PlacementQueue, STARVATION_AGE_MS, STARVATION_GAP_MS } from "../../src/fleet/placement.ts";

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
      queue("rare", { waiting: 2, oldestWaitingAgeMs: STARVATION_AGE_MS + 20_000, nodesServing: 0 }),
    ];
    const decision = choosePlacement(servingNode("a", { cachedCheckpoints: ["a", "rare"] }), queues, NOW);
    expect(decision).toEqual({ checkpoint: "rare", switching: true, reason: "starvation" });
  });

  it("leaves its work for a backlog that outweighs it by the gap and pays for the switch", () => {
    const queues = [
      // Three other nodes keep serving "a"; "b" has one node and a deep, old backlog.
      queue("a", { waiting: 4, oldestWaitingAgeMs: 8_000, nodesServing: 3 }),
      queue("b", { waiting: 400, oldestWaitingAgeMs: STARVATION_GAP_MS, nodesServing: 1 }),
    ];
    const decision = choosePlacement(servingNode("a", { cachedCheckpoints: ["a", "b"] }), queues, NOW);
    expect(decision).toEqual({ checkpoint: "b", switching: true, reason: "backlog" });
  });

  it("does not leave its work for a small imbalance", () => {
    const queues = [
      queue("a", { waiting: 10, oldestWaitingAgeMs: 30_000, nodesServing: 1 }),
      queue("b", { waiting: 30, oldestWaitingAgeMs: 60_000, nodesServing: 1 }),
    ];
    expect(choosePlacement(servingNode("a", { cachedCheckpoints: ["a", "b"] }), queues, NOW)?.checkpoint).toBe("a");
  });

  it("does not leave its work for a checkpoint whose file another node has while it would download", () => {
    const starving = queue("b", { waiting: 400, oldestWaitingAgeMs: STARVATION_GAP_MS * 2, nodesServing: 0, cachedOnNodes: 1 });
    const queues = [queue("a", { waiting: 4, oldestWaitingAgeMs: 8_000, nodesServing: 3 }), starving];
    expect(choosePlacement(servingNode("a"), queues, NOW)?.checkpoint).toBe("a");
    // The node that has the file goes.
    expect(choosePlacement(servingNode("a", { cachedCheckpoints: ["a", "b"] }), queues, NOW)?.checkpoint).toBe("b");
  });

  it("anti-thrash: a node that just switched stays while its checkpoint has work", () => {
    const queues = [
      queue("a", { waiting: 4, oldestWaitingAgeMs: 8_000, nodesServing: 3 }),
      queue("b", { waiting: 400, oldestWaitingAgeMs: STARVATION_AGE_MS * 2, nodesServing: 0 }),
    ];
    const justSwitched = servingNode("a", { cachedCheckpoints: ["a", "b"], servingSinceMs: NOW - MIN_RESIDENCY_MS / 2 });
    expect(choosePlacement(justSwitched, queues, NOW)).toEqual({ checkpoint: "a", switching: false, reason: "affinity" });
    // Once its queue is empty it may go at once.
    const drained = [queue("a", { nodesServing: 3 }), queues[1]!];
    expect(choosePlacement(justSwitched, drained, NOW)?.checkpoint).toBe("b");
  });

  it("no bouncing back: after moving to a backlog, the node does not return to where it came from", () => {
    // Before: the node on "a" moves to "b" (see the backlog test above).
    const before = [
      queue("a", { waiting: 4, oldestWaitingAgeMs: 8_000, nodesServing: 3 }),
      queue("b", { waiting: 400, oldestWaitingAgeMs: STARVATION_GAP_MS, nodesServing: 1 }),
    ];
    const mover = servingNode("a", { cachedCheckpoints: ["a", "b"] });
    expect(choosePlacement(mover, before, NOW)?.checkpoint).toBe("b");
    // After, even past the residency and with "a" a little busier, it stays on "b".
    const after = [
      queue("a", { waiting: 20, oldestWaitingAgeMs: 40_000, nodesServing: 3 }),
      queue("b", { waiting: 380, oldestWaitingAgeMs: STARVATION_GAP_MS, nodesServing: 1 }),
    ];
    const moved = servingNode("b", { cachedCheckpoints: ["a", "b"], servingSinceMs: NOW - 2 * MIN_RESIDENCY_MS });
    expect(choosePlacement(moved, after, NOW + 2 * MIN_RESIDENCY_MS)).toEqual({ checkpoint: "b", switching: false, reason: "affinity" });
  });

  it("prefers a checkpoint whose file is on its disk over an equal one it must download", () => {
    const queues = [queue("far", { waiting: 10, oldestWaitingAgeMs: 20_000 }), queue("near", { waiting: 10, oldestWaitingAgeMs: 20_000 })];
    const decision = choosePlacement(node({ cachedCheckpoints: ["near"] }), queues, NOW);
    expect(decision?.checkpoint).toBe("near");
  });

  it("waits for a node that has the file rather than download at once (ski rental), then goes", () => {
    const fresh = [queue("x", { waiting: 1, oldestWaitingAgeMs: 2_000, downloadMs: 30_000, cachedOnNodes: 2 })];
    expect(choosePlacement(node(), fresh, NOW)).toBeNull();
    const waited = [queue("x", { waiting: 1, oldestWaitingAgeMs: 31_000, downloadMs: 30_000, cachedOnNodes: 2 })];
    expect(choosePlacement(node(), waited, NOW)?.checkpoint).toBe("x");
    // Nobody has the file: someone must download it, so the node goes at once.
    const nowhere = [queue("x", { waiting: 1, oldestWaitingAgeMs: 2_000, cachedOnNodes: 0 })];
    expect(choosePlacement(node(), nowhere, NOW)?.checkpoint).toBe("x");
  });

  it("does not join a checkpoint whose nodes will have finished its backlog before it is ready", () => {
    // Two nodes serve 3 tasks of 2 s; a 36 s download and load would arrive after they are done.
    const queues = [queue("a", { waiting: 3, oldestWaitingAgeMs: 3_000, nodesServing: 2 })];
    expect(choosePlacement(node(), queues, NOW)).toBeNull();
    // A deep backlog is worth joining.
    const deep = [queue("a", { waiting: 300, oldestWaitingAgeMs: 30_000, nodesServing: 2 })];
    expect(choosePlacement(node(), deep, NOW)?.checkpoint).toBe("a");
  });

  describe("concurrency cap", () => {
    it("does not claim on its own checkpoint at the cap, and may serve another", () => {
      const queues = [
        queue("a", { waiting: 10, oldestWaitingAgeMs: 5_000, running: 4, concurrencyCap: 4, nodesServing: 4 }),
        queue("b", { waiting: 5, oldestWaitingAgeMs: 5_000 }),
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
            oldestWaitingAgeMs: Math.floor(random() * 2 * STARVATION_AGE_MS),
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
        queue("deep", { waiting: 500, oldestWaitingAgeMs: STARVATION_AGE_MS * 2, nodesServing: 0 }),
      ];
      expect(choosePlacement(servingNode("reserved", { cachedCheckpoints: ["reserved", "deep"] }), queues, NOW)).toBeNull();
      // With enough nodes on it, the same node may go.
      const covered = [{ ...queues[0]!, nodesServing: 2 }, queues[1]!];
      expect(choosePlacement(servingNode("reserved", { cachedCheckpoints: ["reserved", "deep"] }), covered, NOW)?.checkpoint).toBe("deep");
    });
  });

  it("no starvation: a single task on a checkpoint nobody serves is eventually taken by a busy node", () => {
    const busy = servingNode("hot", { cachedCheckpoints: ["hot"] });
    const queuesAt = (ageMs: number) => [
      queue("hot", { waiting: 100, oldestWaitingAgeMs: 30_000, nodesServing: 7 }),
      queue("rare", { waiting: 1, oldestWaitingAgeMs: ageMs, nodesServing: 0, cachedOnNodes: 0 }),
    ];
    expect(choosePlacement(busy, queuesAt(60_000), NOW)?.checkpoint).toBe("hot");
    expect(choosePlacement(busy, queuesAt(30_000 + STARVATION_AGE_MS), NOW)).toEqual({ checkpoint: "rare", switching: true, reason: "starvation" });
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
