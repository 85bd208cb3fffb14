// The Worker's settings, read from its vars (wrangler.toml) and secrets, validated once per request.
import { z } from "zod";
import { ApiError } from "./errors";

/** Values committed in wrangler.toml for local development; refused in production. */
export const DEV_ADMIN_TOKEN = "sdgate-dev-admin-token";
export const DEV_SIGNING_SECRET = "sdgate-dev-signing-secret";

const intFromString = (min: number) => z.coerce.number().int().min(min);

const configSchema = z.object({
  ENVIRONMENT: z.string().default("development"),
  ADMIN_TOKEN: z.string().min(16, "ADMIN_TOKEN must be at least 16 characters"),
  SIGNING_SECRET: z.string().min(16, "SIGNING_SECRET must be at least 16 characters"),
  SIGNED_URL_TTL_SECONDS: intFromString(1).default(3600),
  LEASE_MS: intFromString(100).default(30_000),
  MAX_ATTEMPTS: intFromString(1).default(3),
  MAX_INFRA_RETRIES: intFromString(0).default(10),
  HEARTBEAT_INTERVAL_MS: intFromString(100).default(5000),
  CLAIM_WAIT_MS: intFromString(0).default(20_000),
  SYNC_WAIT_MS: intFromString(0).default(300_000),
});

export interface Config {
  environment: string;
  adminToken: string;
  signingSecret: string;
  signedUrlTtlSeconds: number;
  leaseMs: number;
  maxAttempts: number;
  maxInfraRetries: number;
  heartbeatIntervalMs: number;
  claimWaitMs: number;
  syncWaitMs: number;
}

/** Bindings do not change for the life of an isolate: parse each env object once. */
const parsedConfigs = new WeakMap<Env, Config>();

export function readConfig(env: Env): Config {
  const known = parsedConfigs.get(env);
  if (known) return known;
  const config = parseConfig(env);
  parsedConfigs.set(env, config);
  return config;
}

function parseConfig(env: Env): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    throw new ApiError("misconfigured", parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
  }
  const v = parsed.data;
  if (v.ENVIRONMENT === "production" && (v.ADMIN_TOKEN === DEV_ADMIN_TOKEN || v.SIGNING_SECRET === DEV_SIGNING_SECRET)) {
    throw new ApiError("misconfigured", "ENVIRONMENT=production with the local development ADMIN_TOKEN or SIGNING_SECRET; set real secrets");
  }
  return {
    environment: v.ENVIRONMENT,
    adminToken: v.ADMIN_TOKEN,
    signingSecret: v.SIGNING_SECRET,
    signedUrlTtlSeconds: v.SIGNED_URL_TTL_SECONDS,
    leaseMs: v.LEASE_MS,
    maxAttempts: v.MAX_ATTEMPTS,
    maxInfraRetries: v.MAX_INFRA_RETRIES,
    heartbeatIntervalMs: v.HEARTBEAT_INTERVAL_MS,
    claimWaitMs: v.CLAIM_WAIT_MS,
    syncWaitMs: v.SYNC_WAIT_MS,
  };
}
