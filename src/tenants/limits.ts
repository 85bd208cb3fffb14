// A key's limits (issue 14): configured defaults (src/config.ts) under an admin's per-key
// overrides (PUT /keys/{id}/limits, stored on the key's row). Pure: no I/O.
import { z } from "zod";
import type { TenantShare } from "../queue/types";

export const keyLimitsSchema = z.object({
  requestsPerMinute: z.number().int().min(1).max(1_000_000).describe("Task submissions per minute (reads are not counted)"),
  maxWaiting: z.number().int().min(0).max(1_000_000).describe("Tasks of the key waiting at once; a submission beyond is refused"),
  maxRunning: z.number().int().min(1).max(10_000).nullable().describe("Tasks of the key running at once (null: no limit); the queue holds the rest back"),
  weight: z.number().positive().max(1000).describe("Relative share of a checkpoint's GPUs when several keys wait"),
  priorityClass: z.number().int().min(0).max(100).describe("Waiting work of a higher class is served before any lower class"),
  maxWorkPerRequest: z
    .number()
    .positive()
    .max(1_000_000)
    .describe("Largest generation one request may ask, in megapixel-steps: steps × width × height × batch_size × n_iter / 10⁶, hires pass included"),
  gpuSecondsPerDay: z.number().int().min(0).nullable().describe("sd-webui seconds the key's tasks may use per UTC day (null: no limit)"),
  imagesPerDay: z.number().int().min(0).nullable().describe("Images the key's tasks may produce per UTC day (null: no limit)"),
  retentionDays: z.number().int().min(1).max(3650).describe("Days the key's images, inputs and uploads are kept"),
});
export type KeyLimits = z.infer<typeof keyLimitsSchema>;
export type LimitName = keyof KeyLimits;

/** The key's limits: each override that is still valid, else the default. */
export function effectiveLimits(defaults: KeyLimits, stored: Record<string, unknown>): KeyLimits {
  const limits: Record<string, unknown> = { ...defaults };
  for (const [name, field] of Object.entries(keyLimitsSchema.shape)) {
    if (!(name in stored)) continue;
    const parsed = field.safeParse(stored[name]);
    if (parsed.success) limits[name] = parsed.data;
  }
  return limits as KeyLimits;
}

/** The stored overrides after an admin's update: fields sent replace, fields sent as null are dropped where the limit cannot be null. */
export function mergeOverrides(stored: Record<string, unknown>, update: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...stored };
  for (const [name, value] of Object.entries(update)) {
    if (value === null && !keyLimitsSchema.shape[name as LimitName].safeParse(null).success) delete merged[name];
    else merged[name] = value;
  }
  return merged;
}

/** What an admin sends: any subset; null on a limit that cannot be null puts its default back. */
export const limitUpdateSchema = z
  .object(
    Object.fromEntries(Object.entries(keyLimitsSchema.shape).map(([name, field]) => [name, field.nullable().optional()])) as {
      [K in LimitName]: z.ZodOptional<z.ZodNullable<(typeof keyLimitsSchema.shape)[K]>>;
    },
  )
  .strict();

export function tenantShare(limits: KeyLimits): TenantShare {
  return { weight: limits.weight, priorityClass: limits.priorityClass, maxRunning: limits.maxRunning };
}
