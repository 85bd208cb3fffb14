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
  // `attempts` counts claims: the first claim makes it 1.
  it("requeues while claims remain", () => {
    expect(afterLostLease(1, 3, false)).toBe("requeue");
    expect(afterLostLease(2, 3, false)).toBe("requeue");
  });

  it("fails for good once the last allowed claim has lost its lease", () => {
    expect(afterLostLease(3, 3, false)).toBe("fail");
  });

  it("fails at the first lost lease when one attempt is allowed", () => {
    expect(afterLostLease(1, 1, false)).toBe("fail");
  });

  it("fails a task that has had more claims than now allowed (MAX_ATTEMPTS lowered meanwhile)", () => {
    expect(afterLostLease(5, 3, false)).toBe("fail");
  });

  it("cancels a task whose cancel was requested, whether or not claims remain", () => {
    expect(afterLostLease(1, 3, true)).toBe("cancel");
    expect(afterLostLease(3, 3, true)).toBe("cancel");
  });
});

describe("exhaustedReason", () => {
  it("names the attempts and the node's last error", () => {
    expect(exhaustedReason(3, "CUDA out of memory")).toBe("Gave up after 3 attempts: CUDA out of memory");
  });

  it("says one attempt in the singular", () => {
    expect(exhaustedReason(1, "boom")).toBe("Gave up after 1 attempt: boom");
  });

  it("blames the expired lease when no node reported an error", () => {
    const reason = exhaustedReason(2, null);
    expect(reason).toMatch(/^Gave up after 2 attempts: /);
    expect(reason).toContain("lease expired");
  });

  it("keeps an empty error as given rather than inventing one", () => {
    expect(exhaustedReason(2, "")).toBe("Gave up after 2 attempts: ");
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
