// Add-on affinity (src/fleet/addon-preference.ts): which waiting node asks first for a task that
// needs add-ons.
import { describe, expect, it } from "vitest";
import { addonsHeld, betterHolder, byAddonsHeld } from "../../src/fleet/addon-preference.ts";

const held: Record<string, string[]> = { plain: [], lora: ["lora-x"], both: ["lora-x", "vae-y"], other: ["lora-z"] };
const heldOf = (nodeId: string) => held[nodeId] ?? [];

describe("add-on preference", () => {
  it("counts the needed add-ons a node holds", () => {
    expect(addonsHeld(["lora-x", "vae-y", "cn"], ["lora-x", "vae-y"])).toBe(2);
    expect(addonsHeld(["lora-z"], ["lora-x"])).toBe(0);
    expect(addonsHeld(["lora-x"], [])).toBe(0);
  });

  it("puts the nodes holding more of the add-ons first and keeps the order among equals", () => {
    expect(byAddonsHeld(["plain", "other", "lora", "both"], heldOf, ["lora-x", "vae-y"])).toEqual(["both", "lora", "plain", "other"]);
    expect(byAddonsHeld(["plain", "lora"], heldOf, [])).toEqual(["plain", "lora"]);
  });

  it("names a waiting node that holds more than the asker, and none when the asker holds as much", () => {
    expect(betterHolder([], ["plain", "lora", "both"], heldOf, ["lora-x", "vae-y"])).toBe("both");
    expect(betterHolder(["lora-x"], ["plain", "lora"], heldOf, ["lora-x"])).toBeNull();
    expect(betterHolder([], ["plain", "other"], heldOf, ["lora-x"])).toBeNull();
    expect(betterHolder([], ["lora"], heldOf, [])).toBeNull();
  });
});
