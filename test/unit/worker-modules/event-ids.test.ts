// Event ids of GET /tasks/{id}/events (src/tasks/event-ids.ts): what a reconnect can skip.
import { describe, expect, it } from "vitest";
import type { LiveStatus } from "../../../src/queue/types";
import { formatEventId, liveState, parseEventId } from "../../../src/tasks/event-ids";

const progress = (updatedAt: number) => ({ progress: 0.5, etaRelative: 1, state: {}, currentImage: null, textinfo: null, updatedAt });
const running = (updatedAt: number, attempts = 1): LiveStatus => ({
  state: "running",
  progress: progress(updatedAt),
  attempts,
  nodeId: "n",
  cancelRequested: false,
});

describe("task event ids", () => {
  it("name a new state only when there is something new to tell", () => {
    const waiting = (queuePosition: number, attempts = 0): LiveStatus => ({ state: "waiting", queuePosition, attempts });
    expect(liveState(waiting(3))).toBe(liveState(waiting(3)));
    expect(liveState(waiting(2))).not.toBe(liveState(waiting(3)));
    expect(liveState(waiting(1, 1))).not.toBe(liveState(waiting(1, 0)));
    expect(liveState(running(10))).toBe(liveState(running(10)));
    expect(liveState(running(11))).not.toBe(liveState(running(10)));
    expect(liveState(running(10, 2))).not.toBe(liveState(running(10, 1)));
    expect(liveState({ ...running(10), cancelRequested: true } as LiveStatus)).not.toBe(liveState(running(10)));
  });

  it("read back what they wrote, and anything else as a fresh start", () => {
    const cursor = { seq: 7, state: liveState(running(1234)) };
    expect(parseEventId(formatEventId(cursor))).toEqual(cursor);
    for (const header of [undefined, "", "7", ":end", "x:end", `${"1".repeat(20)}:end`]) expect(parseEventId(header)).toEqual({ seq: 0, state: "" });
  });
});
