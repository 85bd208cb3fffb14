// The sd-webui (AUTOMATIC1111) API surface, so existing A1111 clients work unchanged:
//   POST txt2img, img2img, extra-single-image, extra-batch-images   run as tasks, answer in sd-webui's shape
//   GET|POST options, GET progress, POST interrupt|skip               per caller (sd-webui's global state)
//   GET sd-models and the catalog lists, POST refresh-*               from the registry and the fleet
//   any other /sdapi/v1/* and /controlnet/* (GET|POST|PUT|DELETE)   passthrough tasks on a node; user keys
//                                                                    only for generation and read-only routes
// Errors answer in sd-webui's shapes (src/sdapi/errors.ts). The surface also answers under any
// path prefix (`/<prefix>/sdapi/v1/...`, `/<prefix>/controlnet/...`) for clients whose base URL
// has a path. Handlers parse bodies themselves (not `c.req.valid`): sd-webui's error shapes and a
// node's arbitrary statuses do not fit typed route responses; the OpenAPI document is registered
// alongside.
import { OpenAPIHono, type RouteConfig } from "@hono/zod-openapi";
import { type Context, Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { z } from "zod";
import type { AppEnv } from "../app-env";
import { requireRole } from "../auth/middleware";
import { listModels } from "../db/models";
import { currentJob } from "../db/tasks";
import { fleetStub, queueStub } from "../fleet/stub";
import { refuseDeepJson } from "../json-depth";
import { controlNetModelList, embeddingList, loraList, upscalerList, vaeList } from "../sdapi/addon-lists";
import { SdapiError, sdapiErrorHandler, zodValidationItems } from "../sdapi/errors";
import { CATALOG_LISTS, catalogList, scriptsList, sdModelItem } from "../sdapi/lists";
import { baseOptions, optionsView, setOptions } from "../sdapi/options";
import { tenantMayPassthrough } from "../sdapi/passthrough-access";
import { progressAnswer } from "../sdapi/progress";
import { coerceLikePydantic, pydanticTypeItem } from "../sdapi/pydantic-coercion";
import { runSdapiTask } from "../sdapi/run-task";
import {
  extrasBatchResponseSchema,
  extrasSingleResponseSchema,
  generationResponseSchema,
  normalizeExtrasBatch,
  optionsSchema,
  progressResponseSchema,
  sdapiExtrasBatchSchema,
  sdapiExtrasSingleSchema,
  sdapiImg2imgSchema,
  sdapiTxt2imgSchema,
  sdModelItemSchema,
  validationErrorSchema,
  webuiErrorSchema,
} from "../sdapi/schemas";
import { liveStatus } from "../tasks/live-status";
import { submissionRateLimit } from "../tenants/rate-limit";
import { extrasExample, sdapiExtrasBatchExample, sdapiImg2imgExample, sdapiTxt2imgExample } from "./request-examples";
import { submissionBodyLimit } from "./submit";

const SURFACE_PATHS = ["/sdapi/v1/*", "/controlnet/*"] as const;
const PASSTHROUGH_METHODS = ["GET", "POST", "PUT", "DELETE"] as const;

const surface = new OpenAPIHono<AppEnv>();
surface.onError(sdapiErrorHandler);

/** sd-webui stamps every answer with the seconds it took. */
const processTime = createMiddleware<AppEnv>(async (c, next) => {
  const started = Date.now();
  await next();
  try {
    c.res.headers.set("X-Process-Time", ((Date.now() - started) / 1000).toFixed(4));
  } catch {
    // Immutable headers (a streamed object): the stamp is optional.
  }
});

for (const path of SURFACE_PATHS) surface.use(path, processTime, requireRole("user"), submissionBodyLimit);

// ---- OpenAPI -------------------------------------------------------------------------------------

surface.openAPIRegistry.registerComponent("securitySchemes", "basic", {
  type: "http",
  scheme: "basic",
  description: "sd-webui clients: any user name, the API key as password",
});
const security: Array<Record<string, string[]>> = [{ basic: [] }, { bearer: [] }, { token: [] }];

function documented(
  method: RouteConfig["method"],
  path: string,
  summary: string,
  response: z.ZodType,
  options: { body?: z.ZodType; example?: Record<string, unknown>; query?: z.ZodObject } = {},
) {
  surface.openAPIRegistry.registerPath({
    method,
    path,
    summary,
    tags: ["sdapi"],
    security,
    request: {
      ...(options.body ? { body: { content: { "application/json": { schema: options.body, example: options.example } }, required: true } } : {}),
      ...(options.query ? { query: options.query } : {}),
    },
    responses: {
      200: { description: "sd-webui's answer", content: { "application/json": { schema: response } } },
      422: { description: "Request validation failed (FastAPI's shape)", content: { "application/json": { schema: validationErrorSchema } } },
      default: { description: "sd-webui's error shape", content: { "application/json": { schema: webuiErrorSchema } } },
    },
  });
}

// ---- bodies --------------------------------------------------------------------------------------

async function readJson(c: Context<AppEnv>, required: boolean): Promise<unknown> {
  const text = await c.req.text();
  if (!text.trim()) {
    if (required) throw SdapiError.validation([{ loc: ["body"], msg: "field required", type: "value_error.missing" }]);
    return {};
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw SdapiError.validation([{ loc: ["body", 0], msg: (error as Error).message, type: "value_error.jsondecode" }]);
  }
  refuseDeepJson(body);
  return body;
}

function parseBody<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw SdapiError.validation(zodValidationItems(parsed.error));
  return parsed.data;
}

