// The node protocol: what a gpu-node agent and the Worker say to each other under /nodes.
// Both sides validate with these schemas; the agent imports this file directly.
//
//   POST   /nodes/register                              RegisterRequest  → RegisterResponse
//   POST   /nodes/{nodeId}/heartbeat                    Heartbeat        → HeartbeatResponse
//   POST   /nodes/{nodeId}/claim                        ClaimRequest     → 200 ClaimResponse | 204 (no work)
//   DELETE /nodes/{nodeId}                              deregister (after draining)
//   GET    /nodes/models/{name}/file                    model bytes; honours Range for resume
//   GET    /nodes/tasks/{taskId}/inputs/{key}           input object of a held task (header Lease-Id)
//   POST   /nodes/tasks/{taskId}/progress               ProgressReport   → ProgressAnswer
//   PUT    /nodes/tasks/{taskId}/images/{index}         PNG body (header Lease-Id) → ImageUploadAnswer
//   POST   /nodes/tasks/{taskId}/complete               CompleteRequest  → {ok:true} (images uploaded before)
//   POST   /nodes/tasks/{taskId}/result                 multipart: `result` (CompleteRequest JSON) + `image` files
//                                                        → {ok:true}: images and completion in one request
//   POST   /nodes/tasks/{taskId}/fail                   FailRequest      → {ok:true}
//
// Every call about a task carries the lease id from its claim. A lease that is no longer the
// task's current one answers 409 with code `stale_lease` and changes nothing.
import { z } from "zod";
import { MODEL_TYPES } from "./model-types.ts";

export const LEASE_HEADER = "Lease-Id";

export const nodeStatusSchema = z.enum(["idle", "busy", "draining"]);
export type NodeStatus = z.infer<typeof nodeStatusSchema>;

/** sd-webui's lists, as the node's sd-webui answers them (keys are the sdapi path names). */
export const webuiCatalogSchema = z
  .object({
    samplers: z.array(z.unknown()),
    schedulers: z.array(z.unknown()),
    upscalers: z.array(z.unknown()),
    "latent-upscale-modes": z.array(z.unknown()),
    "sd-vae": z.array(z.unknown()),
    loras: z.array(z.unknown()),
    "face-restorers": z.array(z.unknown()),
    "prompt-styles": z.array(z.unknown()),
    /** sd-webui's `GET /sdapi/v1/embeddings` answer ({loaded, skipped}). */
    embeddings: z.record(z.string(), z.unknown()),
    hypernetworks: z.array(z.unknown()),
    /** `GET /sdapi/v1/scripts` ({txt2img: [...], img2img: [...]}) and `/sdapi/v1/script-info`. */
    scripts: z.record(z.string(), z.unknown()),
    "script-info": z.array(z.unknown()),
    /** Every sd-webui option with its value on this node (`GET /sdapi/v1/options`). */
    options: z.record(z.string(), z.unknown()),
    /** The ControlNet extension's `/controlnet/model_list` and `/controlnet/module_list`, when it is installed. */
    "controlnet-models": z.array(z.string()),
    "controlnet-modules": z.array(z.string()),
  })
  .partial();
export type WebuiCatalog = z.infer<typeof webuiCatalogSchema>;

/**
 * The agent process's own id, new at every start. A later registration of the node id by another
 * process fences this one out: its heartbeats, claims and deregistration get 409 node_replaced.
 * Optional for agents that predate it.
 */
export const instanceIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{8,64}$/, "8–64 letters, digits, _ or -")
  .optional();

const nodeStateFields = {
  /** Registered model name of the checkpoint loaded in sd-webui, or null. */
  loadedCheckpoint: z.string().nullable(),
  /** Registered model names whose files are on the node's disk. */
  cachedCheckpoints: z.array(z.string()),
  /** Registered add-on models (LoRA, VAE, ControlNet, …) whose files are on the node's disk. */
  cachedAddons: z.array(z.string()).default([]),
  /** Registered checkpoint names sd-webui holds in RAM (its checkpoint cache), besides the loaded one: a switch to one of them is a RAM load. */
  ramCheckpoints: z.array(z.string()).default([]),
  gpuClass: z.string().min(1),
  gpuMemoryMb: z.number().int().nonnegative(),
};

export const registerRequestSchema = z.object({
  /** Stable id the agent chooses (defaults to the host name); re-registering replaces the old entry. */
  nodeId: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9._-]+$/),
  agentVersion: z.string().max(64).default("unknown"),
  catalog: webuiCatalogSchema.default({}),
  instanceId: instanceIdSchema,
  /** The node group (issue 15) it belongs to; by default derived from its GPU class and memory. */
  group: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9._-]+$/)
    .optional(),
  ...nodeStateFields,
});
export type RegisterRequest = z.input<typeof registerRequestSchema>;
export type RegisterBody = z.output<typeof registerRequestSchema>;

