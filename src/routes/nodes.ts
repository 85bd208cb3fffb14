// The node protocol (see src/protocol/node.ts): what gpu-node agents call, with a node key.
// Every call about a task carries its lease id; a stale lease gets 409 and changes nothing.
import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import type { AppEnv } from "../app-env";
import { requireNodeOrAdmin, requireRole } from "../auth/middleware";
import { checkpointFileOf, findModel, isCheckpoint } from "../db/models";
import { ApiError, problem } from "../errors";
import { fleetStub, queueStub } from "../fleet/stub";
import { refuseDeepJson } from "../json-depth";
import { logLine } from "../log";
import {
  claimRequestSchema,
  claimResponseSchema,
  completeRequestSchema,
  failRequestSchema,
  heartbeatResponseSchema,
  heartbeatSchema,
  imageUploadAnswerSchema,
  instanceIdSchema,
  LEASE_HEADER,
  progressAnswerSchema,
  progressReportSchema,
  registerRequestSchema,
  registerResponseSchema,
} from "../protocol/node";
import { NODE_ID_TAKEN, NODE_REPLACED, NODE_UNKNOWN, STALE_LEASE } from "../protocol/node-errors";
import { checkpointOfLease } from "../queue/lease-id";
import type { LeaseCheck } from "../queue/types";
import { type ByteRange, satisfiableRange } from "../storage/byte-range";
import { imageTypeOf } from "../storage/inline-images";
import { imageKey } from "../storage/object-keys";
import { markModelFailed, recordModelFailure } from "../tasks/model-failure";
import { storePassthroughImages } from "../tasks/passthrough-images";
import { removeOrphanImages } from "../tasks/task-objects";
import { binaryContent, binarySchema, jsonContent, openApiApp, problemResponses } from "./openapi-app";

const node = [requireRole("node")];
const security: Array<Record<string, string[]>> = [{ bearer: [] }];
/** The node protocol has a section of its own in the API reference, apart from what clients call. */
const NODE_PROTOCOL_TAGS = ["node protocol"];
const nodeIdParam = z.object({ nodeId: z.string().min(1).max(128) });
const taskParam = z.object({ taskId: z.string().min(1) });
const okSchema = z.object({ ok: z.literal(true) });
type CompleteBody = z.output<typeof completeRequestSchema>;

/** Largest output image a node may upload. */
const MAX_IMAGE_BYTES = 64 * 1024 * 1024;

function staleLease(uid: string): never {
  throw new ApiError(STALE_LEASE, `The lease is not task ${uid}'s current one (it expired, was retried elsewhere, or the task ended)`);
}

function taken(nodeId: string): never {
  throw new ApiError(
    NODE_ID_TAKEN,
    `Node id ${nodeId} belongs to another node key (the one that first registered it); use another --node-id, or ask an admin to release it with DELETE /nodes/${nodeId}`,
  );
}

function replaced(nodeId: string): never {
  throw new ApiError(NODE_REPLACED, `Another agent process registered as node ${nodeId} after this one; give each agent its own node id`);
}

/** The queue that granted the lease (it names it: see src/queue/lease-id.ts). */
function leaseQueue(env: Env, uid: string, leaseId: string) {
  const checkpoint = checkpointOfLease(leaseId);
  if (!checkpoint) staleLease(uid);
  return queueStub(env, checkpoint);
}

async function heldLease(c: Context<AppEnv>, uid: string, leaseId: string | undefined) {
  if (!leaseId) throw new ApiError("validation_failed", `Send the lease id in the ${LEASE_HEADER} header`);
  const queue = leaseQueue(c.env, uid, leaseId);
  const check = await queue.checkLease(uid, leaseId);
  if (!check.ok) staleLease(uid);
  return { queue, check };
}

export const nodeRoutes = openApiApp();

nodeRoutes.openapi(
  createRoute({
    method: "post",
    path: "/nodes/register",
    summary: "A node joins (or re-joins) the fleet",
    tags: NODE_PROTOCOL_TAGS,
    security,
    middleware: node,
    request: { body: { content: { "application/json": { schema: registerRequestSchema } }, required: true } },
    responses: { 200: jsonContent(registerResponseSchema, "Registered"), ...problemResponses },
  }),
  async (c) => {
    const body = c.req.valid("json");
    const config = c.get("config");
    const registered = await fleetStub(c.env).register(body, c.get("caller").keyId);
    if (registered.outcome === "node_id_taken") taken(body.nodeId);
    const { webuiExtraArgs, heartbeatIntervalMs } = registered;
    return c.json({ nodeId: body.nodeId, heartbeatIntervalMs, leaseMs: config.leaseMs, claimWaitMs: config.claimWaitMs, webuiExtraArgs }, 200);
  },
);

