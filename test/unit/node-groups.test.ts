// Node groups (src/fleet/node-groups.ts): the default name from the GPU, the boot time learned
// from the group's nodes, and what the scaling policy is given.
import { describe, expect, it } from "vitest";
import { DEFAULT_GROUP_SETTINGS, defaultGroupName, newGroupRecord, scalingGroup, withBootSample } from "../../src/fleet/node-groups.ts";

describe("node groups", () => {
  it("names a node's group after its GPU class and memory", () => {
    expect(defaultGroupName("NVIDIA L4", 23_034)).toBe("nvidia-l4-22gb");
    expect(defaultGroupName("NVIDIA GeForce RTX 4090", 24_564)).toBe("nvidia-geforce-rtx-4090-24gb");
    expect(defaultGroupName("???", 0)).toBe("gpu-0gb");
  });

  it("is not scaled while its GPU is unknown; once seen or set, it scales with its settings", () => {
    expect(scalingGroup(newGroupRecord("g"))).toBeNull();
    const seen = { ...newGroupRecord("g"), seenGpuClass: "L4", seenGpuMemoryMb: 24_000 };
    expect(scalingGroup(seen)).toMatchObject({ gpuClass: "L4", gpuMemoryMb: 24_000, idleMs: DEFAULT_GROUP_SETTINGS.idleSeconds * 1000, bootMs: 120_000 });
    const set = { ...newGroupRecord("g"), settings: { ...DEFAULT_GROUP_SETTINGS, gpuClass: "A100", gpuMemoryMb: 81_920, maxNodes: 4 } };
    expect(scalingGroup(set)).toMatchObject({ gpuClass: "A100", gpuMemoryMb: 81_920, maxNodes: 4 });
  });

  it("assumes the measured boot time once a node has booted, smoothed over the last boots", () => {
    const seen = { ...newGroupRecord("g"), seenGpuClass: "L4", seenGpuMemoryMb: 24_000 };
    const once = withBootSample(seen, 40_000);
    expect(scalingGroup(once)!.bootMs).toBe(40_000);
    const twice = withBootSample(once, 140_000);
    expect(twice.bootSamples).toBe(2);
    expect(scalingGroup(twice)!.bootMs).toBeGreaterThan(40_000);
    expect(scalingGroup(twice)!.bootMs).toBeLessThan(140_000);
  });
});
