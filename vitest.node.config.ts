// Tests that run in Node: pure modules (unit), the gpu-node agent and emulator, and the
// end-to-end suite that starts a real Worker (workerd) with real agents and emulators, and the
// browser tests of the console on that same stack.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/unit/**/*.test.ts", "test/gpu-node/**/*.test.ts", "test/emulator/**/*.test.ts", "test/e2e/**/*.test.ts", "test/browser/**/*.test.ts"],
    environment: "node",
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
  },
});