/** A generation or extras body: coerced as sd-webui's pydantic models coerce, then validated. */
function parseRequestBody<T extends z.ZodObject>(schema: T, value: unknown): z.infer<T> {
  const parsed = schema.safeParse(coerceLikePydantic(schema, value));
  if (!parsed.success) throw SdapiError.validation(zodValidationItems(parsed.error).map((item) => pydanticTypeItem(schema, item)));
  return parsed.data;
}

function asRecord(value: unknown): Record<string, unknown> {
  return value as Record<string, unknown>;
}

// ---- generation and extras: tasks -----------------------------------------------------------------

documented("post", "/sdapi/v1/txt2img", "Text to image (sd-webui); runs as a task", generationResponseSchema, {
  body: sdapiTxt2imgSchema,
  example: sdapiTxt2imgExample,
});
surface.post("/sdapi/v1/txt2img", submissionRateLimit, async (c) => {
  const body = parseRequestBody(sdapiTxt2imgSchema, await readJson(c, true));
  return runSdapiTask(c, { kind: "txt2img", body: asRecord(body), passthrough: null, record: true });
});

documented("post", "/sdapi/v1/img2img", "Image to image (sd-webui); runs as a task", generationResponseSchema, {
  body: sdapiImg2imgSchema,
  example: sdapiImg2imgExample,
});
surface.post("/sdapi/v1/img2img", submissionRateLimit, async (c) => {
  const body = parseRequestBody(sdapiImg2imgSchema, await readJson(c, true));
  if (!body.init_images) throw SdapiError.http(404, "Init image not found");
  return runSdapiTask(c, { kind: "img2img", body: asRecord(body), passthrough: null, record: true });
});

documented("post", "/sdapi/v1/extra-single-image", "Upscale / restore one image (sd-webui); runs as a task", extrasSingleResponseSchema, {
  body: sdapiExtrasSingleSchema,
  example: extrasExample,
});
surface.post("/sdapi/v1/extra-single-image", submissionRateLimit, async (c) => {
  const body = parseRequestBody(sdapiExtrasSingleSchema, await readJson(c, true));
  return runSdapiTask(c, { kind: "extras", body: asRecord(body), passthrough: null, record: true });
});

