// Whether a key may submit one more task, by its limits and what it uses now; each refusal
// names the limit it hit. Pure: the caller reads the usage (src/db/submission-lookups.ts).
import { ApiError } from "../errors";
import type { KeyLimits } from "./limits";

const MS_PER_DAY = 86_400_000;

/** What the key has in the queues and used today (UTC), as D1 shows it at submission. */
export interface KeyUsageNow {
  waiting: number;
  gpuMsToday: number;
  imagesToday: number;
}

export function utcDayStart(now: number): number {
  return now - (now % MS_PER_DAY);
}

/** Seconds until the next UTC day, when the daily budgets start over. */
function secondsToNextDay(now: number): number {
  return (utcDayStart(now) + MS_PER_DAY - now) / 1000;
}

/** The request's own size: megapixel-steps (src/tenants/request-work.ts) against maxWorkPerRequest. */
export function workRefusal(limits: KeyLimits, work: number): ApiError | null {
  if (work <= limits.maxWorkPerRequest) return null;
  const message = `asks for ${work.toFixed(1)} megapixel-steps (steps × width × height × batch_size × n_iter / 10⁶, hires included); this key may ask for ${limits.maxWorkPerRequest} per request (limit maxWorkPerRequest): fewer steps, smaller images or fewer images per request`;
  return new ApiError("work_over_limit", `The request ${message}`, [{ path: "(body)", message }], { limit: "maxWorkPerRequest" });
}

export function usageRefusal(limits: KeyLimits, usage: KeyUsageNow, now: number): ApiError | null {
  if (usage.waiting >= limits.maxWaiting) {
    return new ApiError(
      "quota_exceeded",
      `This key has ${usage.waiting} tasks waiting, its most (limit maxWaiting ${limits.maxWaiting}); submit more once some have run`,
      undefined,
      { limit: "maxWaiting" },
    );
  }
  const retryAfterSeconds = secondsToNextDay(now);
  if (limits.gpuSecondsPerDay !== null && usage.gpuMsToday >= limits.gpuSecondsPerDay * 1000) {
    return new ApiError(
      "quota_exceeded",
      `This key used ${Math.round(usage.gpuMsToday / 1000)} GPU seconds today (UTC), its daily budget (limit gpuSecondsPerDay ${limits.gpuSecondsPerDay}); it starts over at 00:00 UTC`,
      undefined,
      { limit: "gpuSecondsPerDay", retryAfterSeconds },
    );
  }
  if (limits.imagesPerDay !== null && usage.imagesToday >= limits.imagesPerDay) {
    return new ApiError(
      "quota_exceeded",
      `This key made ${usage.imagesToday} images today (UTC), its daily budget (limit imagesPerDay ${limits.imagesPerDay}); it starts over at 00:00 UTC`,
      undefined,
      { limit: "imagesPerDay", retryAfterSeconds },
    );
  }
  return null;
}
