// Models: anyone with a key lists them; admins register, update, delete and upload their files —
// in one PUT for small files, or as an R2 multipart upload (start, parts, complete) for
// checkpoints far larger than one request body.
import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import type { Caller } from "../app-env";
import { requireRole } from "../auth/middleware";
import {
  addonFileOf,
  checkpointFileOf,
  checkpointTitle,
  deleteModel,
  findModel,
  insertModel,
  isCheckpoint,
  listModels,
  type ModelRow,
  modelFolder,
  modelType,
  updateModel,
} from "../db/models";
import { liveTasksUsingAddon } from "../db/tasks";
import { ApiError } from "../errors";
import { fleetStub, queueStub } from "../fleet/stub";
import type { NodeRecord } from "../fleet/types";
import {
  MODEL_FILE_EXTENSIONS,
  MODEL_FOLDER_BY_TYPE,
  MODEL_TYPE_ALIASES,
  MODEL_TYPES,
  type ModelType,
  normalizeModelType,
  UPSCALER_FOLDERS,
} from "../protocol/model-types";
import { modelKey, uploadedModelKey } from "../storage/object-keys";
import { bearerSecurity, binarySchema, jsonContent, openApiApp, problemResponses } from "./openapi-app";

/** Names nodes and sd-webui use as they are: any script, but nothing that walks out of a folder. */
function safeName(maxLength: number) {
  return z
    .string()
    .min(1)
    .max(maxLength)
    .refine((v) => !/[/\\]/.test(v), "must not contain a path separator (/ or \\)")
    .refine((v) => !v.includes(".."), 'must not contain ".."')
    .refine((v) => !/\p{Cc}/u.test(v), "must not contain control characters")
    .refine((v) => v.trim() === v && !v.startsWith("."), "must not start with a dot or start or end with spaces");
}

function hasModelExtension(fileName: string): boolean {
  return MODEL_FILE_EXTENSIONS.some((ext) => fileName.toLowerCase().endsWith(ext));
}

const nameSchema = safeName(128);
const fileNameSchema = safeName(200).refine(hasModelExtension, `must end in ${MODEL_FILE_EXTENSIONS.join(", ")}`);
const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, "64 lowercase hex digits");
const typeSchema = z
  .string()
  .refine((t) => normalizeModelType(t) !== null, `one of ${MODEL_TYPES.join(", ")} (or the original's ${Object.keys(MODEL_TYPE_ALIASES).join(", ")})`)
  .transform((t) => normalizeModelType(t)!);

/** Largest object registration hashes itself when `ossPath` comes without `sha256`. */
const MAX_HASHED_ON_REGISTER_BYTES = 1024 * 1024 * 1024;

const modelSchema = z
  .object({
    name: z.string(),
    type: z.enum(MODEL_TYPES).or(z.string()).describe("checkpoint, vae, lora, controlnet, embedding or upscaler"),
    folder: z.string().describe("Where the file goes on a node, under sd-webui's data directory"),
    ossPath: z.string().optional().describe("The file's R2 key (admin keys only)"),
    etag: z.string(),
    status: z
      .enum(["registering", "loaded", "unloaded", "failed"])
      .describe(
        "registering: no file yet; loaded: some node has it loaded; unloaded: file ready, no node has it loaded; failed: it failed to load on the nodes (see failedReason) until a new file is uploaded",
      ),
    failedReason: z.string().nullable().describe("sd-webui's reason the file failed to load, while status is failed"),
    fileName: z.string(),
    title: z.string().describe("sd-webui's title for the checkpoint"),
    sha256: z.string().nullable(),
    sizeBytes: z.number().nullable(),
    nodes: z.array(z.string()).optional().describe("Nodes that have it loaded (admin keys only)"),
    registeredTime: z.string(),
    lastModificationTime: z.string(),
  })
  .openapi("ModelAttributes");