documented("post", "/sdapi/v1/extra-batch-images", "Upscale / restore a list of images (sd-webui); runs as a task", extrasBatchResponseSchema, {
  body: sdapiExtrasBatchSchema,
  example: sdapiExtrasBatchExample,
});
surface.post("/sdapi/v1/extra-batch-images", submissionRateLimit, async (c) => {
  const body = parseRequestBody(sdapiExtrasBatchSchema, normalizeExtrasBatch(await readJson(c, true)));
  return runSdapiTask(c, { kind: "extras_batch", body: asRecord(body), passthrough: null, record: true });
});

// ---- per-caller state ---------------------------------------------------------------------------

async function fleetOptions(env: Env): Promise<Record<string, unknown>> {
  return baseOptions((await fleetStub(env).catalog()).options ?? {});
}

documented("get", "/sdapi/v1/options", "Your settings: every option the nodes report, under your key options", optionsSchema);
surface.get("/sdapi/v1/options", async (c) => c.json(await optionsView(c.env.DB, c.get("caller").owner, await fleetOptions(c.env))));

documented("post", "/sdapi/v1/options", "Set your settings; sd_model_checkpoint sets your default checkpoint", z.null(), { body: optionsSchema });
surface.post("/sdapi/v1/options", async (c) => {
  const body = parseBody(z.record(z.string(), z.unknown()), await readJson(c, true));
  await setOptions(c.env.DB, c.get("caller").owner, body, await fleetOptions(c.env));
  return c.json(null);
});

const progressQuery = z.object({
  skip_current_image: z.string().optional().describe("true leaves out the live preview"),
});
const TRUE_WORDS = new Set(["true", "1", "yes", "on"]);

documented("get", "/sdapi/v1/progress", "Progress of your current job (most recent running, else waiting)", progressResponseSchema, { query: progressQuery });
surface.get("/sdapi/v1/progress", async (c) => {
  // The npm client `stable-diffusion-api` spells the flag skipCurrentImage.
  const skip = TRUE_WORDS.has((c.req.query("skip_current_image") ?? c.req.query("skipCurrentImage") ?? "").toLowerCase());
  const task = await currentJob(c.env.DB, c.get("caller").owner);
  const live = task ? await liveStatus(c.env, task) : null;
  return c.json(progressAnswer(task, live, skip));
});

documented("post", "/sdapi/v1/interrupt", "Cancel your current job (most recent running, else waiting)", z.object({}));
surface.post("/sdapi/v1/interrupt", async (c) => {
  const task = await currentJob(c.env.DB, c.get("caller").owner);
  if (task) await queueStub(c.env, task.checkpoint).cancel(task.uid);
  return c.json({});
});

documented("post", "/sdapi/v1/skip", "No-op: sdgate does not skip single images of a batch", z.null());
surface.post("/sdapi/v1/skip", (c) => c.json(null));

// ---- lists ----------------------------------------------------------------------------------------

documented("get", "/sdapi/v1/sd-models", "Registered checkpoints that have a file", z.array(sdModelItemSchema));
surface.get("/sdapi/v1/sd-models", async (c) => c.json((await listModels(c.env.DB, "checkpoint")).filter((m) => m.sha256).map(sdModelItem)));

/** Lists of add-ons: the registered ones merged with what the nodes have built in (nodes send loras without their bulky metadata). */
const ADDON_LISTS = {
  "/sdapi/v1/loras": loraList,
  "/sdapi/v1/sd-vae": vaeList,
  "/sdapi/v1/upscalers": upscalerList,
  "/sdapi/v1/embeddings": embeddingList,
  "/controlnet/model_list": controlNetModelList,
} as const;

for (const [path, list] of Object.entries(ADDON_LISTS)) {
  documented("get", path, "Registered add-ons merged with what the nodes have built in", z.unknown());
  surface.get(path, async (c) => {
    const [models, catalog] = await Promise.all([listModels(c.env.DB), fleetStub(c.env).catalog()]);
    return c.json(list(models, catalog));
  });
}

for (const list of CATALOG_LISTS) {
  documented("get", `/sdapi/v1/${list}`, `sd-webui's ${list}, merged over the nodes that reported them`, z.array(z.unknown()));
  surface.get(`/sdapi/v1/${list}`, async (c) => c.json(catalogList(await fleetStub(c.env).catalog(), list)));
}