nodeRoutes.openapi(
  createRoute({
    method: "post",
    path: "/nodes/{nodeId}/heartbeat",
    summary: "A node says it is alive and what it has",
    tags: NODE_PROTOCOL_TAGS,
    security,
    middleware: node,
    request: { params: nodeIdParam, body: { content: { "application/json": { schema: heartbeatSchema } }, required: true } },
    responses: { 200: jsonContent(heartbeatResponseSchema, "Noted"), ...problemResponses },
  }),
  async (c) => {
    const { nodeId } = c.req.valid("param");
    const answer = await fleetStub(c.env).heartbeat(nodeId, c.req.valid("json"), c.get("caller").keyId);
    if (answer.outcome === "node_id_taken") taken(nodeId);
    if (answer.outcome === "unknown_node") throw new ApiError(NODE_UNKNOWN, "Register again: POST /nodes/register");
    if (answer.outcome === "replaced") replaced(nodeId);
    const prefetch = answer.prefetch === null ? null : await findModel(c.env.DB, answer.prefetch);
    const files = prefetch?.sha256 && isCheckpoint(prefetch) ? [checkpointFileOf({ ...prefetch, sha256: prefetch.sha256 })] : [];
    return c.json({ restartWebui: answer.restartWebui, drain: answer.drain, prefetch: files, heartbeatIntervalMs: answer.heartbeatIntervalMs }, 200);
  },
);

nodeRoutes.openapi(
  createRoute({
    method: "post",
    path: "/nodes/{nodeId}/claim",
    summary: "Long poll for a task (204 when none arrived in time)",
    tags: NODE_PROTOCOL_TAGS,
    security,
    middleware: node,
    request: { params: nodeIdParam, body: { content: { "application/json": { schema: claimRequestSchema } }, required: false } },
    responses: { 200: jsonContent(claimResponseSchema, "A task and its lease"), 204: { description: "No work arrived in time" }, ...problemResponses },
  }),
  async (c) => {
    const { nodeId } = c.req.valid("param");
    // The body is optional: without one, the defaults apply.
    const request = claimRequestSchema.parse(c.req.valid("json") ?? {});
    const waitMs = Math.min(request.waitMs, c.get("config").claimWaitMs);
    const outcome = await fleetStub(c.env).claim(nodeId, waitMs, request, c.get("caller").keyId);
    if (outcome.outcome === "node_id_taken") taken(nodeId);
    if (outcome.outcome === "unknown_node") throw new ApiError(NODE_UNKNOWN, "Register again: POST /nodes/register");
    if (outcome.outcome === "replaced") replaced(nodeId);
    if (outcome.outcome !== "claimed") return c.body(null, 204);
    return c.json({ task: outcome.task, lease: outcome.lease }, 200);
  },
);

nodeRoutes.openapi(
  createRoute({
    method: "delete",
    path: "/nodes/{nodeId}",
    summary: "A node leaves the fleet (after draining); with an admin key: remove a node in any state, lost ones too, and release its id",
    tags: NODE_PROTOCOL_TAGS,
    security,
    middleware: [requireNodeOrAdmin()],
    request: { params: nodeIdParam, query: z.object({ instanceId: instanceIdSchema }) },
    responses: { 200: jsonContent(okSchema, "Gone"), ...problemResponses },
  }),
  async (c) => {
    const { nodeId } = c.req.valid("param");
    const caller = c.get("caller");
    const outcome =
      caller.role === "admin"
        ? await fleetStub(c.env).remove(nodeId)
        : await fleetStub(c.env).deregister(nodeId, caller.keyId, c.req.valid("query").instanceId);
    if (outcome === "unknown_node") throw new ApiError(NODE_UNKNOWN);
    if (outcome === "replaced") replaced(nodeId);
    if (outcome === "node_id_taken") taken(nodeId);
    return c.json({ ok: true as const }, 200);
  },
);

