// When a checkpoint that fails to load counts as failed (src/tasks/model-failure.ts).
// test/unit/worker-modules: pure functions of Worker modules, run in Node but type-checked with the
// Worker's tsconfig.json.
import { describe, expect, it } from "vitest";
import { MODEL_FAILURE_NODE_LIMIT, modelHasFailed } from "../../../src/tasks/model-failure";

describe("modelHasFailed", () => {
  it("waits for a second node while other eligible nodes remain", () => {
    expect(MODEL_FAILURE_NODE_LIMIT).toBe(2);
    expect(modelHasFailed(1, 2)).toBe(false);
    expect(modelHasFailed(1, 5)).toBe(false);
    expect(modelHasFailed(2, 5)).toBe(true);
  });

  it("fails at once when the failing node is the only one that could serve it", () => {
    expect(modelHasFailed(1, 1)).toBe(true);
  });
});
