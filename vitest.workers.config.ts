// Tests of the Worker inside workerd (vitest-pool-workers) with real local D1, R2 and Durable Objects.
import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { buildConsole } from "./scripts/build-console.mjs";
import { DEV_VARS } from "./scripts/dev-secrets.ts";

export default defineConfig(async () => {
  const migrations = await readD1Migrations(path.join(import.meta.dirname, "migrations"));
  // wrangler.toml's [assets] directory: the tests see the console and the API reference as built now.
  await buildConsole();
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: { ...DEV_VARS, TEST_MIGRATIONS: migrations, LEASE_MS: "2000", CLAIM_WAIT_MS: "1000", SYNC_WAIT_MS: "5000" },
        },
      }),
    ],
    test: {
      include: ["test/worker/**/*.test.ts"],
      setupFiles: ["./test/worker/apply-migrations.ts"],
      testTimeout: 30_000,
    },
  };
});
