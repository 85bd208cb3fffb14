// Turning a client request into a task: resolve the checkpoint (request, else the key's
// options), honour Idempotency-Key and client-chosen ids, move inline images to R2, store the
// D1 row `waiting`, hand it to the checkpoint's queue. Anything written is undone on failure.
import type { Caller } from "../app-env";
import { randomId, sha256Hex } from "../crypto";
import { listModels, type ModelRow, resolveModel } from "../db/models";
import { findPool, type PoolRow } from "../db/pools";
import { lookUpSubmission, type SubmissionLookups } from "../db/submission-lookups";
import { deleteTask, findTask, findTaskByIdempotencyKey, insertTask, type TaskRow } from "../db/tasks";
import { ApiError } from "../errors";
import { queueStub } from "../fleet/stub";
import { poolSettings } from "../pools/settings";
import type { ClaimedTask, TaskKind } from "../protocol/node";
import { externalizeInlineImages } from "../storage/inline-images";
import type { RequestedWebhook } from "./webhooks";

export interface Submission {
  caller: Caller;
  kind: TaskKind;
  /** The request body, validated for the fields the gateway reads; unknown sd-webui fields kept. */
  body: Record<string, unknown>;
  /** The checkpoint the caller named (any sd-webui alias), if any. */
  checkpoint: string | null;
  vae: string | null;
  clientTaskId: string | null;
  idempotencyKey: string | null;
  priority: number;
  passthrough: ClaimedTask["passthrough"];
  /** The caller waits for the task's end before it answers (a sync request). */
  sync: boolean;
  /** Where to post the task's end (see ./webhooks.ts), if anywhere. */
  webhook: RequestedWebhook | null;
}

/** Largest request kept in D1 and the queue once inline images are in R2 (D1 rows stay well under their limit). */
export const MAX_STORED_REQUEST_BYTES = 512 * 1024;

/** Fields the gateway consumes; sd-webui never sees them. */
const GATEWAY_FIELDS = ["stable_diffusion_model", "sd_vae", "save_dir"];

/** The checkpoint the request itself names (sdgate's field, else sd-webui's override), if any. */
function requestedCheckpoint(s: Submission): string | null {
  const overrides = (s.body.override_settings ?? {}) as Record<string, unknown>;
  return s.checkpoint ?? (typeof overrides.sd_model_checkpoint === "string" ? overrides.sd_model_checkpoint : null);
}

/** The request's checkpoint (by exact name, else any sd-webui alias), else the key's default. */
async function chooseModel(db: D1Database, s: Submission, alias: string | null, found: SubmissionLookups): Promise<{ model: ModelRow; pool: PoolRow | null }> {
  if (found.named) return found.named;
  const wanted = alias ?? (typeof found.options.sd_model_checkpoint === "string" ? found.options.sd_model_checkpoint : null);
  let model: ModelRow | null = null;
  if (wanted) {
    model = await resolveModel(db, wanted);
    if (!model) throw new ApiError("model_not_found", `No model named ${JSON.stringify(wanted)} is registered; GET /models lists them`);
  } else if (s.kind === "extras" || s.kind === "extras_batch") {
    // Upscaling needs no particular checkpoint: any registered one with a file will do.
    model = (await listModels(db)).find((m) => m.sha256) ?? null;
  }
  if (!model) throw new ApiError("no_default_model", "Name a checkpoint in `stable_diffusion_model`, or set `sd_model_checkpoint` with POST /options");
  return { model, pool: await findPool(db, model.name) };
}

/** The body sd-webui gets: key options under request overrides, gateway fields and the checkpoint override removed (the node loads it). */
function webuiPayload(body: Record<string, unknown>, options: Record<string, unknown>): Record<string, unknown> {
  const payload: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) if (!GATEWAY_FIELDS.includes(k)) payload[k] = v;
  const { sd_model_checkpoint: _ckpt, sd_vae: _vae, ...optionOverrides } = options;
  const requestOverrides = { ...((body.override_settings ?? {}) as Record<string, unknown>) };
  delete requestOverrides.sd_model_checkpoint;
  const overrides = { ...optionOverrides, ...requestOverrides };
  // Keep the client's own (even empty) override_settings so sd-webui echoes what it was sent.
  if (Object.keys(overrides).length > 0 || body.override_settings) payload.override_settings = overrides;
  else delete payload.override_settings;
  return payload;
}