// Routes that stream bytes read their requests themselves: documented alongside.
const leaseHeader = z.object({ [LEASE_HEADER.toLowerCase()]: z.string().describe("The lease id of the task's claim") });
nodeRoutes.openAPIRegistry.registerPath({
  method: "get",
  path: "/nodes/models/{name}/file",
  summary: "Download a model's file (Range requests resume a download; X-Sha256 names its hash)",
  tags: NODE_PROTOCOL_TAGS,
  security,
  request: { params: z.object({ name: z.string() }), headers: z.object({ range: z.string().optional().describe("One byte range") }) },
  responses: {
    200: binaryContent("application/octet-stream", "The whole file"),
    206: binaryContent("application/octet-stream", "The range asked for"),
    ...problemResponses,
  },
});
nodeRoutes.openAPIRegistry.registerPath({
  method: "get",
  path: "/nodes/tasks/{taskId}/inputs/{key}",
  summary: "Download an input image of a claimed task (an R2 key its claim names)",
  tags: NODE_PROTOCOL_TAGS,
  security,
  request: { params: taskParam.extend({ key: z.string() }), headers: leaseHeader },
  responses: { 200: binaryContent("image/png", "The image"), ...problemResponses },
});
nodeRoutes.openAPIRegistry.registerPath({
  method: "put",
  path: "/nodes/tasks/{taskId}/images/{index}",
  summary: "Upload output image number `index` of a claimed task (before complete)",
  tags: NODE_PROTOCOL_TAGS,
  security,
  request: {
    params: taskParam.extend({ index: z.number().int().min(0) }),
    headers: leaseHeader,
    body: { required: true, content: { "image/png": { schema: binarySchema } } },
  },
  responses: { 200: jsonContent(imageUploadAnswerSchema, "Stored"), ...problemResponses },
});
nodeRoutes.openAPIRegistry.registerPath({
  method: "post",
  path: "/nodes/tasks/{taskId}/result",
  summary: "Images and completion in one request",
  tags: NODE_PROTOCOL_TAGS,
  security,
  request: {
    params: taskParam,
    body: {
      required: true,
      content: {
        "multipart/form-data": {
          schema: z.object({
            result: z.string().describe("The complete body (as POST .../complete) as a JSON string"),
            image: z.array(binarySchema).describe("One file per image, in order"),
          }),
        },
      },
    },
  },
  responses: { 200: jsonContent(okSchema, "Recorded"), ...problemResponses },
});

nodeRoutes.get("/nodes/models/:name/file", requireRole("node"), async (c) => {
  const model = await findModel(c.env.DB, c.req.param("name"));
  if (!model) throw new ApiError("model_not_found");
  const missing = () => new ApiError("model_file_missing", `Model ${model.name} has no file in R2 at ${model.ossPath}`);
  const rangeHeader = c.req.header("range");
  let range: ByteRange | null = null;
  if (rangeHeader) {
    const head = await c.env.BUCKET.head(model.ossPath);
    if (!head) throw missing();
    range = satisfiableRange(rangeHeader, head.size);
    if (!range) {
      const refused = problem(c, "range_not_satisfiable", `Range ${rangeHeader.slice(0, 100)} is not one range within the file's ${head.size} bytes`);
      refused.headers.set("content-range", `bytes */${head.size}`);
      return refused;
    }
  }
  const object = await c.env.BUCKET.get(model.ossPath, range ? { range } : {});
  if (!object) throw missing();
  const headers = new Headers({ "content-type": "application/octet-stream", "accept-ranges": "bytes", etag: object.httpEtag });
  if (model.sha256) headers.set("x-sha256", model.sha256);
  if (range) {
    headers.set("content-range", `bytes ${range.offset}-${range.offset + range.length - 1}/${object.size}`);
    headers.set("content-length", String(range.length));
    return new Response(object.body, { status: 206, headers });
  }
  headers.set("content-length", String(object.size));
  return new Response(object.body, { status: 200, headers });
});

nodeRoutes.get("/nodes/tasks/:taskId/inputs/:key{.+}", requireRole("node"), async (c) => {
  const key = c.req.param("key");
  const { check } = await heldLease(c, c.req.param("taskId"), c.req.header(LEASE_HEADER));
  if (!check.inputKeys.includes(key)) throw new ApiError("forbidden", `${key} is not an input of this task`);
  const object = await c.env.BUCKET.get(key);
  if (!object) throw new ApiError("not_found", `Input ${key} is gone`);
  return new Response(object.body, {
    headers: { "content-type": object.httpMetadata?.contentType ?? "application/octet-stream", "content-length": String(object.size) },
  });
});

