// How many checkpoints the agent has sd-webui hold in RAM by default, and its replay of which ones
// sd-webui holds (modules/sd_models.py reuse_model_from_already_loaded, v1.10).
import { describe, expect, it } from "vitest";
import { defaultRamCheckpoints, MAX_RAM_CHECKPOINTS } from "../../gpu-node/ram-checkpoints.ts";
import { HeldModels } from "../../gpu-node/webui/held-models.ts";

const GB = 1024 ** 3;

describe("defaultRamCheckpoints", () => {
  it("fits the largest checkpoint on disk into half the RAM", () => {
    expect(defaultRamCheckpoints(64 * GB, [2 * GB, 7 * GB])).toBe(4);
    expect(defaultRamCheckpoints(16 * GB, [7 * GB])).toBe(1);
    expect(defaultRamCheckpoints(8 * GB, [7 * GB])).toBe(0);
  });

  it("assumes an SDXL checkpoint while none is on disk, and stays within sd-webui's limit of 10 models", () => {
    expect(defaultRamCheckpoints(32 * GB, [])).toBe(2);
    expect(defaultRamCheckpoints(512 * GB, [2 * GB])).toBe(MAX_RAM_CHECKPOINTS);
  });
});

describe("HeldModels", () => {
  it("keeps up to the limit, most recently used first, and reuses the least recently used model at it", () => {
    const held = new HeldModels();
    held.reset("start");
    held.switchedTo("a", 3);
    held.switchedTo("b", 3);
    expect(held.besides("b")).toEqual(["a", "start"]);
    held.switchedTo("start", 3);
    expect(held.besides("start")).toEqual(["b", "a"]);
    held.switchedTo("c", 3);
    expect(held.besides("c")).toEqual(["start", "b"]);
  });

  it("holds nothing else with a limit of one, and unloads the models over a lowered limit at the next switch", () => {
    const held = new HeldModels();
    held.reset("a");
    held.switchedTo("b", 1);
    expect(held.besides("b")).toEqual([]);
    held.switchedTo("c", 3);
    held.switchedTo("d", 3);
    expect(held.besides("d")).toEqual(["c", "b"]);
    held.switchedTo("e", 2);
    expect(held.besides("e")).toEqual(["d"]);
  });

  it("loses the model a failed switch took at the limit, and keeps the others below it", () => {
    const held = new HeldModels();
    held.reset("a");
    held.switchedTo("b", 2);
    held.failedSwitchTo("broken", 2);
    expect(held.besides("b")).toEqual([]);
    held.reset("a");
    held.failedSwitchTo("broken", 3);
    expect(held.besides(null)).toEqual(["a"]);
  });
});
