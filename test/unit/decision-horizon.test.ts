// When a parked claim's placement decision can next change (src/fleet/decision-horizon.ts):
// checked against the policy itself on random fleets — at every instant before the horizon the
// decision is the one taken now, and the horizon is no later than the first instant it differs.
import { describe, expect, it } from "vitest";
import { type Rand, rng } from "../../bench/placement/random.ts";
import { ARRIVAL_RATE_WINDOW_MS } from "../../src/fleet/arrival-rate.ts";
import { nextDecisionChangeMs } from "../../src/fleet/decision-horizon.ts";
import { BATCH_WAIT_MS, choosePlacement, type PlacementNode, type PlacementQueue } from "../../src/fleet/placement.ts";

const NOW_MS = 1_000_000;
const pick = <T>(r: Rand, items: readonly T[]): T => items[Math.floor(r() * items.length)]!;
const int = (r: Rand, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

function randomFleet(r: Rand): { node: PlacementNode; queues: PlacementQueue[] } {
  const names = Array.from({ length: int(r, 1, 6) }, (_, i) => `ckpt-${i}`);
  const queues = names.map<PlacementQueue>((checkpoint) => {
    const waiting = r() < 0.3 ? 0 : r() < 0.1 ? int(r, 50, 500) : int(r, 1, 6);
    const xl = r() < 0.25;
    return {
      checkpoint,
      waiting,
      oldestWaitingAgeMs: waiting === 0 ? 0 : r() < 0.5 ? int(r, 0, 30_000) : int(r, 0, 200_000),
      running: int(r, 0, 2),
      concurrencyCap: pick(r, [1, 2, 4, 100]),
      nodesServing: int(r, 0, 2),
      minNodes: r() < 0.1 ? 1 : 0,
      maxNodes: r() < 0.1 ? 2 : 0,
      minGpuMemoryMb: xl ? 20_000 : 0,
      gpuClass: null,
      loadMs: int(r, 1_000, 30_000),
      downloadMs: int(r, 0, 120_000),
      inferenceMs: int(r, 1_000, 10_000),
      cachedOnNodes: int(r, 0, 2),
      fetchingOnNodes: int(r, 0, 1),
      eligibleNodes: xl ? int(r, 1, 4) : int(r, 4, 12),
      arrivalsPerS: r() < 0.4 ? 0 : r() * 0.8,
    };
  });
  const loaded = r() < 0.2 ? null : pick(r, names);
  const node: PlacementNode = {
    nodeId: "node-under-test",
    loadedCheckpoint: loaded,
    cachedCheckpoints: names.filter(() => r() < 0.4),
    ramCheckpoints: r() < 0.3 ? names.filter(() => r() < 0.3) : [],
    gpuMemoryMb: r() < 0.5 ? 24_000 : 12_000,
    gpuClass: "gpu",
    servingSinceMs: loaded === null ? null : NOW_MS - int(r, 0, 120_000),
    idleSinceMs: r() < 0.2 ? null : NOW_MS - int(r, 0, 1_000),
  };
  return { node, queues };
}

/** The same fleet `laterMs` on, nothing else happening: work ages, arrival rates decay. */
function aged(queues: readonly PlacementQueue[], laterMs: number): PlacementQueue[] {
  return queues.map((q) => ({
    ...q,
    oldestWaitingAgeMs: q.waiting === 0 ? 0 : q.oldestWaitingAgeMs + laterMs,
    arrivalsPerS: (q.arrivalsPerS ?? 0) * Math.exp(-laterMs / ARRIVAL_RATE_WINDOW_MS),
  }));
}

const decisionAt = (node: PlacementNode, queues: readonly PlacementQueue[], laterMs: number) => choosePlacement(node, aged(queues, laterMs), NOW_MS + laterMs);

describe("nextDecisionChangeMs", () => {
  it("on random fleets, placement decides the same at every instant before the horizon", () => {
    const r = rng(17);
    let finite = 0;
    for (let fleet = 0; fleet < 4000; fleet++) {
      const { node, queues } = randomFleet(r);
      const now = choosePlacement(node, queues, NOW_MS);
      const horizonMs = nextDecisionChangeMs(node, queues, NOW_MS);
      expect(horizonMs).toBeGreaterThan(NOW_MS);
      if (horizonMs !== Infinity) finite++;
      // The horizon is a millisecond past the bound that flips first.
      const lastMs = Math.min(horizonMs - NOW_MS - 2, 600_000);
      // Fine steps over the first seconds (a node turns spare 0.5 s after its task), coarser after, and the last instant.
      const probes = [...Array.from({ length: 80 }, (_, i) => (i + 1) * 37), ...Array.from({ length: 600 }, (_, i) => (i + 1) * 997), lastMs];
      for (const laterMs of probes) {
        if (laterMs <= 0 || laterMs > lastMs) continue;
        expect(decisionAt(node, queues, laterMs), `fleet ${fleet}, ${laterMs} ms later`).toEqual(now);
      }
    }
    // The fleets exercised the bounds: most had a horizon.
    expect(finite).toBeGreaterThan(2500);
  });

  it("is when rare work becomes due: the decision changes there", () => {
    const rare: PlacementQueue = {
      checkpoint: "rare",
      waiting: 1,
      oldestWaitingAgeMs: 10_000,
      running: 0,
      concurrencyCap: 1,
      nodesServing: 0,
      minNodes: 0,
      maxNodes: 0,
      minGpuMemoryMb: 0,
      gpuClass: null,
      loadMs: 5_000,
      downloadMs: 0,
      inferenceMs: 2_000,
      cachedOnNodes: 0,
      eligibleNodes: 8,
    };
    const mine: PlacementQueue = { ...rare, checkpoint: "mine", waiting: 0, oldestWaitingAgeMs: 0, arrivalsPerS: 0.01 };
    // Just done with a task on its own checkpoint (not spare yet), then spare after SPARE_IDLE_MS.
    const node: PlacementNode = {
      nodeId: "n",
      loadedCheckpoint: "mine",
      cachedCheckpoints: ["mine", "rare"],
      gpuMemoryMb: 24_000,
      gpuClass: "gpu",
      servingSinceMs: NOW_MS - 100_000,
      idleSinceMs: NOW_MS,
    };
    const horizonMs = nextDecisionChangeMs(node, [rare, mine], NOW_MS);
    expect(choosePlacement(node, [rare, mine], NOW_MS)).toBeNull();
    expect(horizonMs).toBeLessThanOrEqual(NOW_MS + BATCH_WAIT_MS);
    expect(decisionAt(node, [rare, mine], horizonMs - NOW_MS)).not.toBeNull();
  });
});