documented(
  "get",
  "/sdapi/v1/scripts",
  "sd-webui's scripts per mode, merged over the nodes that reported them",
  z.object({ txt2img: z.array(z.unknown()), img2img: z.array(z.unknown()) }),
);
surface.get("/sdapi/v1/scripts", async (c) => c.json(scriptsList(await fleetStub(c.env).catalog())));

// Nodes rescan their own folders when they fetch a model; these are accepted and do nothing.
for (const what of ["checkpoints", "vae", "loras"]) {
  documented("post", `/sdapi/v1/refresh-${what}`, "No-op (nodes keep their own lists current)", z.null());
  surface.post(`/sdapi/v1/refresh-${what}`, (c) => c.json(null));
}

// ---- passthrough ----------------------------------------------------------------------------------

/** The sd-webui path (and query) of a request, without the client's base-URL prefix. */
function webuiPath(c: Context<AppEnv>): string {
  const url = new URL(c.req.url);
  const starts = ["/sdapi/v1/", "/controlnet/"].map((marker) => url.pathname.indexOf(marker)).filter((i) => i >= 0);
  return url.pathname.slice(Math.min(...starts)) + url.search;
}

for (const base of ["/sdapi/v1", "/controlnet"]) {
  for (const method of ["get", "post", "put", "delete"] as const) {
    surface.openAPIRegistry.registerPath({
      method,
      path: `${base}/{path}`,
      summary: `Any other ${base}/… route: run on a node as a passthrough task (user keys: generation and read-only routes only; \`Task-Flag: true\` records it as a task)`,
      tags: ["sdapi"],
      security,
      request: { params: z.object({ path: z.string().describe("The rest of sd-webui's path, slashes included") }) },
      responses: {
        200: { description: "sd-webui's answer, as the node got it", content: { "application/json": { schema: z.unknown() } } },
        default: { description: "sd-webui's error shape", content: { "application/json": { schema: webuiErrorSchema } } },
      },
    });
  }
  surface.openAPIRegistry.registerPath({
    method: "patch",
    path: `${base}/{path}`,
    summary: "Not carried by the node protocol: FastAPI's 405",
    tags: ["sdapi"],
    security,
    request: { params: z.object({ path: z.string() }) },
    responses: { 405: { description: "Method Not Allowed", content: { "application/json": { schema: z.object({ detail: z.string() }) } } } },
  });
}
surface.on([...PASSTHROUGH_METHODS], [...SURFACE_PATHS], submissionRateLimit, async (c) => {
  const method = c.req.method as (typeof PASSTHROUGH_METHODS)[number];
  const path = webuiPath(c);
  if (c.get("caller").role !== "admin" && !tenantMayPassthrough(method, path)) {
    throw SdapiError.http(403, `${method} ${path.split("?")[0]} is a node-level sd-webui route: admin keys only`);
  }
  const body = await readJson(c, false);
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    throw SdapiError.validation([{ loc: ["body"], msg: "sdgate forwards JSON object bodies only", type: "type_error.dict" }]);
  }
  const record = (c.req.header("task-flag") ?? "").toLowerCase() === "true";
  return runSdapiTask(c, { kind: "passthrough", body: asRecord(body), passthrough: { method, path }, record });
});

// The node protocol carries only these four methods; others get FastAPI's answer for an unknown method.
surface.on(["PATCH"], [...SURFACE_PATHS], (c) => c.json({ detail: "Method Not Allowed" }, 405));

// ---- mounting -------------------------------------------------------------------------------------

/** The same surface under any path prefix; not in the OpenAPI document (a plain Hono app carries no registry). */
const prefixed = new Hono<AppEnv>().route("/:prefix{.+}", surface);

export const sdapiRoutes = new OpenAPIHono<AppEnv>();
sdapiRoutes.route("/", surface);
sdapiRoutes.route("/", prefixed);