const registerSchema = z.object({
  name: nameSchema.describe("Any script; no path separators, '..' or control characters. May be the file's stem"),
  type: typeSchema.default("checkpoint").describe(`${MODEL_TYPES.join(", ")}; the original's ${Object.keys(MODEL_TYPE_ALIASES).join(", ")} are accepted`),
  fileName: fileNameSchema
    .optional()
    .describe(
      "File name on nodes, with its own extension; default: the ossPath object's name, else <name> if it has a model extension, else <name>.safetensors",
    ),
  folder: z.enum(UPSCALER_FOLDERS).optional().describe("Upscalers only: sd-webui's folder for the upscaler's family (default models/ESRGAN)"),
  ossPath: z
    .string()
    .min(1)
    .max(512)
    .optional()
    .describe("R2 key of a file already in the bucket; default models/<name>/<fileName>. Without sha256 the Worker hashes objects up to 1 GiB"),
  etag: z.string().min(1).max(128).optional().describe("With ossPath: the object's expected etag (the original's register body)"),
  sha256: sha256Schema.optional(),
  loadSeconds: z.number().min(0).max(3600).optional().describe("Estimated seconds to load it into sd-webui (placement weighs switches with it)"),
  inferenceSeconds: z.number().min(0).max(3600).optional().describe("Estimated seconds of one task"),
});

const updateSchema = registerSchema.omit({ name: true, etag: true }).partial();

function fieldError(path: string, message: string): ApiError {
  return new ApiError("validation_failed", `${path}: ${message}`, [{ path, message }]);
}

/** The file name a registration gives, else the ossPath object's own name, else one from the model's name. */
function defaultFileName(name: string, ossPath: string | undefined): string {
  const objectName = ossPath?.split("/").pop() ?? "";
  if (fileNameSchema.safeParse(objectName).success) return objectName;
  return hasModelExtension(name) ? name : `${name}.safetensors`;
}

/** The folder a model of `type` goes to; only upscalers choose theirs. */
function folderFor(type: ModelType, folder: string | undefined): string {
  if (folder && type !== "upscaler") throw fieldError("folder", "only upscalers choose a folder");
  return folder ?? MODEL_FOLDER_BY_TYPE[type];
}

/** Two models sharing a file on a node's disk would overwrite each other. */
async function refuseSharedFile(db: D1Database, name: string, folder: string, fileName: string): Promise<void> {
  const other = (await listModels(db)).find((m) => m.name !== name && modelFolder(m) === folder && m.fileName === fileName);
  if (other) throw new ApiError("model_exists", `Model ${other.name} already uses ${folder}/${fileName} on the nodes; choose another fileName`);
}

async function hashObject(bucket: R2Bucket, key: string): Promise<string> {
  const object = await bucket.get(key);
  if (!object) throw fieldError("ossPath", "no such object");
  const digest = new crypto.DigestStream("SHA-256");
  await object.body.pipeTo(digest);
  return hex(await digest.digest);
}

