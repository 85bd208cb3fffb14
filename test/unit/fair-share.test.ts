// Fair share (src/queue/fair-share.ts): the queue position computed from the owners' counters is
// the place the task really gets when the queue hands out work in order; wake order of claims.
import { describe, expect, it } from "vitest";
import { claimsToWake } from "../../src/fleet/wake-order.ts";
import { nextOwner, type OwnerShare, strideOf, tasksServedBefore } from "../../src/queue/fair-share.ts";

const owner = (name: string, overrides: Partial<OwnerShare>): OwnerShare => ({
  owner: name,
  weight: 1,
  priorityClass: 0,
  maxRunning: null,
  waiting: 1,
  running: 0,
  pass: 0,
  activeSince: 0,
  ...overrides,
});

/** The order the queue hands tasks out in: owner names, one per task, until nothing waits. */
function serveAll(start: readonly OwnerShare[]): string[] {
  const owners = start.map((o) => ({ ...o }));
  const order: string[] = [];
  for (let next = nextOwner(owners); next; next = nextOwner(owners)) {
    order.push(next.owner);
    next.waiting -= 1;
    next.pass += strideOf(next.weight);
  }
  return order;
}

describe("fair share", () => {
  it("places every task where serving the queue puts it, across weights, passes, classes and arrival order", () => {
    const owners = [
      owner("a", { weight: 1, waiting: 7, pass: 2, activeSince: 1 }),
      owner("b", { weight: 3, waiting: 9, pass: 1.5, activeSince: 2 }),
      owner("c", { weight: 0.5, waiting: 3, pass: 2, activeSince: 3 }),
      owner("d", { weight: 2, waiting: 4, pass: 0, activeSince: 4, priorityClass: 1 }),
      owner("e", { weight: 1, waiting: 2, pass: 0.5, activeSince: 5, priorityClass: -1 }),
    ];
    const order = serveAll(owners);
    for (const target of owners) {
      for (let k = 0; k < target.waiting; k++) {
        const served = order.flatMap((name, i) => (name === target.owner ? [i] : []))[k]!;
        expect({ owner: target.owner, k, before: tasksServedBefore(owners, target, k) }).toEqual({ owner: target.owner, k, before: served });
      }
    }
  });

  it("skips an owner at its running limit", () => {
    const owners = [owner("a", { maxRunning: 1, running: 1, pass: 0 }), owner("b", { pass: 5 })];
    expect(nextOwner(owners)?.owner).toBe("b");
    expect(nextOwner(owners, new Set(["b"]))).toBeNull();
  });
});

describe("wake order", () => {
  const nodes = {
    far: { loadedCheckpoint: "other", cachedCheckpoints: [], cachedAddons: ["lora"] },
    cached: { loadedCheckpoint: null, cachedCheckpoints: ["ck"], cachedAddons: [] },
    loaded: { loadedCheckpoint: "ck", cachedCheckpoints: ["ck"], cachedAddons: [] },
    loadedWithLora: { loadedCheckpoint: "ck", cachedCheckpoints: ["ck"], cachedAddons: ["lora"] },
  };
  const parked = Object.keys(nodes) as (keyof typeof nodes)[];

  it("wakes those with the checkpoint loaded first (add-ons held breaking ties), then cached, then the rest, no more than asked", () => {
    expect(claimsToWake(parked, (id) => nodes[id], "ck", ["lora"], 10)).toEqual(["loadedWithLora", "loaded", "cached", "far"]);
    expect(claimsToWake(parked, (id) => nodes[id], "ck", [], 2)).toEqual(["loaded", "loadedWithLora"]);
    expect(claimsToWake(parked, (id) => nodes[id], "ck", [], 0)).toEqual([]);
  });
});
