// A task's life in its queue (src/queue/lease-policy.ts): lease deadlines, what a lost lease
// means for the task, and when the queue's alarm must wake.
import { describe, expect, it } from "vitest";
import { afterLostLease, exhaustedReason, leaseDeadline, nextAlarmAt } from "../../src/queue/lease-policy.ts";

describe("leaseDeadline", () => {
  it("gives a lease exactly leaseMs from when it was taken or last extended", () => {
    expect(leaseDeadline(1_000_000, 30_000)).toBe(1_030_000);
    // Progress extends from the time of the report, not from the old deadline.
    const first = leaseDeadline(1_000_000, 30_000);
    expect(leaseDeadline(1_020_000, 30_000)).toBe(first + 20_000);
  });
});

describe("afterLostLease", () => {
  // `attempts` counts claims: the first claim makes it 1. Counts are as they were before this loss.
  const limits = { maxAttempts: 3, maxInfraRetries: 10 };
  const runs = (attempts: number, infraLosses = 0) => ({ attempts, infraLosses });

  it("requeues while the task's own failures remain under MAX_ATTEMPTS", () => {
    expect(afterLostLease("task", runs(1), limits, false)).toBe("requeue");
    expect(afterLostLease("task", runs(2), limits, false)).toBe("requeue");
  });

  it("fails for good once the task itself has failed its last allowed run", () => {
    expect(afterLostLease("task", runs(3), limits, false)).toBe("fail");
    expect(afterLostLease("task", runs(1), { ...limits, maxAttempts: 1 }, false)).toBe("fail");
    // MAX_ATTEMPTS lowered meanwhile
    expect(afterLostLease("task", runs(5), limits, false)).toBe("fail");
  });

  it("does not count runs the infrastructure lost against the task's own bound", () => {
    // Five claims, three of them lost to nodes: the task itself failed once before this.
    expect(afterLostLease("task", runs(5, 3), limits, false)).toBe("requeue");
    expect(afterLostLease("task", runs(6, 3), limits, false)).toBe("fail");
  });

  it("requeues infrastructure losses past MAX_ATTEMPTS, up to their own bound", () => {
    expect(afterLostLease("infrastructure", runs(3, 2), limits, false)).toBe("requeue");
    expect(afterLostLease("infrastructure", runs(10, 9), limits, false)).toBe("requeue");
    expect(afterLostLease("infrastructure", runs(11, 10), limits, false)).toBe("fail");
    expect(afterLostLease("infrastructure", runs(1), { ...limits, maxInfraRetries: 0 }, false)).toBe("fail");
  });

  it("cancels a task whose cancel was requested, whatever it has left", () => {
    expect(afterLostLease("task", runs(1), limits, true)).toBe("cancel");
    expect(afterLostLease("infrastructure", runs(11, 10), limits, true)).toBe("cancel");
  });
});

describe("exhaustedReason", () => {
  it("names the attempts and the node's last error", () => {
    expect(exhaustedReason("task", 3, "CUDA out of memory")).toBe("Gave up after 3 attempts: CUDA out of memory");
  });

  it("says one attempt in the singular", () => {
    expect(exhaustedReason("task", 1, "boom")).toBe("Gave up after 1 attempt: boom");
  });

  it("says when the runs were lost to the infrastructure", () => {
    expect(exhaustedReason("infrastructure", 11, "sd-webui crashed")).toBe("Gave up after 11 runs lost to nodes or sd-webui: sd-webui crashed");
  });

  it("blames the expired lease when no node reported an error", () => {
    const reason = exhaustedReason("infrastructure", 2, null);
    expect(reason).toMatch(/^Gave up after 2 runs/);
    expect(reason).toContain("lease expired");
  });

  it("keeps an empty error as given rather than inventing one", () => {
    expect(exhaustedReason("task", 2, "")).toBe("Gave up after 2 attempts: ");
  });
});

describe("nextAlarmAt", () => {
  it("is null when nothing is leased, so no alarm is set", () => {
    expect(nextAlarmAt([])).toBeNull();
  });

  it("wakes at the earliest deadline, exactly, whatever the order", () => {
    expect(nextAlarmAt([5000, 1200, 3000])).toBe(1200);
    expect(nextAlarmAt([1200, 5000])).toBe(1200);
    expect(nextAlarmAt([7000])).toBe(7000);
  });

  it("handles leases sharing a deadline", () => {
    expect(nextAlarmAt([4000, 4000, 9000])).toBe(4000);
  });

  it("wakes at once for a deadline already past", () => {
    const now = 10_000;
    expect(nextAlarmAt([now - 500, now + 2000])).toBe(now - 500);
  });
});
