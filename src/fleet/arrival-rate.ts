// A queue's arrival rate, from the monotonic enqueue count (`arrivals`) its summaries carry:
// smoothed exponentially over ARRIVAL_RATE_WINDOW_MS, and decaying while no report comes (a
// queue reports on every change, so silence means no arrivals).

/** Time constant of the smoothing: about the last minute's arrivals count. */
export const ARRIVAL_RATE_WINDOW_MS = 60_000;

export interface ArrivalRate {
  arrivals: number;
  atMs: number;
  perS: number;
}

export function nextArrivalRate(previous: ArrivalRate | undefined, arrivals: number, atMs: number): ArrivalRate {
  if (!previous || arrivals < previous.arrivals || atMs < previous.atMs) return { arrivals, atMs, perS: 0 };
  const elapsedMs = atMs - previous.atMs;
  if (elapsedMs === 0) return { ...previous, arrivals: arrivals, perS: previous.perS + ((arrivals - previous.arrivals) * 1000) / ARRIVAL_RATE_WINDOW_MS };
  const keep = Math.exp(-elapsedMs / ARRIVAL_RATE_WINDOW_MS);
  const observed = ((arrivals - previous.arrivals) * 1000) / elapsedMs;
  return { arrivals, atMs, perS: keep * previous.perS + (1 - keep) * observed };
}

/** The rate as of `nowMs`, decayed for the time since the last report. */
export function arrivalRateAt(rate: ArrivalRate | undefined, nowMs: number): number {
  if (!rate) return 0;
  return rate.perS * Math.exp(-Math.max(0, nowMs - rate.atMs) / ARRIVAL_RATE_WINDOW_MS);
}
