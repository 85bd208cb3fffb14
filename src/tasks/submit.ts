// Turning a client request into a task: resolve the checkpoint (request, else the key's
// options), honour Idempotency-Key and client-chosen ids, move inline images to R2, store the
// D1 row `waiting`, hand it to the checkpoint's queue. Anything written is undone on failure;
// a row left behind by a Worker that stopped in between ends through ./unqueued.ts.
// The add-on models the request names must be registered (with a file) or built into the nodes'
// sd-webui; the registered ones travel with the claim so the node has them on disk.
import type { Caller } from "../app-env";
import { randomId, sha256Hex } from "../crypto";
import { addonFileOf, checkpointFileOf, isCheckpoint, listModels, type ModelRow, modelType, resolveModel } from "../db/models";
import { findPool, type PoolRow } from "../db/pools";
import { lookUpSubmission, type SubmissionLookups } from "../db/submission-lookups";
import { deleteTask, findTask, findTaskByIdempotencyKey, insertTask, type TaskRow } from "../db/tasks";
import { ApiError, type FieldError } from "../errors";
import { fleetStub, queueStub } from "../fleet/stub";
import { poolSettings } from "../pools/settings";
import type { AddonFile, ClaimedTask, TaskKind } from "../protocol/node";
import { externalizeInlineImages } from "../storage/inline-images";
import { usageRefusal, utcDayStart, workRefusal } from "../tenants/admission";
import { tenantShare } from "../tenants/limits";
import { requestWork } from "../tenants/request-work";
import { addonReferences, renameAddons } from "./addon-references";
import { embeddingNames, findRegisteredAddon, resolveAddons, webuiAddonName } from "./addon-resolution";
import { modelFailedMessage } from "./model-failure";
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
  /** A cancelled generation keeps the partial images sd-webui answers after its interrupt (the sd-webui surface). */
  keepInterruptedImages: boolean;
}

/** Largest request kept in D1 and the queue once inline images are in R2 (D1 rows stay well under their limit). */
export const MAX_STORED_REQUEST_BYTES = 512 * 1024;

/** Fields the gateway consumes; sd-webui never sees them. */
const GATEWAY_FIELDS = ["stable_diffusion_model", "sd_vae", "save_dir"];

/** The checkpoint the request itself names (sdgate's field, else sd-webui's override), if any, and the field naming it. */
function requestedCheckpoint(s: Submission): { alias: string; field: string } | null {
  const overrides = (s.body.override_settings ?? {}) as Record<string, unknown>;
  if (s.checkpoint) return { alias: s.checkpoint, field: "stable_diffusion_model" };
  if (typeof overrides.sd_model_checkpoint === "string") return { alias: overrides.sd_model_checkpoint, field: "override_settings.sd_model_checkpoint" };
  return null;
}

/** The checkpoint an alias names; a model of another type is refused as not a checkpoint. */
async function resolveCheckpoint(db: D1Database, alias: string, field: string): Promise<ModelRow> {
  const model = await resolveModel(db, alias, "checkpoint");
  if (model) return model;
  const other = await resolveModel(db, alias);
  if (other) {
    const message = `${other.name} is a ${modelType(other) ?? other.type}, not a checkpoint`;
    throw new ApiError("validation_failed", `${field}: ${message}`, [{ path: field, message }]);
  }
  throw new ApiError("model_not_found", `No model named ${JSON.stringify(alias)} is registered; GET /models lists them`);
}