export async function submitTask(env: Env, s: Submission): Promise<{ task: TaskRow; created: boolean; queuePosition: number }> {
  const owner = s.caller.owner;
  const requestHash = await sha256Hex(JSON.stringify({ kind: s.kind, body: s.body, checkpoint: s.checkpoint, passthrough: s.passthrough }));
  const alias = requestedCheckpoint(s);
  const found = await lookUpSubmission(env.DB, owner, { checkpoint: alias, idempotencyKey: s.idempotencyKey, clientTaskId: s.clientTaskId });
  if (found.earlier) {
    if (found.earlier.requestHash !== requestHash)
      throw new ApiError(
        "idempotency_conflict",
        `Idempotency-Key ${JSON.stringify(s.idempotencyKey)} was used for a different request (task ${found.earlier.taskId})`,
      );
    return { task: found.earlier, created: false, queuePosition: 0 };
  }
  const options = found.options;
  const { model, pool: poolRow } = await chooseModel(env.DB, s, alias, found);
  if (!model.sha256) throw new ApiError("model_file_missing", `Model ${model.name} is registered but has no uploaded file yet`);
  if (found.idTaken) throw new ApiError("task_id_conflict", `You already have a task with id ${JSON.stringify(s.clientTaskId)}`);
  const vae = s.vae ?? (typeof options.sd_vae === "string" ? options.sd_vae : null);
  const { payload, inputs, writtenKeys } = await externalizeInlineImages(env.BUCKET, owner, webuiPayload(s.body, options));
  if (JSON.stringify(payload).length > MAX_STORED_REQUEST_BYTES) {
    await env.BUCKET.delete(writtenKeys);
    throw new ApiError("payload_too_large", `The request is over ${MAX_STORED_REQUEST_BYTES} bytes even with its images moved to storage`);
  }
  const uid = randomId("t_", 12);
  const taskId = s.clientTaskId ?? uid;
  const pool = poolSettings(model, poolRow);
  const now = Date.now();
  const row: TaskRow = {
    uid,
    taskId,
    owner,
    kind: s.kind,
    checkpoint: model.name,
    status: "waiting",
    idempotencyKey: s.idempotencyKey,
    requestHash,
    priority: s.priority,
    request: payload,
    parameters: null,
    info: null,
    imageKeys: [],
    addons: [],
    passthroughResult: null,
    error: null,
    webuiError: null,
    timings: null,
    attempts: 0,
    nodeId: null,
    createdAt: now,
    startedAt: null,
    finishedAt: null,
  };
  // Nobody can ask about a sync task with a generated id before it is answered, and it has no
  // unique key to race for: its queue writes the row, behind the task, keeping this D1 write
  // off the request's path. Every other task is in D1 before it is queued.
  const writeBehind = s.sync && !s.clientTaskId && !s.idempotencyKey;
  if (!writeBehind) {
    try {
      await insertTask(env.DB, row);
    } catch (error) {
      await env.BUCKET.delete(writtenKeys);
      // Lost a race with an identical id or idempotency key: answer as if we had seen it first.
      if (s.idempotencyKey) {
        const earlier = await findTaskByIdempotencyKey(env.DB, owner, s.idempotencyKey);
        if (earlier) return { task: earlier, created: false, queuePosition: 0 };
      }
      if (s.clientTaskId && (await findTask(env.DB, owner, s.clientTaskId)))
        throw new ApiError("task_id_conflict", `You already have a task with id ${JSON.stringify(s.clientTaskId)}`);
      throw error;
    }
  }
  try {
    const claim: Omit<ClaimedTask, "attempt"> = {
      id: uid,
      kind: s.kind,
      model: { name: model.name, fileName: model.fileName, sha256: model.sha256, sizeBytes: model.sizeBytes ?? 0 },
      vae,
      addons: [],
      payload,
      inputs,
      passthrough: s.passthrough,
      timeoutSeconds: pool.timeoutSeconds,
    };
    const { queuePosition } = await queueStub(env, model.name).enqueue(
      { uid, taskId, owner, priority: s.priority, claim, row: writeBehind ? row : null, webhook: s.webhook ? { ...s.webhook, owner } : null },
      pool,
    );
    return { task: row, created: true, queuePosition };
  } catch (error) {
    if (!writeBehind) await deleteTask(env.DB, uid);
    await env.BUCKET.delete(writtenKeys);
    throw error;
  }
}
