// D1 tables: durable records. Live queue state (order, leases, progress) lives in CheckpointQueue.
import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/** scaler: reads GET /autoscale and nothing else (KEDA, the local scaler). */
export const ROLES = ["admin", "user", "node", "scaler"] as const;
export type Role = (typeof ROLES)[number];

export const TASK_STATUSES = ["waiting", "running", "succeeded", "failed", "cancelled"] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

const nowMs = sql`(unixepoch('subsec') * 1000)`;

export const apiKeys = sqliteTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    role: text("role", { enum: ROLES }).notNull(),
    /** SHA-256 of the token, hex. The token itself is shown once, at creation. */
    tokenHash: text("token_hash").notNull(),
    /** First characters of the token, so people can tell keys apart in listings. */
    tokenPrefix: text("token_prefix").notNull(),
    createdAt: integer("created_at").notNull().default(nowMs),
    revokedAt: integer("revoked_at"),
    /** An admin's overrides of the configured default limits (src/tenants/limits.ts); absent fields take the default. */
    limits: text("limits", { mode: "json" }).$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
  },
  (t) => [uniqueIndex("api_keys_token_hash").on(t.tokenHash)],
);

export const tasks = sqliteTable(
  "tasks",
  {
    /** Internal id: what nodes and queues use, and sd-webui's force_task_id. */
    uid: text("uid").primaryKey(),
    /** Public id, unique per owner: client-chosen (`taskId` header) or equal to uid. */
    taskId: text("task_id").notNull(),
    owner: text("owner").notNull(),
    kind: text("kind", { enum: ["txt2img", "img2img", "extras", "extras_batch", "passthrough"] }).notNull(),
    checkpoint: text("checkpoint").notNull(),
    status: text("status", { enum: TASK_STATUSES }).notNull(),
    idempotencyKey: text("idempotency_key"),
    /** SHA-256 of the submitted request, to tell a retry from a different request reusing a key. */
    requestHash: text("request_hash").notNull(),
    priority: integer("priority").notNull().default(0),
    /** The request as the client sent it (inline images replaced by their R2 keys). */
    request: text("request", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
    parameters: text("parameters", { mode: "json" }).$type<Record<string, unknown>>(),
    info: text("info", { mode: "json" }).$type<unknown>(),
    imageKeys: text("image_keys", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
    /** Passthrough tasks: the node's answer, as it was. */
    passthroughResult: text("passthrough_result", { mode: "json" }).$type<{ status: number; body: unknown }>(),
    error: text("error"),
    /** sd-webui's own error answer, when sd-webui refused the request. */
    webuiError: text("webui_error", { mode: "json" }).$type<{ status: number; body: unknown }>(),
    /** Names of the registered add-on models (LoRA, VAE, ControlNet, …) the request uses. */
    addons: text("addons", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
    /** Where the node's time went (TaskTimings), as the node reported it. */
    timings: text("timings", { mode: "json" }).$type<Record<string, number>>(),
    /** Metering: sd-webui's time on the task (timings.webuiMs) and the checkpoint's load time (timings.modelMs), once ended. */
    gpuMs: integer("gpu_ms"),
    modelLoadMs: integer("model_load_ms"),
    /** Metering: images the task produced. */
    imageCount: integer("image_count").notNull().default(0),
    /** When retention (or DELETE /tasks/{id}) removed the task's images and inputs from R2. */
    imagesExpiredAt: integer("images_expired_at"),
    attempts: integer("attempts").notNull().default(0),
    nodeId: text("node_id"),
    createdAt: integer("created_at").notNull(),
    startedAt: integer("started_at"),
    finishedAt: integer("finished_at"),
  },
  (t) => [
    uniqueIndex("tasks_owner_task_id").on(t.owner, t.taskId),
    uniqueIndex("tasks_owner_idempotency").on(t.owner, t.idempotencyKey),
    index("tasks_owner_created").on(t.owner, t.createdAt),
    index("tasks_status").on(t.status),
    index("tasks_owner_status").on(t.owner, t.status),
    index("tasks_owner_finished").on(t.owner, t.finishedAt),
    index("tasks_unexpired").on(t.imagesExpiredAt, t.finishedAt),
  ],
);

export const models = sqliteTable("models", {
  name: text("name").primaryKey(),
  type: text("type").notNull(),
  /** File name the checkpoint gets on a node's disk (sd-webui lists it by this name). */
  fileName: text("file_name").notNull(),
  /** R2 key of the file: `models/<name>/<fileName>`. */
  ossPath: text("oss_path").notNull(),
  etag: text("etag"),
  sha256: text("sha256"),
  sizeBytes: integer("size_bytes"),
  /** Folder under sd-webui's data directory the file goes to on a node (MODEL_FOLDER_BY_TYPE, or an upscaler's own). */
  folder: text("folder"),
  /** Set when the checkpoint failed to load on several nodes: sd-webui's reason. Cleared by a new file. */
  failedReason: text("failed_reason"),
  failedAt: integer("failed_at"),
  /** Estimated seconds (fractions allowed) to load into sd-webui and to run one task; placement uses them. */
  loadSeconds: integer("load_seconds").notNull().default(8),
  inferenceSeconds: integer("inference_seconds").notNull().default(3),
  registeredAt: integer("registered_at").notNull(),
  updatedAt: integer("updated_at").notNull(),
});

/** Per-checkpoint configuration: the original solution's "functions". Absent row = defaults. */
export const pools = sqliteTable("pools", {
  checkpoint: text("checkpoint").primaryKey(),
  concurrencyCap: integer("concurrency_cap").notNull(),
  timeoutSeconds: integer("timeout_seconds").notNull(),
  extraArgs: text("extra_args").notNull().default(""),
  env: text("env", { mode: "json" }).$type<Record<string, string>>().notNull().default(sql`'{}'`),
  minGpuMemoryMb: integer("min_gpu_memory_mb").notNull().default(0),
  gpuClass: text("gpu_class"),
  minNodes: integer("min_nodes").notNull().default(0),
  maxNodes: integer("max_nodes").notNull().default(0),
  updatedAt: integer("updated_at").notNull(),
});

/** Per-key default sd-webui options, merged under each request (the request wins). */
export const keyOptions = sqliteTable("key_options", {
  owner: text("owner").primaryKey(),
  options: text("options", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
  updatedAt: integer("updated_at").notNull(),
});

/** Images uploaded with POST /uploads (R2 `inputs/<owner>/up_…`), for GET /uploads and the retention sweep. */
export const uploads = sqliteTable(
  "uploads",
  {
    key: text("key").primaryKey(),
    owner: text("owner").notNull(),
    sizeBytes: integer("size_bytes").notNull(),
    contentType: text("content_type").notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [index("uploads_owner_created").on(t.owner, t.createdAt), index("uploads_created").on(t.createdAt)],
);
