// A queue's arrival rate from its enqueue count (src/fleet/arrival-rate.ts).
import { describe, expect, it } from "vitest";
import { ARRIVAL_RATE_WINDOW_MS, arrivalRateAt, nextArrivalRate } from "../../src/fleet/arrival-rate.ts";

describe("arrival rate", () => {
  it("converges on a steady rate, and decays while nothing arrives", () => {
    let rate = nextArrivalRate(undefined, 0, 0);
    for (let s = 1; s <= 600; s++) rate = nextArrivalRate(rate, 2 * s, s * 1000);
    expect(arrivalRateAt(rate, 600_000)).toBeCloseTo(2, 2);
    expect(arrivalRateAt(rate, 600_000 + 5 * ARRIVAL_RATE_WINDOW_MS)).toBeLessThan(0.02);
  });

  it("counts a burst reported within one millisecond, and starts over when the count goes back (a new queue)", () => {
    const burst = nextArrivalRate(nextArrivalRate(undefined, 0, 0), 60, 0);
    expect(arrivalRateAt(burst, 0)).toBeCloseTo((60 * 1000) / ARRIVAL_RATE_WINDOW_MS, 5);
    expect(arrivalRateAt(nextArrivalRate(burst, 3, 1000), 1000)).toBe(0);
  });
});
