// POST /txt2img, /img2img, /extra_images: the original solution's submit API. Sync by default
// (waits for the task and answers {taskId,status,ossUrl[]}); `Request-Type: async` answers 202 at once.
import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import type { AppEnv } from "../app-env";
import { requireRole } from "../auth/middleware";
import { ApiError } from "../errors";
import type { TaskKind } from "../protocol/node";
import { extrasSingleRequestSchema, img2imgRequestSchema, txt2imgRequestSchema } from "../protocol/sdwebui";
import { submitTask } from "../tasks/submit";
import { type SubmitHeaders, submitHeadersSchema } from "../tasks/submit-headers";
import { submitView } from "../tasks/views";
import { isLive, waitForTask } from "../tasks/wait";
import { requestedWebhook, WEBHOOK_URL_HEADER } from "../tasks/webhooks";
import { submissionRateLimit } from "../tenants/rate-limit";
import { bearerSecurity, jsonContent, openApiApp, problemResponses } from "./openapi-app";
import { extrasExample, img2imgExample, txt2imgExample } from "./request-examples";

/** Largest submission body: room for a few inline images in base64. */
export const MAX_SUBMISSION_BYTES = 32 * 1024 * 1024;

export const submissionBodyLimit = bodyLimit({
  maxSize: MAX_SUBMISSION_BYTES,
  onError: () => {
    throw new ApiError(
      "payload_too_large",
      `Submissions are limited to ${MAX_SUBMISSION_BYTES} bytes; upload large images with POST /uploads and send their keys`,
    );
  },
});

const submitResponseSchema = z
  .object({ taskId: z.string(), status: z.string(), ossUrl: z.array(z.string()), message: z.string().optional() })
  .openapi("SubmitTaskResponse");

async function submitAndAnswer(c: Context<AppEnv>, kind: TaskKind, body: Record<string, unknown>, headers: SubmitHeaders) {
  const origin = new URL(c.req.url).origin;
  const config = c.get("config");
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
    webhook: requestedWebhook(headers[WEBHOOK_URL_HEADER], origin, config),
    keepInterruptedImages: false,
  });
  if (headers["request-type"] === "async") return c.json(await submitView(origin, config, task), 202);
  const ended = await waitForTask(c.env, task, config.syncWaitMs);
  return c.json(await submitView(origin, config, ended), isLive(ended) ? 202 : 200);
}

function submitRoute(path: string, summary: string, schema: z.ZodType, example: Record<string, unknown>) {
  return createRoute({
    method: "post",
    path,
    summary,
    tags: ["tasks"],
    security: bearerSecurity,
    middleware: [requireRole("user"), submissionRateLimit, submissionBodyLimit],
    request: { headers: submitHeadersSchema, body: { content: { "application/json": { schema, example } }, required: true } },
    responses: {
      200: jsonContent(submitResponseSchema, "Sync: the task ended (succeeded, failed or cancelled)"),
      202: jsonContent(submitResponseSchema, "Async, or sync that outlasted SYNC_WAIT_MS: the task is waiting or running"),
      ...problemResponses,
    },
  });
}

export const submitRoutes = openApiApp();
submitRoutes.openapi(submitRoute("/txt2img", "Text to image", txt2imgRequestSchema, txt2imgExample), (c) =>
  submitAndAnswer(c, "txt2img", c.req.valid("json") as Record<string, unknown>, c.req.valid("header")),
);
submitRoutes.openapi(submitRoute("/img2img", "Image to image (init images as base64 or upload keys)", img2imgRequestSchema, img2imgExample), (c) =>
  submitAndAnswer(c, "img2img", c.req.valid("json") as Record<string, unknown>, c.req.valid("header")),
);
submitRoutes.openapi(submitRoute("/extra_images", "Upscale / restore one image", extrasSingleRequestSchema, extrasExample), (c) =>
  submitAndAnswer(c, "extras", c.req.valid("json") as Record<string, unknown>, c.req.valid("header")),
);
