// A key's limits under an admin's overrides (src/tenants/limits.ts) and the work a request asks
// for (src/tenants/request-work.ts).
import { describe, expect, it } from "vitest";
import { effectiveLimits, type KeyLimits, mergeOverrides } from "../../../src/tenants/limits";
import { requestWork } from "../../../src/tenants/request-work";

const DEFAULTS: KeyLimits = {
  requestsPerMinute: 120,
  maxWaiting: 1000,
  maxRunning: null,
  weight: 1,
  priorityClass: 0,
  maxWorkPerRequest: 2000,
  gpuSecondsPerDay: null,
  imagesPerDay: null,
  retentionDays: 30,
};

describe("effectiveLimits", () => {
  it("takes each valid override and the default for the rest", () => {
    expect(effectiveLimits(DEFAULTS, { weight: 3, maxRunning: 2, retentionDays: 0, bogus: 1 })).toEqual({ ...DEFAULTS, weight: 3, maxRunning: 2 });
  });

  it("drops an override sent as null when the limit cannot be null, keeps a null that means no limit", () => {
    const stored = mergeOverrides({ weight: 3, imagesPerDay: 10 }, { weight: null, imagesPerDay: null, maxWaiting: 5 });
    expect(stored).toEqual({ imagesPerDay: null, maxWaiting: 5 });
  });
});

describe("requestWork", () => {
  it("counts megapixel-steps over every image, with sd-webui's defaults for absent fields", () => {
    expect(requestWork("txt2img", {})).toBeCloseTo((50 * 512 * 512) / 1e6);
    expect(requestWork("txt2img", { steps: 20, width: 1000, height: 500, batch_size: 2, n_iter: 3 })).toBeCloseTo(60);
  });

  it("adds the hires pass at its size, with its own steps or the first pass's", () => {
    const base = { steps: 10, width: 100, height: 100, enable_hr: true };
    expect(requestWork("txt2img", { ...base, hr_scale: 2 })).toBeCloseTo(0.1 + 0.4);
    expect(requestWork("txt2img", { ...base, hr_scale: 2, hr_second_pass_steps: 5 })).toBeCloseTo(0.1 + 0.2);
    expect(requestWork("txt2img", { ...base, hr_resize_x: 300 })).toBeCloseTo(0.1 + 0.9);
    expect(requestWork("img2img", { ...base, hr_scale: 2 })).toBeCloseTo(0.1);
  });

  it("is nothing for upscaling and passthrough calls", () => {
    expect(requestWork("extras", { steps: 1000 })).toBe(0);
    expect(requestWork("passthrough", { steps: 1000 })).toBe(0);
  });
});
