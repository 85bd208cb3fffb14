// sdgate's Worker: app assembly and the Durable Object exports.
import { OpenAPIHono } from "@hono/zod-openapi";
import { requestId } from "hono/request-id";
import type { AppEnv } from "./app-env";
import { readConfig } from "./config";
import { handleError, problem } from "./errors";
import { adminRoutes } from "./routes/admin";
import { renderDocsPage } from "./routes/docs-page";
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

const app = new OpenAPIHono<AppEnv>();

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
app.route("/", nodeRoutes);
app.route("/", sdapiRoutes);

app.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer", description: "API key" });
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
    description:
      "Stable Diffusion API: the Alibaba 'Stable Diffusion API Serverless' contract plus an sd-webui-compatible surface, on Cloudflare with a fleet of GPU nodes.",
  },
};

// The document only changes with the code: build it once per isolate.
let openApiDocument: ReturnType<typeof app.getOpenAPIDocument> | null = null;
const documentOnce = () => (openApiDocument ??= app.getOpenAPIDocument(documentInfo));
app.get("/openapi.json", (c) => c.json(documentOnce()));
app.get("/docs", (c) => c.html(renderDocsPage(documentOnce() as unknown as Parameters<typeof renderDocsPage>[0])));
app.get("/", (c) => c.redirect("/docs"));

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
