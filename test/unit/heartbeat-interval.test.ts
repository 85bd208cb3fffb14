// How often Fleet tells nodes to heartbeat (src/fleet/heartbeat-interval.ts).
import { describe, expect, it } from "vitest";
import { FLEET_HEARTBEATS_PER_S, heartbeatIntervalFor } from "../../src/fleet/heartbeat-interval.ts";

describe("heartbeatIntervalFor", () => {
  it("is the configured interval while the fleet's heartbeats stay within the rate", () => {
    expect(heartbeatIntervalFor(0, 5000)).toBe(5000);
    expect(heartbeatIntervalFor(100, 5000)).toBe(5000);
  });

  it("grows with the fleet so all its nodes together beat at most FLEET_HEARTBEATS_PER_S times a second", () => {
    for (const nodes of [101, 250, 1000, 10_000]) {
      const intervalMs = heartbeatIntervalFor(nodes, 5000);
      expect(intervalMs).toBeGreaterThan(5000);
      expect(nodes / (intervalMs / 1000)).toBeLessThanOrEqual(FLEET_HEARTBEATS_PER_S);
      expect(intervalMs % 1000).toBe(0);
    }
    expect(heartbeatIntervalFor(1000, 5000)).toBe(50_000);
  });

  it("never goes below a longer configured interval", () => {
    expect(heartbeatIntervalFor(1000, 120_000)).toBe(120_000);
  });
});
