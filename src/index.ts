// sdgate's Worker: app assembly and the Durable Object exports.
import { OpenAPIHono } from "@hono/zod-openapi";
import { requestId } from "hono/request-id";
import { z } from "zod";
import type { AppEnv } from "./app-env";
import { readConfig } from "./config";
import { handleError, problem } from "./errors";
import { adminRoutes } from "./routes/admin";
import { autoscaleRoutes } from "./routes/autoscale";
import { imageRoutes } from "./routes/images";
import { modelRoutes } from "./routes/models";
import { nodeRoutes } from "./routes/nodes";
import { optionRoutes } from "./routes/options";
import { poolRoutes } from "./routes/pools";
import { sdapiRoutes } from "./routes/sdapi";
import { submitRoutes } from "./routes/submit";
import { taskRoutes } from "./routes/tasks";
import { uploadRoutes } from "./routes/uploads";
import { usageRoutes } from "./routes/usage";
import { webhookRoutes } from "./routes/webhooks";
import { endUnqueuedTasks } from "./tasks/unqueued";
import { sweepExpired } from "./tenants/retention";

export { Fleet } from "./fleet/fleet";
export { CheckpointQueue } from "./queue/checkpoint-queue";
export { SubmissionCounter } from "./tenants/submission-counter";

// Exported for the test that compares /openapi.json with the routes the app really serves.
export const app = new OpenAPIHono<AppEnv>();

app.use(requestId({ headerName: "Request-Id" }));
app.use(async (c, next) => {
  c.set("config", readConfig(c.env));
  await next();
});

app.route("/", submitRoutes);
app.route("/", taskRoutes);
app.route("/", modelRoutes);
app.route("/", uploadRoutes);
app.route("/", webhookRoutes);
app.route("/", imageRoutes);
app.route("/", optionRoutes);
app.route("/", poolRoutes);
app.route("/", usageRoutes);
app.route("/", adminRoutes);
app.route("/", autoscaleRoutes);
app.route("/", nodeRoutes);
app.route("/", sdapiRoutes);

app.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer", description: "API key: `Authorization: Bearer <key>`" });
app.openAPIRegistry.registerComponent("securitySchemes", "token", {
  type: "apiKey",
  in: "header",
  name: "Token",
  description: "API key (the original solution's header)",
});

const documentInfo = {
  openapi: "3.0.3",
  info: {
    title: "sdgate",
    version: "0.1.0",
    description: [
      "Stable Diffusion API: the Alibaba 'Stable Diffusion API Serverless' contract plus an sd-webui-compatible surface, on Cloudflare with a fleet of GPU nodes.",
      "",
      "**Authentication.** Every route but `/images/…` (signed URLs) and this document takes an API key, in any of three ways: `Authorization: Bearer <key>`, the original solution's `Token: <key>` header, or HTTP Basic with the key as the password (sd-webui clients). Keys have a role: `user` (tasks, uploads, options), `admin` (also models, pools, keys, nodes, metrics) or `node` (the node protocol only).",
      "",
      "**Errors** are `application/problem+json` with a `code` from a closed table; `/sdapi/v1` and `/controlnet` answer in sd-webui's own shapes.",
      "",
      "**Live progress.** `GET /tasks/{taskId}/events` streams a task's queue position, progress (with the preview) and end as Server-Sent Events; `/tasks/{taskId}/progress` answers the same when polled.",
      "",
      "The sd-webui surface also answers under any path prefix (`/<prefix>/sdapi/v1/…`), for clients whose base URL has a path.",
    ].join("\n"),
  },
  tags: [
    { name: "tasks", description: "Submit work, follow it (events or polling), read results and images" },
    { name: "uploads", description: "Input images stored once and named by key in submissions" },
    { name: "options", description: "Your default sd-webui options" },
    { name: "models", description: "The model registry: checkpoints and add-ons, their files (one request or multipart)" },
    { name: "pools", description: "Per-checkpoint settings (the original's functions API)" },
    { name: "admin", description: "Keys, nodes, metrics" },
    { name: "sdapi", description: "sd-webui's own API, so AUTOMATIC1111 clients work unchanged" },
    { name: "node protocol", description: "What GPU node agents call: register, heartbeat, claim work, report progress, upload results" },
    { name: "reference", description: "This document" },
  ],
};

// The document only changes with the code: build it once per isolate.
let openApiDocument: ReturnType<typeof app.getOpenAPIDocument> | null = null;
const documentOnce = () => (openApiDocument ??= app.getOpenAPIDocument(documentInfo));
app.openAPIRegistry.registerPath({
  method: "get",
  path: "/openapi.json",
  summary: "This document (rendered at /docs)",
  tags: ["reference"],
  responses: { 200: { description: "OpenAPI 3.0", content: { "application/json": { schema: z.record(z.string(), z.unknown()) } } } },
});
app.get("/openapi.json", (c) => c.json(documentOnce()));
// `/` (the console) and `/docs` (Swagger UI) are static assets (wrangler.toml [assets]), served before the Worker.

app.notFound((c) => problem(c, "not_found", `No route ${c.req.method} ${new URL(c.req.url).pathname}`));
app.onError(handleError);

export default {
  fetch: app.fetch,
  // wrangler.toml [triggers]: every minute, tasks a stopped Worker accepted but never queued end
  // with a reason, and images, inputs and uploads past their key's retention are removed.
  scheduled(controller, env, ctx) {
    ctx.waitUntil(endUnqueuedTasks(env));
    ctx.waitUntil(sweepExpired(env, readConfig(env).defaultLimits.retentionDays, controller.scheduledTime));
  },
} satisfies ExportedHandler<Env>;