export const registerResponseSchema = z.object({
  nodeId: z.string(),
  heartbeatIntervalMs: z.number().int().positive(),
  leaseMs: z.number().int().positive(),
  claimWaitMs: z.number().int().positive(),
  /** Extra sd-webui command-line arguments from the pools this node may serve. */
  webuiExtraArgs: z.string().default(""),
});
export type RegisterResponse = z.infer<typeof registerResponseSchema>;

export const heartbeatSchema = z.object({
  status: nodeStatusSchema,
  currentTaskId: z.string().nullable(),
  catalog: webuiCatalogSchema.optional(),
  instanceId: instanceIdSchema,
  /** Registered name of the checkpoint whose file it is fetching in the background (a prefetch), or null: other nodes fetch other files. */
  fetchingCheckpoint: z.string().nullable().optional(),
  ...nodeStateFields,
});
export type Heartbeat = z.infer<typeof heartbeatSchema>;

export const claimRequestSchema = z.object({
  /** How long the Worker may hold the request open waiting for work (capped by the Worker). */
  waitMs: z.number().int().min(0).max(60_000).default(20_000),
  /** What the node has loaded and cached as it asks: fresher than its last heartbeat, and what placement decides by. */
  loadedCheckpoint: z.string().nullable().optional(),
  cachedCheckpoints: z.array(z.string()).optional(),
  cachedAddons: z.array(z.string()).optional(),
  ramCheckpoints: z.array(z.string()).optional(),
  instanceId: instanceIdSchema,
});
export type ClaimRequest = z.input<typeof claimRequestSchema>;

export const taskKindSchema = z.enum(["txt2img", "img2img", "extras", "extras_batch", "passthrough"]);
export type TaskKind = z.infer<typeof taskKindSchema>;

/** The sd-webui endpoint each task kind runs on (passthrough carries its own). */
export const WEBUI_PATH_BY_KIND: Record<Exclude<TaskKind, "passthrough">, string> = {
  txt2img: "/sdapi/v1/txt2img",
  img2img: "/sdapi/v1/img2img",
  extras: "/sdapi/v1/extra-single-image",
  extras_batch: "/sdapi/v1/extra-batch-images",
};

export const modelFileSchema = z.object({
  /** Registered model name, e.g. "demo-v1"; the checkpoint's file on the node is `fileName`. */
  name: z.string(),
  fileName: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  sizeBytes: z.number().int().nonnegative(),
});
export type ModelFile = z.infer<typeof modelFileSchema>;

export const heartbeatResponseSchema = z.object({
  /** An admin asked for sd-webui to be restarted; do it when idle. */
  restartWebui: z.boolean(),
  /** The fleet scales in and chose this node: finish the current task, deregister and stop (as on SIGTERM). */
  drain: z.boolean().default(false),
  /**
   * Checkpoint files to fetch in the background while the node goes on serving (work only nodes
   * like this one may run has demand and too few nodes hold its file): on disk before the work
   * reaches this node. Only what fits without evicting another file; one download at a time.
   */
  prefetch: z.array(modelFileSchema).default([]),
  /** Until the next heartbeat: longer as the fleet grows, so all nodes' heartbeats stay within a fixed rate (absent from older Workers: keep the registered one). */
  heartbeatIntervalMs: z.number().int().positive().optional(),
});
export type HeartbeatResponse = z.infer<typeof heartbeatResponseSchema>;

/**
 * An add-on file a task needs beside its checkpoint. The agent keeps it at `folder`/`fileName`
 * under sd-webui's data directory (see MODEL_FOLDER_BY_TYPE) and downloads it like a checkpoint.
 */
export const addonFileSchema = modelFileSchema.extend({
  type: z.enum(MODEL_TYPES).exclude(["checkpoint"]),
  folder: z.string().min(1),
});
export type AddonFile = z.infer<typeof addonFileSchema>;

/**
 * An input image the Worker moved to R2: the agent reads `key` through
 * `/nodes/tasks/{taskId}/inputs/{key}` and writes its base64 at `pointer` (RFC 6901) in `payload`.
 */
export const inputRefSchema = z.object({ pointer: z.string().startsWith("/"), key: z.string() });
export type InputRef = z.infer<typeof inputRefSchema>;

