import { describe, expect, it } from "vitest";
import { accountNodeTime, HANDOFF_MAX_MS, type ReplayedTask } from "../../bench/e2e/gap.ts";

const task = (nodeId: string, arrivalMs: number, claimMs: number, endMs: number, loadMs: number, inferenceMs: number): ReplayedTask => ({
  nodeId,
  arrivalMs,
  claimMs,
  endMs,
  loadMs,
  inferenceMs,
});

describe("accountNodeTime", () => {
  // n1 loads and runs a task, hands off to a waiting one quickly, later holds while one waits;
  // n2 sits idle, first with nothing waiting, then while n1's second task waits.
  const tasks = [
    task("n1", 0, 0, 1_000, 600, 380),
    task("n1", 500, 1_010, 1_500, 0, 450),
    task("n1", 1_200, 2_000, 2_400, 0, 400),
    task("n2", 1_000, 1_000, 2_400, 0, 1_390),
  ];
  const account = accountNodeTime(tasks, ["n1", "n2"]);

  it("splits every node's time into its terms, which add up to nodes × makespan", () => {
    expect(account.makespanMs).toBe(2_400);
    expect(account.inferenceMs).toBe(2_620);
    expect(account).toMatchObject({ loads: 1, loadMs: 600 });
    expect(account.overheadMs).toBe(20 + 40 + 0 + 10);
    const busyMs = tasks.reduce((sum, t) => sum + t.endMs - t.claimMs, 0);
    expect(busyMs + account.idleWhileWaitingMs + account.idleNothingWaitingMs).toBe(2 * account.makespanMs);
  });

  it("tells a handoff to waiting work from a hold, and idle time with nothing waiting from both", () => {
    expect(HANDOFF_MAX_MS).toBeGreaterThanOrEqual(10);
    expect(account).toMatchObject({ handoffs: 1, handoffMs: 10 });
    // Holds: n1 idle 1,500 → 2,000 while the third task waited, n2 idle 500 → 1,000 while the second did.
    expect(account.idleWhileWaitingMs - account.handoffMs).toBe(1_000);
    expect(account.holdSpellsMs).toEqual([500, 500]);
    // n2 before the second task arrived.
    expect(account.idleNothingWaitingMs).toBe(500);
  });
});