nodeRoutes.openapi(
  createRoute({
    method: "post",
    path: "/nodes/tasks/{taskId}/progress",
    summary: "Report progress; extends the lease; the answer says whether to cancel",
    tags: NODE_PROTOCOL_TAGS,
    security,
    middleware: node,
    request: { params: taskParam, body: { content: { "application/json": { schema: progressReportSchema } }, required: true } },
    responses: { 200: jsonContent(progressAnswerSchema, "Noted"), ...problemResponses },
  }),
  async (c) => {
    const uid = c.req.valid("param").taskId;
    const report = c.req.valid("json");
    const outcome = await leaseQueue(c.env, uid, report.leaseId).progress(uid, report.leaseId, report);
    if (!outcome.ok) staleLease(uid);
    return c.json({ cancel: outcome.cancel, leaseExpiresAt: outcome.leaseExpiresAt }, 200);
  },
);

nodeRoutes.put(
  "/nodes/tasks/:taskId/images/:index{[0-9]+}",
  requireRole("node"),
  bodyLimit({
    maxSize: MAX_IMAGE_BYTES,
    onError: () => {
      throw new ApiError("payload_too_large", `Images are limited to ${MAX_IMAGE_BYTES} bytes`);
    },
  }),
  async (c) => {
    const uid = c.req.param("taskId");
    const index = Number(c.req.param("index"));
    const { check } = await heldLease(c, uid, c.req.header(LEASE_HEADER));
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    const kind = imageTypeOf(bytes);
    if (!kind) throw new ApiError("unsupported_media_type", "Upload a PNG, JPEG or WEBP image");
    const key = imageKey(check.owner, check.taskId, index);
    await c.env.BUCKET.put(key, bytes, { httpMetadata: { contentType: kind.contentType } });
    return c.json(imageUploadAnswerSchema.parse({ key }), 200);
  },
);

nodeRoutes.openapi(
  createRoute({
    method: "post",
    path: "/nodes/tasks/{taskId}/complete",
    summary: "The task succeeded (or, if cancelled meanwhile, ends cancelled)",
    tags: NODE_PROTOCOL_TAGS,
    security,
    middleware: node,
    request: { params: taskParam, body: { content: { "application/json": { schema: completeRequestSchema } }, required: true } },
    responses: { 200: jsonContent(okSchema, "Recorded"), ...problemResponses },
  }),
  async (c) => {
    const uid = c.req.valid("param").taskId;
    const body = c.req.valid("json");
    const { queue, check } = await heldLease(c, uid, body.leaseId);
    const uploaded = Array.from({ length: body.imageCount }, (_, i) => imageKey(check.owner, check.taskId, i));
    const heads = await Promise.all(uploaded.map((key) => c.env.BUCKET.head(key)));
    const missing = uploaded.filter((_, i) => !heads[i]);
    if (missing.length > 0) throw new ApiError("validation_failed", `Upload these images before completing: ${missing.join(", ")}`);
    await recordCompletion(c, queue, uid, check, body, uploaded);
    return c.json({ ok: true as const }, 200);
  },
);

/** Passthrough images to R2, then the queue records the task's end (fenced by the lease). */
async function recordCompletion(
  c: Context<AppEnv>,
  queue: ReturnType<typeof queueStub>,
  uid: string,
  check: Extract<LeaseCheck, { ok: true }>,
  body: CompleteBody,
  imageKeys: string[],
): Promise<void> {
  let passthroughResult = body.passthroughResult;
  let keys = imageKeys;
  if (check.kind === "passthrough" && passthroughResult) {
    ({ result: passthroughResult, imageKeys: keys } = await storePassthroughImages(c.env.BUCKET, check.owner, check.taskId, passthroughResult));
  }
  const outcome = await queue.complete(uid, body.leaseId, { ...body, passthroughResult, imageKeys: keys });
  if (!outcome.ok) staleLease(uid);
  removeOrphansLater(c, check, keys);
}