/** The request's checkpoint (by exact name, else any sd-webui alias), else the key's default. */
async function chooseModel(
  db: D1Database,
  s: Submission,
  requested: { alias: string; field: string } | null,
  found: SubmissionLookups,
): Promise<{ model: ModelRow; pool: PoolRow | null }> {
  if (found.named && isCheckpoint(found.named.model)) return found.named;
  const byDefault = typeof found.options.sd_model_checkpoint === "string" ? { alias: found.options.sd_model_checkpoint, field: "sd_model_checkpoint" } : null;
  const wanted = requested ?? byDefault;
  let model: ModelRow | null = null;
  if (wanted) {
    model = await resolveCheckpoint(db, wanted.alias, wanted.field);
  } else if (s.kind === "extras" || s.kind === "extras_batch") {
    // Upscaling needs no particular checkpoint: any registered one with a file will do.
    model = (await listModels(db, "checkpoint")).find((m) => m.sha256) ?? null;
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

/**
 * The registered add-ons the request needs, as the claim carries them. Names neither registered
 * nor built into the nodes' sd-webui, and registered ones without a file, are refused together.
 */
async function requiredAddons(
  env: Env,
  s: Submission,
  found: SubmissionLookups,
): Promise<{ files: AddonFile[]; body: Record<string, unknown>; vae: string | null }> {
  // The key's default VAE (POST /options) is needed as much as one the request names.
  const keyVae = typeof found.options.sd_vae === "string" ? found.options.sd_vae : null;
  const vae = s.vae ?? keyVae;
  if (s.kind === "passthrough") return { files: [], body: s.body, vae };
  const refs = addonReferences({ ...s.body, sd_vae: vae ?? undefined }, embeddingNames(found.addons));
  if (refs.length === 0) return { files: [], body: s.body, vae };
  const allRegistered = refs.every((ref) => findRegisteredAddon(found.addons, ref));
  const catalog = allRegistered ? {} : await fleetStub(env).catalog();
  const { registered, missing, notReady } = resolveAddons(refs, found.addons, catalog);
  const errors: FieldError[] = [
    ...missing.map((ref) => ({ path: ref.path, message: `no ${ref.type} named ${JSON.stringify(ref.name)} is registered or built into the nodes' sd-webui` })),
    ...notReady.map(({ ref, model }) => ({ path: ref.path, message: `${ref.type} ${model.name} is registered but has no uploaded file yet` })),
  ];
  if (errors.length > 0) {
    const detail = `Add-on models not available: ${errors.map((e) => `${e.path}: ${e.message}`).join("; ")}`;
    throw new ApiError(missing.length > 0 ? "addon_not_found" : "model_file_missing", detail, errors);
  }
  const renames = refs.flatMap((ref) => {
    const model = findRegisteredAddon(registered, ref);
    return model ? [{ ref, to: webuiAddonName(model) }] : [];
  });
  const files = registered.map((m) => addonFileOf({ ...m, sha256: m.sha256! }));
  return { files, body: renameAddons(s.body, renames), vae: renames.find((r) => r.ref.path === "sd_vae")?.to ?? vae };
}

/** The task an Idempotency-Key already names, when it was made by this same request; else a conflict. */
function sameRequest(earlier: TaskRow, requestHash: string, idempotencyKey: string | null): TaskRow {
  if (earlier.requestHash === requestHash) return earlier;
  throw new ApiError("idempotency_conflict", `Idempotency-Key ${JSON.stringify(idempotencyKey)} was used for a different request (task ${earlier.taskId})`);
}

export async function submitTask(env: Env, s: Submission): Promise<{ task: TaskRow; created: boolean; queuePosition: number }> {
  const owner = s.caller.owner;
  const requestHash = await sha256Hex(JSON.stringify({ kind: s.kind, body: s.body, checkpoint: s.checkpoint, passthrough: s.passthrough }));
  const requested = requestedCheckpoint(s);
  const now = Date.now();
  const found = await lookUpSubmission(env.DB, owner, {
    checkpoint: requested?.alias ?? null,
    idempotencyKey: s.idempotencyKey,
    clientTaskId: s.clientTaskId,
    dayStart: utcDayStart(now),
  });
  // Another isolate may still remember a key revoked a moment ago: its work must not start again.
  if (found.revoked) throw new ApiError("unauthorized", "The API key is unknown or revoked");
  if (found.earlier) return { task: sameRequest(found.earlier, requestHash, s.idempotencyKey), created: false, queuePosition: 0 };
  const refusal = workRefusal(s.caller.limits, requestWork(s.kind, s.body)) ?? usageRefusal(s.caller.limits, found.usage, now);
  if (refusal) throw refusal;
  const options = found.options;
  const { model, pool: poolRow } = await chooseModel(env.DB, s, requested, found);
  if (!model.sha256) throw new ApiError("model_file_missing", `Model ${model.name} is registered but has no uploaded file yet`);
  if (model.failedReason) throw new ApiError("model_failed", `${modelFailedMessage(model.name, model.failedReason)}; upload a new file to use it again`);
  if (found.idTaken) throw new ApiError("task_id_conflict", `You already have a task with id ${JSON.stringify(s.clientTaskId)}`);
  const addons = await requiredAddons(env, s, found);
  const vae = addons.vae;
  const { payload, inputs, writtenKeys } = await externalizeInlineImages(env.BUCKET, owner, webuiPayload(addons.body, options));
  if (JSON.stringify(payload).length > MAX_STORED_REQUEST_BYTES) {
    await env.BUCKET.delete(writtenKeys);
    throw new ApiError("payload_too_large", `The request is over ${MAX_STORED_REQUEST_BYTES} bytes even with its images moved to storage`);
  }
  const uid = randomId("t_", 12);
  const taskId = s.clientTaskId ?? uid;
  const pool = poolSettings(model, poolRow);
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
    addons: addons.files.map((a) => a.name),
    passthroughResult: null,
    error: null,
    webuiError: null,
    timings: null,
    gpuMs: null,
    modelLoadMs: null,
    imageCount: 0,
    imagesExpiredAt: null,
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
        if (earlier) return { task: sameRequest(earlier, requestHash, s.idempotencyKey), created: false, queuePosition: 0 };
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
      model: checkpointFileOf({ ...model, sha256: model.sha256 }),
      vae,
      addons: addons.files,
      payload,
      inputs,
      passthrough: s.passthrough,
      timeoutSeconds: pool.timeoutSeconds,
      keepInterruptedImages: s.keepInterruptedImages,
    };
    const { queuePosition } = await queueStub(env, model.name).enqueue(
      {
        uid,
        taskId,
        owner,
        priority: s.priority,
        claim,
        row: writeBehind ? row : null,
        webhook: s.webhook ? { ...s.webhook, owner } : null,
        tenant: tenantShare(s.caller.limits),
      },
      pool,
    );
    return { task: row, created: true, queuePosition };
  } catch (error) {
    if (!writeBehind) await deleteTask(env.DB, uid);
    await env.BUCKET.delete(writtenKeys);
    throw error;
  }
}
