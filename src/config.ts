// The Worker's settings, read from its vars (wrangler.toml) and secrets, validated once per request.
import { z } from "zod";
import { ApiError } from "./errors";
import type { KeyLimits } from "./tenants/limits";

/** The values dev.vars gives local development; refused unless ENVIRONMENT is exactly "development". */
export const DEV_ADMIN_TOKEN = "sdgate-dev-admin-token";
export const DEV_SIGNING_SECRET = "sdgate-dev-signing-secret";

const intFromString = (min: number) => z.coerce.number().int().min(min);

const configSchema = z.object({
  ENVIRONMENT: z.string().optional(),
  ADMIN_TOKEN: z.string().min(16, "ADMIN_TOKEN must be at least 16 characters"),
  SIGNING_SECRET: z.string().min(16, "SIGNING_SECRET must be at least 16 characters"),
  SIGNED_URL_TTL_SECONDS: intFromString(1).default(3600),
  MAX_SIGNED_URL_TTL_SECONDS: intFromString(1).default(604_800),
  LEASE_MS: intFromString(100).default(30_000),
  MAX_ATTEMPTS: intFromString(1).default(3),
  MAX_INFRA_RETRIES: intFromString(0).default(10),
  HEARTBEAT_INTERVAL_MS: intFromString(100).default(5000),
  CLAIM_WAIT_MS: intFromString(0).default(50_000),
  SYNC_WAIT_MS: intFromString(0).default(300_000),
  LOST_NODE_RETENTION_SECONDS: intFromString(0).default(86_400),
  DEFAULT_REQUESTS_PER_MINUTE: intFromString(1).default(120),
  DEFAULT_MAX_WAITING_TASKS: intFromString(0).default(1000),
  DEFAULT_MAX_RUNNING_TASKS: intFromString(0).default(0),
  DEFAULT_MAX_WORK_PER_REQUEST: z.coerce.number().positive().default(2000),
  DEFAULT_GPU_SECONDS_PER_DAY: intFromString(0).default(0),
  DEFAULT_IMAGES_PER_DAY: intFromString(0).default(0),
  DEFAULT_RETENTION_DAYS: intFromString(1).default(30),
});

export interface Config {
  /** ENVIRONMENT is exactly "development": the development secrets and loopback webhooks are allowed. */
  localDevelopment: boolean;
  adminToken: string;
  signingSecret: string;
  signedUrlTtlSeconds: number;
  /** No signed link expires later than this after it is checked or signed. */
  maxSignedUrlTtlSeconds: number;
  leaseMs: number;
  maxAttempts: number;
  maxInfraRetries: number;
  heartbeatIntervalMs: number;
  claimWaitMs: number;
  syncWaitMs: number;
  /** A lost node is dropped from the registry this long after it was last seen. */
  lostNodeRetentionMs: number;
  /** Every key's limits unless an admin overrides them (PUT /keys/{id}/limits). */
  defaultLimits: KeyLimits;
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
  const localDevelopment = v.ENVIRONMENT === "development";
  if (!localDevelopment && (v.ADMIN_TOKEN === DEV_ADMIN_TOKEN || v.SIGNING_SECRET === DEV_SIGNING_SECRET)) {
    throw new ApiError(
      "misconfigured",
      `the local development ADMIN_TOKEN or SIGNING_SECRET with ENVIRONMENT=${JSON.stringify(v.ENVIRONMENT ?? null)}: they are accepted only with ENVIRONMENT=development; set real secrets`,
    );
  }
  return {
    localDevelopment,
    adminToken: v.ADMIN_TOKEN,
    signingSecret: v.SIGNING_SECRET,
    signedUrlTtlSeconds: v.SIGNED_URL_TTL_SECONDS,
    maxSignedUrlTtlSeconds: v.MAX_SIGNED_URL_TTL_SECONDS,
    leaseMs: v.LEASE_MS,
    maxAttempts: v.MAX_ATTEMPTS,
    maxInfraRetries: v.MAX_INFRA_RETRIES,
    heartbeatIntervalMs: v.HEARTBEAT_INTERVAL_MS,
    claimWaitMs: v.CLAIM_WAIT_MS,
    syncWaitMs: v.SYNC_WAIT_MS,
    lostNodeRetentionMs: v.LOST_NODE_RETENTION_SECONDS * 1000,
    // In the vars 0 means "no limit" where a limit may be absent.
    defaultLimits: {
      requestsPerMinute: v.DEFAULT_REQUESTS_PER_MINUTE,
      maxWaiting: v.DEFAULT_MAX_WAITING_TASKS,
      maxRunning: v.DEFAULT_MAX_RUNNING_TASKS || null,
      weight: 1,
      priorityClass: 0,
      maxWorkPerRequest: v.DEFAULT_MAX_WORK_PER_REQUEST,
      gpuSecondsPerDay: v.DEFAULT_GPU_SECONDS_PER_DAY || null,
      imagesPerDay: v.DEFAULT_IMAGES_PER_DAY || null,
      retentionDays: v.DEFAULT_RETENTION_DAYS,
    },
  };
}