export const claimedTaskSchema = z.object({
  id: z.string(),
  kind: taskKindSchema,
  /** The checkpoint to have loaded before running. */
  model: modelFileSchema,
  /** VAE name for `sd_vae`, or null for sd-webui's own choice. */
  vae: z.string().nullable(),
  /** Registered add-ons (LoRA, VAE, ControlNet, embeddings, upscalers) the request names: on disk before the run. */
  addons: z.array(addonFileSchema).default([]),
  /** The sd-webui request body, with input images replaced by what `inputs` names. */
  payload: z.record(z.string(), z.unknown()),
  inputs: z.array(inputRefSchema),
  /** For passthrough tasks: the sd-webui route to call. */
  passthrough: z.object({ method: z.enum(["GET", "POST", "PUT", "DELETE"]), path: z.string().startsWith("/") }).nullable(),
  attempt: z.number().int().positive(),
  /** Seconds the pool allows one run; the agent interrupts sd-webui after it. */
  timeoutSeconds: z.number().int().positive(),
  /**
   * On a cancel, complete with the partial images sd-webui answers after the interrupt (the
   * task then ends succeeded, as sd-webui's own API does) instead of failing "cancelled".
   */
  keepInterruptedImages: z.boolean().default(false),
});
export type ClaimedTask = z.infer<typeof claimedTaskSchema>;

export const leaseSchema = z.object({
  id: z.string(),
  expiresAt: z.number().int(),
  leaseMs: z.number().int().positive(),
});
export type Lease = z.infer<typeof leaseSchema>;

export const claimResponseSchema = z.object({ task: claimedTaskSchema, lease: leaseSchema });
export type ClaimResponse = z.infer<typeof claimResponseSchema>;

export const progressReportSchema = z.object({
  leaseId: z.string(),
  /** 0..1 */
  progress: z.number().min(0).max(1),
  etaRelative: z.number().min(0).default(0),
  /** sd-webui's `state` object, or the agent's own phase ("downloading model", "loading model"). */
  state: z.record(z.string(), z.unknown()).default({}),
  /** Live preview, raw base64 or a data URI, when sd-webui gives one. */
  currentImage: z.string().nullable().default(null),
  textinfo: z.string().nullable().default(null),
});
export type ProgressReport = z.input<typeof progressReportSchema>;

export const progressAnswerSchema = z.object({
  /** The client cancelled: interrupt sd-webui, then fail "cancelled" (or complete, see `keepInterruptedImages`). */
  cancel: z.boolean(),
  leaseExpiresAt: z.number().int(),
});
export type ProgressAnswer = z.infer<typeof progressAnswerSchema>;

export const imageUploadAnswerSchema = z.object({ key: z.string() });

/** Where a node's time on a task went, in milliseconds. */
export const taskTimingsSchema = z
  .object({
    /** Making sure the checkpoint is on disk and loaded (download, verify, load). */
    modelMs: z.number().min(0),
    /** The sd-webui request itself. */
    webuiMs: z.number().min(0),
  })
  .partial();
export type TaskTimings = z.infer<typeof taskTimingsSchema>;

export const completeRequestSchema = z.object({
  leaseId: z.string(),
  /** Images uploaded with PUT .../images/{index}, indexes 0..imageCount-1. */
  imageCount: z.number().int().min(0).max(256),
  /** sd-webui's `parameters` echo. */
  parameters: z.record(z.string(), z.unknown()).default({}),
  /** sd-webui's `info`, parsed from its JSON string when it was one. */
  info: z.unknown().default(null),
  /** Passthrough tasks: sd-webui's answer as it was (status and JSON body). */
  passthroughResult: z.object({ status: z.number().int(), body: z.unknown() }).nullable().default(null),
  timings: taskTimingsSchema.default({}),
});
export type CompleteRequest = z.input<typeof completeRequestSchema>;

export const failRequestSchema = z.object({
  leaseId: z.string(),
  /** What went wrong, as sd-webui said it (never a stack trace). */
  error: z.string().max(4000),
  /** True when another attempt might succeed (sd-webui crashed, node shutting down). */
  retryable: z.boolean().default(false),
  /**
   * With `retryable`: the node or its sd-webui failed, not the task (sd-webui crashed or its
   * connection was lost, the node is shutting down, the gateway was unreachable). Counted
   * against the Worker's MAX_INFRA_RETRIES rather than MAX_ATTEMPTS.
   */
  infrastructure: z.boolean().default(false),
  /** sd-webui's own error answer, kept so the A1111 surface can answer in sd-webui's shape. */
  webuiError: z.object({ status: z.number().int(), body: z.unknown() }).nullable().default(null),
  /**
   * The node could not run the task on the weights it asked for: sd-webui failed to load the
   * checkpoint (`load_failed`), or answered with another model's hash (`wrong_weights`). The task
   * goes back to the queue for another node, and placement stops sending this checkpoint here.
   */
  modelFailure: z
    .object({
      checkpoint: z.string(),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      kind: z.enum(["load_failed", "wrong_weights"]),
      reason: z.string().max(4000),
    })
    .nullable()
    .default(null),
});
export type FailRequest = z.input<typeof failRequestSchema>;