function hex(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function modelView(model: ModelRow, nodes: readonly NodeRecord[]) {
  const loadedOn = nodes.filter((n) => n.status !== "lost" && n.loadedCheckpoint === model.name);
  const status = !model.sha256 ? "registering" : model.failedReason ? "failed" : loadedOn.length > 0 ? "loaded" : "unloaded";
  return {
    name: model.name,
    type: modelType(model) ?? model.type,
    folder: modelFolder(model),
    ossPath: model.ossPath,
    etag: model.etag ?? "",
    status: status as "registering" | "loaded" | "unloaded" | "failed",
    failedReason: model.failedReason,
    fileName: model.fileName,
    title: checkpointTitle(model),
    sha256: model.sha256,
    sizeBytes: model.sizeBytes,
    nodes: loadedOn.map((n) => n.nodeId),
    registeredTime: new Date(model.registeredAt).toISOString(),
    lastModificationTime: new Date(model.updatedAt).toISOString(),
  };
}

/** What a user key sees of a model: no node ids or storage paths. */
function viewFor(caller: Caller, view: ReturnType<typeof modelView>) {
  if (caller.role === "admin") return view;
  const { nodes: _nodes, ossPath: _ossPath, ...tenantView } = view;
  return tenantView;
}

const NOT_FAILED = { failedReason: null, failedAt: null } as const;

async function existingModel(db: D1Database, name: string): Promise<ModelRow> {
  const model = await findModel(db, name);
  if (!model) throw new ApiError("model_not_found", `No model named ${JSON.stringify(name)}`);
  return model;
}

/**
 * A new file (`object`, wherever it was written): the registry points at it, the previous object
 * goes, the model is no longer failed, and nodes that failed the old one may try it.
 */
async function recordFile(env: Env, model: ModelRow, object: R2Object, sha256: string): Promise<ModelRow> {
  const changes = {
    ossPath: object.key,
    sha256,
    sizeBytes: object.size,
    etag: object.etag,
    updatedAt: Date.now(),
    ...(model.sha256 !== sha256 ? NOT_FAILED : {}),
  };
  await updateModel(env.DB, model.name, changes);
  if (model.ossPath !== object.key) await env.BUCKET.delete(model.ossPath);
  const updated = { ...model, ...changes };
  if (model.sha256 !== sha256) await fileChanged(env, updated);
  return updated;
}

/** After a model's file changed: nodes that failed the old one may try it, and waiting tasks take the new one. */
async function fileChanged(env: Env, model: ModelRow): Promise<void> {
  await fleetStub(env).clearModelFailures(model.name);
  const { sha256 } = model;
  if (!sha256) return;
  if (isCheckpoint(model)) {
    await queueStub(env, model.name).replaceCheckpointFile(checkpointFileOf({ ...model, sha256 }));
    return;
  }
  const checkpoints = new Set((await liveTasksUsingAddon(env.DB, model.name)).map((task) => task.checkpoint));
  const file = addonFileOf({ ...model, sha256 });
  await Promise.all([...checkpoints].map((checkpoint) => queueStub(env, checkpoint).replaceAddonFile(file)));
}

const user = [requireRole("user")];
const admin = [requireRole("admin")];
const nameParam = z.object({ name: z.string().min(1) });

export const modelRoutes = openApiApp();

modelRoutes.openapi(
  createRoute({
    method: "get",
    path: "/models",
    summary: "Registered models",
    tags: ["models"],
    security: bearerSecurity,
    middleware: user,
    request: { query: z.object({ type: typeSchema.optional().describe("Only models of this type (ours or the original's name)") }) },
    responses: { 200: jsonContent(z.array(modelSchema), "Models"), ...problemResponses },
  }),
  async (c) => {
    const nodes = await fleetStub(c.env).listNodes();
    return c.json(
      (await listModels(c.env.DB, c.req.valid("query").type)).map((m) => viewFor(c.get("caller"), modelView(m, nodes))),
      200,
    );
  },
);

modelRoutes.openapi(
  createRoute({
    method: "get",
    path: "/models/{name}",
    summary: "One model",
    tags: ["models"],
    security: bearerSecurity,
    middleware: user,
    request: { params: nameParam },
    responses: { 200: jsonContent(modelSchema, "The model"), ...problemResponses },
  }),
  async (c) => {
    const model = await existingModel(c.env.DB, c.req.valid("param").name);
    return c.json(viewFor(c.get("caller"), modelView(model, await fleetStub(c.env).listNodes())), 200);
  },
);

modelRoutes.openapi(
  createRoute({
    method: "post",
    path: "/models",
    summary: "Register a model (admin)",
    tags: ["models"],
    security: bearerSecurity,
    middleware: admin,
    request: { body: { content: { "application/json": { schema: registerSchema } }, required: true } },
    responses: { 201: jsonContent(modelSchema, "Registered"), ...problemResponses },
  }),
  async (c) => {
    const body = c.req.valid("json");
    if (await findModel(c.env.DB, body.name)) throw new ApiError("model_exists", `Model ${body.name} already exists; PUT /models/${body.name} changes it`);
    const fileName = body.fileName ?? defaultFileName(body.name, body.ossPath);
    const folder = folderFor(body.type, body.folder);
    const ossPath = body.ossPath ?? modelKey(body.name, fileName);
    const object = body.ossPath ? await c.env.BUCKET.head(ossPath) : null;
    if (body.ossPath && !object) throw fieldError("ossPath", `no object ${ossPath} in the bucket`);
    if (body.etag && !body.ossPath) throw fieldError("etag", "only with ossPath");
    if (object && body.etag && body.etag.replaceAll('"', "") !== object.etag) throw fieldError("etag", `the object's etag is ${object.etag}`);
    await refuseSharedFile(c.env.DB, body.name, folder, fileName);
    if (object && !body.sha256 && object.size > MAX_HASHED_ON_REGISTER_BYTES)
      throw fieldError(
        "sha256",
        `required with an ossPath object over ${MAX_HASHED_ON_REGISTER_BYTES} bytes (this one has ${object.size}), so nodes can verify the file`,
      );
    const sha256 = object ? (body.sha256 ?? (await hashObject(c.env.BUCKET, ossPath))) : null;
    const now = Date.now();
    const row: ModelRow = {
      name: body.name,
      type: body.type,
      fileName,
      ossPath,
      etag: object?.etag ?? null,
      sha256,
      sizeBytes: object?.size ?? null,
      folder,
      failedReason: null,
      failedAt: null,
      loadSeconds: body.loadSeconds ?? 8,
      inferenceSeconds: body.inferenceSeconds ?? 3,
      registeredAt: now,
      updatedAt: now,
    };
    await insertModel(c.env.DB, row);
    return c.json(modelView(row, []), 201);
  },
);

modelRoutes.openapi(
  createRoute({
    method: "put",
    path: "/models/{name}",
    summary: "Update a model (admin)",
    tags: ["models"],
    security: bearerSecurity,
    middleware: admin,
    request: { params: nameParam, body: { content: { "application/json": { schema: updateSchema } }, required: true } },
    responses: { 200: jsonContent(modelSchema, "Updated"), ...problemResponses },
  }),
  async (c) => {
    const model = await existingModel(c.env.DB, c.req.valid("param").name);
    const body = c.req.valid("json");
    const changes: Partial<ModelRow> = { updatedAt: Date.now() };
    if (body.type && (body.type === "checkpoint") !== isCheckpoint(model))
      throw fieldError("type", `${model.name} is a ${modelType(model) ?? model.type}: register a new model instead of turning it into or out of a checkpoint`);
    if (body.type) changes.type = body.type;
    if (body.type || body.folder) changes.folder = folderFor(body.type ?? modelType(model) ?? "checkpoint", body.folder);
    if (body.loadSeconds !== undefined) changes.loadSeconds = body.loadSeconds;
    if (body.inferenceSeconds !== undefined) changes.inferenceSeconds = body.inferenceSeconds;
    if (body.fileName) changes.fileName = body.fileName;
    if (changes.fileName || changes.folder)
      await refuseSharedFile(c.env.DB, model.name, changes.folder ?? modelFolder(model), changes.fileName ?? model.fileName);
    if (body.ossPath) {
      const object = await c.env.BUCKET.head(body.ossPath);
      if (!object) throw fieldError("ossPath", `no object ${body.ossPath} in the bucket`);
      if (!body.sha256) throw fieldError("sha256", "required with ossPath");
      Object.assign(changes, { ossPath: body.ossPath, sha256: body.sha256, sizeBytes: object.size, etag: object.etag });
    } else if (body.sha256) changes.sha256 = body.sha256;
    const newFile = changes.sha256 !== undefined && changes.sha256 !== model.sha256;
    if (newFile) Object.assign(changes, NOT_FAILED);
    await updateModel(c.env.DB, model.name, changes);
    if (newFile) await fileChanged(c.env, { ...model, ...changes });
    return c.json(modelView({ ...model, ...changes }, await fleetStub(c.env).listNodes()), 200);
  },
);

modelRoutes.openapi(
  createRoute({
    method: "delete",
    path: "/models/{name}",
    summary: "Delete a model and its file (admin)",
    tags: ["models"],
    security: bearerSecurity,
    middleware: admin,
    request: {
      params: nameParam,
      query: z.object({
        force: z
          .enum(["true", "false"])
          .default("false")
          .describe(
            "true: cancel the tasks that wait for or run on this model (or, for an add-on, that need it); otherwise they make the delete fail with 409 model_in_use",
          ),
      }),
    },
    responses: {
      200: jsonContent(
        z.object({
          name: z.string(),
          deleted: z.literal(true),
          cancelledTasks: z.number().int().describe("Tasks cancelled (or asked to cancel, when running) because of the delete"),
        }),
        "Deleted",
      ),
      ...problemResponses,
    },
  }),
  async (c) => {
    const model = await existingModel(c.env.DB, c.req.valid("param").name);
    const force = c.req.valid("query").force === "true";
    if (!isCheckpoint(model)) {
      // An add-on has no queue of its own: the tasks that need it are found by their `addons`.
      const users = await liveTasksUsingAddon(c.env.DB, model.name);
      if (users.length > 0 && !force) {
        const running = users.filter((t) => t.status === "running").length;
        throw new ApiError(
          "model_in_use",
          `${users.length - running} waiting and ${running} running tasks use ${model.name}; DELETE /models/${model.name}?force=true cancels them`,
        );
      }
      await deleteModel(c.env.DB, model.name);
      await c.env.BUCKET.delete(model.ossPath);
      const outcomes = await Promise.all(users.map((t) => queueStub(c.env, t.checkpoint).cancel(t.uid)));
      return c.json({ name: model.name, deleted: true as const, cancelledTasks: outcomes.filter((o) => o !== "not_live").length }, 200);
    }
    const queue = queueStub(c.env, model.name);
    if (!force) {
      const { waiting, running } = await queue.summary();
      if (waiting + running > 0) {
        throw new ApiError(
          "model_in_use",
          `${waiting} waiting and ${running} running tasks use ${model.name}; DELETE /models/${model.name}?force=true cancels them`,
        );
      }
    }
    await deleteModel(c.env.DB, model.name);
    await c.env.BUCKET.delete(model.ossPath);
    // After the rows are gone no new task can name the model; whatever is still queued ends here.
    const { cancelled, cancelling } = await queue.retire(`Model ${model.name} was deleted`);
    await fleetStub(c.env).forgetQueue(model.name);
    return c.json({ name: model.name, deleted: true as const, cancelledTasks: cancelled + cancelling }, 200);
  },
);

// The file routes read and stream bodies themselves: documented alongside.
const completeUploadSchema = z.object({
  parts: z.array(z.object({ partNumber: z.number().int().min(1).max(10_000), etag: z.string().min(1) })).min(1),
  sha256: sha256Schema.describe("The whole file's sha256; nodes verify it after download"),
});

const uploadParams = nameParam.extend({ uploadId: z.string() });
const modelFileRoute = { tags: ["models"], security: bearerSecurity };
const modelAnswer = jsonContent(modelSchema, "The model, with its new file's sha256 and size");

modelRoutes.openAPIRegistry.registerPath({
  ...modelFileRoute,
  method: "put",
  path: "/models/{name}/file",
  summary: "Upload a model's file in one request (streamed into R2 and hashed)",
  request: {
    params: nameParam,
    headers: z.object({ "x-sha256": sha256Schema.optional().describe("The file's sha256: a mismatch keeps nothing") }),
    body: { required: true, content: { "application/octet-stream": { schema: binarySchema } } },
  },
  responses: { 200: modelAnswer, ...problemResponses },
});
modelRoutes.openAPIRegistry.registerPath({
  ...modelFileRoute,
  method: "post",
  path: "/models/{name}/file/uploads",
  summary: "Start a multipart upload of a model's file (for large files)",
  request: { params: nameParam },
  responses: {
    201: jsonContent(
      z.object({ uploadId: z.string(), key: z.string(), minPartBytes: z.number().int() }),
      "Upload parts of at least minPartBytes (but the last)",
    ),
    ...problemResponses,
  },
});
modelRoutes.openAPIRegistry.registerPath({
  ...modelFileRoute,
  method: "put",
  path: "/models/{name}/file/uploads/{uploadId}/parts/{partNumber}",
  summary: "Upload one part of a multipart upload",
  request: {
    params: uploadParams.extend({ partNumber: z.number().int().min(1).max(10_000) }),
    body: { required: true, content: { "application/octet-stream": { schema: binarySchema } } },
  },
  responses: { 200: jsonContent(z.object({ partNumber: z.number().int(), etag: z.string() }), "Stored; keep the etag for complete"), ...problemResponses },
});
modelRoutes.openAPIRegistry.registerPath({
  ...modelFileRoute,
  method: "post",
  path: "/models/{name}/file/uploads/{uploadId}/complete",
  summary: "Complete a multipart upload: the parts become the model's file",
  request: { params: uploadParams, body: { required: true, content: { "application/json": { schema: completeUploadSchema } } } },
  responses: { 200: modelAnswer, ...problemResponses },
});
modelRoutes.openAPIRegistry.registerPath({
  ...modelFileRoute,
  method: "delete",
  path: "/models/{name}/file/uploads/{uploadId}",
  summary: "Abort a multipart upload",
  request: { params: uploadParams },
  responses: { 200: jsonContent(z.object({ aborted: z.literal(true) }), "Aborted"), ...problemResponses },
});

/** Streams the body into R2 while hashing it, so the file is never held in memory. */
modelRoutes.put("/models/:name/file", requireRole("admin"), async (c) => {
  const model = await existingModel(c.env.DB, c.req.param("name"));
  const length = Number(c.req.header("content-length"));
  if (!c.req.raw.body || !Number.isFinite(length) || length <= 0) {
    // Answering before the body is read resets the connection under the client; read it first.
    await c.req.raw.body?.pipeTo(new WritableStream());
    throw new ApiError(
      "length_required",
      "Send the file as the request body with a Content-Length (R2 stores streams of known length), or use the multipart upload: POST /models/{name}/file/uploads",
    );
  }
  const digest = new crypto.DigestStream("SHA-256");
  const [toBucket, toDigest] = c.req.raw.body.tee();
  // Written and verified under a key of its own before the registry points at it: R2 has no
  // rename, and an upload that fails its check must leave the previous file in place.
  const key = uploadedModelKey(model.name, model.fileName);
  const [object] = await Promise.all([
    c.env.BUCKET.put(key, toBucket.pipeThrough(new FixedLengthStream(length)), { httpMetadata: { contentType: "application/octet-stream" } }),
    toDigest.pipeTo(digest),
  ]);
  const sha256 = [...new Uint8Array(await digest.digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  const declared = c.req.header("x-sha256");
  if (declared && declared !== sha256) {
    await c.env.BUCKET.delete(key);
    throw new ApiError("validation_failed", `The file's sha256 is ${sha256}, not the declared ${declared}; nothing was kept`);
  }
  const updated = await recordFile(c.env, model, object!, sha256);
  return c.json(modelView(updated, []), 200);
});

/** R2's error codes (in its messages) for an upload id it does not know and for parts it does not have. */
const R2_NO_SUCH_UPLOAD = "(10024)";
const R2_INVALID_PART = "(10025)";
/** R2 (as Miniflare emulates it) reports complete and abort of an upload id it never issued as an internal error. */
const R2_INTERNAL = "(10001)";

/** Runs an R2 multipart step, turning R2's refusals of unknown uploads and parts into 404 and 422. */
async function multipartStep<T>(uploadId: string, step: () => Promise<T>, unknownIdIsInternal = false): Promise<T> {
  try {
    return await step();
  } catch (error) {
    const message = error instanceof Error ? error.message : "";
    if (message.includes(R2_NO_SUCH_UPLOAD) || (unknownIdIsInternal && message.includes(R2_INTERNAL)))
      throw new ApiError("not_found", `No multipart upload ${uploadId} in progress for this model`);
    if (message.includes(R2_INVALID_PART))
      throw new ApiError("validation_failed", "parts: one or more parts were not uploaded with these part numbers and etags; nothing changed", [
        { path: "parts", message: "unknown part or etag" },
      ]);
    throw error;
  }
}

modelRoutes.post("/models/:name/file/uploads", requireRole("admin"), async (c) => {
  const model = await existingModel(c.env.DB, c.req.param("name"));
  const upload = await c.env.BUCKET.createMultipartUpload(model.ossPath, { httpMetadata: { contentType: "application/octet-stream" } });
  return c.json({ uploadId: upload.uploadId, key: upload.key, minPartBytes: 5 * 1024 * 1024 }, 201);
});

modelRoutes.put("/models/:name/file/uploads/:uploadId/parts/:partNumber{[0-9]+}", requireRole("admin"), async (c) => {
  const model = await existingModel(c.env.DB, c.req.param("name"));
  const partNumber = Number(c.req.param("partNumber"));
  if (partNumber < 1 || partNumber > 10_000) throw new ApiError("validation_failed", "partNumber: 1 to 10000");
  if (!c.req.raw.body) throw new ApiError("bad_request", "Send the part as the request body");
  const upload = c.env.BUCKET.resumeMultipartUpload(model.ossPath, c.req.param("uploadId"));
  const body = await c.req.arrayBuffer();
  const part = await multipartStep(upload.uploadId, () => upload.uploadPart(partNumber, body));
  return c.json({ partNumber: part.partNumber, etag: part.etag }, 200);
});

modelRoutes.post("/models/:name/file/uploads/:uploadId/complete", requireRole("admin"), async (c) => {
  const model = await existingModel(c.env.DB, c.req.param("name"));
  const body = completeUploadSchema.parse(await c.req.json());
  const upload = c.env.BUCKET.resumeMultipartUpload(model.ossPath, c.req.param("uploadId"));
  const object = await multipartStep(upload.uploadId, () => upload.complete(body.parts), true);
  const updated = await recordFile(c.env, model, object, body.sha256);
  return c.json(modelView(updated, []), 200);
});

modelRoutes.delete("/models/:name/file/uploads/:uploadId", requireRole("admin"), async (c) => {
  const model = await existingModel(c.env.DB, c.req.param("name"));
  const upload = c.env.BUCKET.resumeMultipartUpload(model.ossPath, c.req.param("uploadId"));
  await multipartStep(upload.uploadId, () => upload.abort(), true);
  return c.json({ aborted: true }, 200);
});