/** After the answer, so the node's next claim does not wait for it: images the task's result does not name. */
function removeOrphansLater(c: Context<AppEnv>, check: Extract<LeaseCheck, { ok: true }>, kept: string[]): void {
  c.executionCtx.waitUntil(
    removeOrphanImages(c.env.BUCKET, check.owner, check.taskId, kept).catch((error: unknown) =>
      logLine("error", `removing images no result names failed: ${String(error).slice(0, 300)}`, { taskId: check.taskId }),
    ),
  );
}

/**
 * Images and completion in one request (multipart/form-data: a `result` field holding the
 * complete body as JSON, then one `image` file per image in order), saving a node a round trip
 * per image on every task.
 */
nodeRoutes.post(
  "/nodes/tasks/:taskId/result",
  requireRole("node"),
  bodyLimit({
    maxSize: MAX_IMAGE_BYTES * 4,
    onError: () => {
      throw new ApiError("payload_too_large", `A result is limited to ${MAX_IMAGE_BYTES * 4} bytes; upload images one by one with PUT .../images/{n}`);
    },
  }),
  async (c) => {
    const uid = c.req.param("taskId");
    if (!(c.req.header("content-type") ?? "").startsWith("multipart/form-data"))
      throw new ApiError("unsupported_media_type", "Send multipart/form-data with a `result` field and `image` files");
    const form = await c.req.formData();
    const result = form.get("result");
    if (typeof result !== "string")
      throw new ApiError("validation_failed", "result: the complete body as a JSON string is required", [{ path: "result", message: "required" }]);
    let parsed: unknown;
    try {
      parsed = JSON.parse(result);
    } catch {
      throw new ApiError("malformed_json", "result: not valid JSON");
    }
    refuseDeepJson(parsed);
    const body = completeRequestSchema.parse(parsed);
    const files = form.getAll("image").filter((f): f is File => typeof f !== "string");
    if (files.length !== body.imageCount) throw new ApiError("validation_failed", `imageCount is ${body.imageCount} but ${files.length} image files came`);
    const { queue, check } = await heldLease(c, uid, body.leaseId);
    const keys = await Promise.all(
      files.map(async (file, index) => {
        const bytes = new Uint8Array(await file.arrayBuffer());
        const kind = imageTypeOf(bytes);
        if (!kind) throw new ApiError("unsupported_media_type", `image ${index}: send PNG, JPEG or WEBP`);
        const key = imageKey(check.owner, check.taskId, index);
        await c.env.BUCKET.put(key, bytes, { httpMetadata: { contentType: kind.contentType } });
        return key;
      }),
    );
    await recordCompletion(c, queue, uid, check, body, keys);
    return c.json({ ok: true as const }, 200);
  },
);

nodeRoutes.openapi(
  createRoute({
    method: "post",
    path: "/nodes/tasks/{taskId}/fail",
    summary: "The task failed (retryable failures go back to the queue)",
    tags: NODE_PROTOCOL_TAGS,
    security,
    middleware: node,
    request: { params: taskParam, body: { content: { "application/json": { schema: failRequestSchema } }, required: true } },
    responses: { 200: jsonContent(okSchema, "Recorded"), ...problemResponses },
  }),
  async (c) => {
    const uid = c.req.valid("param").taskId;
    const { leaseId, ...failure } = c.req.valid("json");
    const { modelFailure } = failure;
    const { queue, check } = await heldLease(c, uid, leaseId);
    if (!modelFailure) {
      const outcome = await queue.fail(uid, leaseId, failure);
      if (!outcome.ok) staleLease(uid);
      // Ended without a result: whatever images the node uploaded are nobody's.
      if (outcome.status !== "waiting") removeOrphansLater(c, check, []);
      return c.json({ ok: true as const }, 200);
    }
    // The lease names the task's checkpoint; Fleet hears of the failure before the task is
    // requeued, so the failing node is never offered it again.
    const checkpoint = checkpointOfLease(leaseId) ?? modelFailure.checkpoint;
    const recorded = await recordModelFailure(c.env, check.nodeId, checkpoint, modelFailure);
    const asReported = recorded === "stale_file" ? { ...failure, modelFailure: null, retryable: true } : failure;
    const outcome = await queue.fail(uid, leaseId, asReported);
    if (!outcome.ok) staleLease(uid);
    if (recorded === "model_failed") await markModelFailed(c.env, checkpoint, modelFailure);
    return c.json({ ok: true as const }, 200);
  },
);
