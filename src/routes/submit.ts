// POST /txt2img, /img2img, /extra_images: the original solution's submit API. Sync by default
// (waits for the task and answers {taskId,status,ossUrl[]}); `Request-Type: async` answers 202 at once.
import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import type { AppEnv } from "../app-env";
import { requireRole } from "../auth/middleware";
import { ApiError } from "../errors";
import { queueStub } from "../fleet/stub";
import type { TaskKind } from "../protocol/node";
import { extrasSingleRequestSchema, img2imgRequestSchema, txt2imgRequestSchema } from "../protocol/sdwebui";
import { findTaskByUid, submitTask, type TaskRow } from "../tasks/submit";
import { submitView } from "../tasks/views";
import { requestedWebhook, WEBHOOK_URL_HEADER, webhookUrlSchema } from "../tasks/webhooks";
import { bearerSecurity, jsonContent, openApiApp, problemResponses } from "./openapi-app";

/** Largest submission body: room for a few inline images in base64. */
export const MAX_SUBMISSION_BYTES = 32 * 1024 * 1024;

export const submissionBodyLimit = bodyLimit({
  maxSize: MAX_SUBMISSION_BYTES,
  onError: () => {
    throw new ApiError("payload_too_large", `Submissions are limited to ${MAX_SUBMISSION_BYTES} bytes; upload large images with POST /uploads and send their keys`);
  },
});

export const submitHeadersSchema = z.object({
  "request-type": z.enum(["sync", "async"]).optional().describe("sync (default) waits for the result; async answers 202 at once"),
  taskid: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, "taskId may hold letters, digits and . _ : - (1–128)").optional().describe("Client-chosen task id, unique per key"),
  "idempotency-key": z.string().min(1).max(256).optional().describe("Retries with the same key return the same task"),
  "task-priority": z.coerce.number().int().min(-10).max(10).optional().describe("Higher runs first among waiting tasks (default 0)"),
  [WEBHOOK_URL_HEADER]: webhookUrlSchema.optional(),
});
export type SubmitHeaders = z.infer<typeof submitHeadersSchema>;

const submitResponseSchema = z
  .object({ taskId: z.string(), status: z.string(), ossUrl: z.array(z.string()), message: z.string().optional() })
  .openapi("SubmitTaskResponse");

/** Waits (up to SYNC_WAIT_MS) for a task to end; returns its row as it then stands. */
export async function waitForTask(env: Env, task: TaskRow, timeoutMs: number): Promise<TaskRow> {
  if (task.status !== "waiting" && task.status !== "running") return task;
  const ending = await queueStub(env, task.checkpoint).waitForEnd(task.uid, timeoutMs);
  // The queue hands over what it wrote to D1, saving a read on every sync request.
  if (typeof ending === "object") return { ...task, ...ending };
  return (await findTaskByUid(env.DB, task.uid)) ?? task;
}

export function isLive(task: TaskRow): boolean {
  return task.status === "waiting" || task.status === "running";
}

async function submitAndAnswer(c: Context<AppEnv>, kind: TaskKind, body: Record<string, unknown>, headers: SubmitHeaders) {
  const origin = new URL(c.req.url).origin;
  const { task } = await submitTask(c.env, {
    caller: c.get("caller"),
    kind,
    body,
    checkpoint: typeof body.stable_diffusion_model === "string" ? body.stable_diffusion_model : null,
    vae: typeof body.sd_vae === "string" ? body.sd_vae : null,
    clientTaskId: headers.taskid ?? null,
    idempotencyKey: headers["idempotency-key"] ?? null,
    priority: headers["task-priority"] ?? 0,
    passthrough: null,
    sync: headers["request-type"] !== "async",
    webhook: requestedWebhook(headers[WEBHOOK_URL_HEADER], origin),
  });
  const config = c.get("config");
  if (headers["request-type"] === "async") return c.json(await submitView(origin, config, task), 202);
  const ended = await waitForTask(c.env, task, config.syncWaitMs);
  return c.json(await submitView(origin, config, ended), isLive(ended) ? 202 : 200);
}

function submitRoute(path: string, summary: string, schema: z.ZodType) {
  return createRoute({
    method: "post",
    path,
    summary,
    tags: ["tasks"],
    security: bearerSecurity,
    middleware: [requireRole("user"), submissionBodyLimit],
    request: { headers: submitHeadersSchema, body: { content: { "application/json": { schema } }, required: true } },
    responses: {
      200: jsonContent(submitResponseSchema, "Sync: the task ended (succeeded, failed or cancelled)"),
      202: jsonContent(submitResponseSchema, "Async, or sync that outlasted SYNC_WAIT_MS: the task is waiting or running"),
      ...problemResponses,
    },
  });
}

export const submitRoutes = openApiApp();
submitRoutes.openapi(submitRoute("/txt2img", "Text to image", txt2imgRequestSchema), (c) =>
  submitAndAnswer(c, "txt2img", c.req.valid("json") as Record<string, unknown>, c.req.valid("header")),
);
submitRoutes.openapi(submitRoute("/img2img", "Image to image (init images as base64 or upload keys)", img2imgRequestSchema), (c) =>
  submitAndAnswer(c, "img2img", c.req.valid("json") as Record<string, unknown>, c.req.valid("header")),
);
submitRoutes.openapi(submitRoute("/extra_images", "Upscale / restore one image", extrasSingleRequestSchema), (c) =>
  submitAndAnswer(c, "extras", c.req.valid("json") as Record<string, unknown>, c.req.valid("header")),
);
