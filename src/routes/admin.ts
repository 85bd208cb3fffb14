// Admin: API keys (create, list, revoke, limits), POST /restart, GET /nodes, GET /metrics (Prometheus, with GET /autoscale's figures and per-key usage counters).
import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { forgetKey, requireRole } from "../auth/middleware";
import { generateToken, hashToken, tokenPrefix } from "../auth/tokens";
import { randomId } from "../crypto";
import { type ApiKeyRow, findKey, insertKey, listKeys, revokeKey, setKeyLimits } from "../db/keys";
import { countModels } from "../db/models";
import { ROLES } from "../db/schema";
import { countTasksByStatus } from "../db/tasks";
import { usageTotals } from "../db/usage";
import { ApiError } from "../errors";
import { fleetStub } from "../fleet/stub";
import { effectiveLimits, type KeyLimits, keyLimitsSchema, limitUpdateSchema, mergeOverrides } from "../tenants/limits";
import { stopKeyWork } from "../tenants/stop-key-work";
import { bearerSecurity, jsonContent, openApiApp, problemResponses } from "./openapi-app";

const admin = [requireRole("admin")];

const keySchema = z.object({
  id: z.string(),
  name: z.string(),
  role: z.enum(ROLES),
  tokenPrefix: z.string(),
  createdAt: z.string(),
  revokedAt: z.string().nullable(),
  limits: keyLimitsSchema.describe("The key's limits in force: the configured defaults under the overrides"),
  limitOverrides: z.record(z.string(), z.unknown()).describe("What an admin set with PUT /keys/{id}/limits"),
});

function keyView(row: ApiKeyRow, defaults: KeyLimits) {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    tokenPrefix: row.tokenPrefix,
    createdAt: new Date(row.createdAt).toISOString(),
    revokedAt: row.revokedAt ? new Date(row.revokedAt).toISOString() : null,
    limits: effectiveLimits(defaults, row.limits),
    limitOverrides: row.limits,
  };
}

export const adminRoutes = openApiApp();

adminRoutes.openapi(
  createRoute({
    method: "post",
    path: "/keys",
    summary: "Create an API key; its token is shown only in this answer (admin)",
    tags: ["admin"],
    security: bearerSecurity,
    middleware: admin,
    request: {
      body: {
        content: { "application/json": { schema: z.object({ name: z.string().min(1).max(100), role: z.enum(ROLES).default("user") }) } },
        required: true,
      },
    },
    responses: { 201: jsonContent(keySchema.extend({ token: z.string() }), "Created"), ...problemResponses },
  }),
  async (c) => {
    const { name, role } = c.req.valid("json");
    const token = generateToken(role);
    const row: ApiKeyRow = {
      id: randomId("key_", 9),
      name,
      role,
      tokenHash: await hashToken(token),
      tokenPrefix: tokenPrefix(token),
      createdAt: Date.now(),
      revokedAt: null,
      limits: {},
    };
    await insertKey(c.env.DB, row);
    return c.json({ ...keyView(row, c.get("config").defaultLimits), token }, 201);
  },
);

adminRoutes.openapi(
  createRoute({
    method: "get",
    path: "/keys",
    summary: "API keys, without their tokens (admin)",
    tags: ["admin"],
    security: bearerSecurity,
    middleware: admin,
    responses: { 200: jsonContent(z.array(keySchema), "Keys"), ...problemResponses },
  }),
  async (c) =>
    c.json(
      (await listKeys(c.env.DB)).map((row) => keyView(row, c.get("config").defaultLimits)),
      200,
    ),
);

adminRoutes.openapi(
  createRoute({
    method: "put",
    path: "/keys/{id}/limits",
    summary: "Set some of a key's limits (admin); null puts a limit's default back. In force everywhere within KEY_MEMO_MS (5 s)",
    tags: ["admin"],
    security: bearerSecurity,
    middleware: admin,
    request: { params: z.object({ id: z.string() }), body: { content: { "application/json": { schema: limitUpdateSchema } }, required: true } },
    responses: { 200: jsonContent(keySchema, "The key with its limits"), ...problemResponses },
  }),
  async (c) => {
    const id = c.req.valid("param").id;
    const existing = await findKey(c.env.DB, id);
    if (!existing) throw new ApiError("not_found", `No key ${id}`);
    const row = await setKeyLimits(c.env.DB, id, mergeOverrides(existing.limits, c.req.valid("json")));
    forgetKey(id);
    if (!row) throw new ApiError("not_found", `No key ${id}`);
    return c.json(keyView(row, c.get("config").defaultLimits), 200);
  },
);

adminRoutes.openapi(
  createRoute({
    method: "delete",
    path: "/keys/{id}",
    summary:
      "Revoke an API key (admin): refused at once here, everywhere within KEY_MEMO_MS (5 s); its waiting tasks are cancelled, its running ones stopped, its image links stop working",
    tags: ["admin"],
    security: bearerSecurity,
    middleware: admin,
    request: { params: z.object({ id: z.string() }) },
    responses: {
      200: jsonContent(
        keySchema.extend({
          tasks: z.object({
            cancelled: z.number().int().describe("Waiting tasks cancelled"),
            cancelling: z.number().int().describe("Running tasks the nodes are told to stop"),
          }),
        }),
        "Revoked",
      ),
      ...problemResponses,
    },
  }),
  async (c) => {
    const id = c.req.valid("param").id;
    const row = await revokeKey(c.env.DB, id);
    forgetKey(id);
    if (!row) throw new ApiError("not_found", `No key ${id}`);
    const tasks = await stopKeyWork(c.env, id, "The API key was revoked");
    return c.json({ ...keyView(row, c.get("config").defaultLimits), tasks }, 200);
  },
);

adminRoutes.openapi(
  createRoute({
    method: "post",
    path: "/restart",
    summary: "Every node restarts its sd-webui when next idle (admin)",
    tags: ["admin"],
    security: bearerSecurity,
    middleware: admin,
    responses: { 200: jsonContent(z.object({ message: z.string(), nodes: z.number().int() }), "Requested"), ...problemResponses },
  }),
  async (c) => {
    const nodes = await fleetStub(c.env).requestRestart();
    return c.json({ message: `sd-webui restart requested on ${nodes} node${nodes === 1 ? "" : "s"}; each restarts when idle`, nodes }, 200);
  },
);

adminRoutes.openapi(
  createRoute({
    method: "get",
    path: "/nodes",
    summary: "GPU nodes: what each serves, has cached, and when it was last seen (admin)",
    tags: ["admin"],
    security: bearerSecurity,
    middleware: admin,
    responses: { 200: jsonContent(z.array(z.record(z.string(), z.unknown())), "Nodes"), ...problemResponses },
  }),
  async (c) => {
    const nodes = await fleetStub(c.env).listNodes();
    return c.json(
      nodes.map(({ catalog: _catalog, servingSince, registeredAt, lastSeenAt, ...n }) => ({
        ...n,
        servingSince: servingSince ? new Date(servingSince).toISOString() : null,
        registeredAt: new Date(registeredAt).toISOString(),
        lastSeenAt: new Date(lastSeenAt).toISOString(),
      })),
      200,
    );
  },
);

function metricLine(name: string, labels: Record<string, string>, value: number): string {
  const rendered = Object.entries(labels)
    .map(([k, v]) => `${k}="${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`)
    .join(",");
  return `${name}${rendered ? `{${rendered}}` : ""} ${value}`;
}

adminRoutes.openAPIRegistry.registerPath({
  method: "get",
  path: "/metrics",
  summary: "Prometheus metrics: tasks by status, models, queue depth and age per checkpoint, nodes by status",
  tags: ["admin"],
  security: bearerSecurity,
  responses: { 200: { description: "Prometheus text format", content: { "text/plain": { schema: z.string() } } }, ...problemResponses },
});
adminRoutes.get("/metrics", requireRole("admin"), async (c) => {
  const fleet = fleetStub(c.env);
  const [byStatus, modelCount, queues, nodes, scaling, perKey] = await Promise.all([
    countTasksByStatus(c.env.DB),
    countModels(c.env.DB),
    fleet.listQueues(),
    fleet.listNodes(),
    fleet.autoscale(false),
    usageTotals(c.env.DB),
  ]);
  // GET /autoscale's figures, for KEDA's prometheus scaler: one gauge per figure, by group (a scrape decides nothing).
  const autoscaleGauges = (["desired", "current", "ready", "booting", "draining"] as const).flatMap((figure) => [
    `# HELP sdgate_autoscale_${figure}_nodes Nodes per group: ${figure} (GET /autoscale).`,
    `# TYPE sdgate_autoscale_${figure}_nodes gauge`,
    ...scaling.groups.map((g) => metricLine(`sdgate_autoscale_${figure}_nodes`, { group: g.group }, g[figure])),
  ]);
  const lines = [
    "# HELP sdgate_tasks Tasks by status.",
    "# TYPE sdgate_tasks gauge",
    ...byStatus.map((r) => metricLine("sdgate_tasks", { status: r.status }, r.n)),
    "# HELP sdgate_models Registered models.",
    "# TYPE sdgate_models gauge",
    metricLine("sdgate_models", {}, modelCount),
    "# HELP sdgate_queue_waiting Tasks waiting per checkpoint.",
    "# TYPE sdgate_queue_waiting gauge",
    ...queues.map((q) => metricLine("sdgate_queue_waiting", { checkpoint: q.checkpoint }, q.waiting)),
    "# HELP sdgate_queue_running Tasks running per checkpoint.",
    "# TYPE sdgate_queue_running gauge",
    ...queues.map((q) => metricLine("sdgate_queue_running", { checkpoint: q.checkpoint }, q.running)),
    "# HELP sdgate_queue_oldest_wait_seconds Age of the oldest waiting task per checkpoint.",
    "# TYPE sdgate_queue_oldest_wait_seconds gauge",
    ...queues.map((q) =>
      metricLine("sdgate_queue_oldest_wait_seconds", { checkpoint: q.checkpoint }, q.oldestWaitingAt ? (Date.now() - q.oldestWaitingAt) / 1000 : 0),
    ),
    "# HELP sdgate_nodes Nodes by status.",
    "# TYPE sdgate_nodes gauge",
    ...(["idle", "busy", "draining", "lost"] as const).map((s) => metricLine("sdgate_nodes", { status: s }, nodes.filter((n) => n.status === s).length)),
    ...autoscaleGauges,
    "# HELP sdgate_key_tasks_total Tasks ended per API key.",
    "# TYPE sdgate_key_tasks_total counter",
    ...perKey.map((u) => metricLine("sdgate_key_tasks_total", { key: u.key }, u.tasks)),
    "# HELP sdgate_key_gpu_seconds_total sd-webui seconds used by each API key's tasks.",
    "# TYPE sdgate_key_gpu_seconds_total counter",
    ...perKey.map((u) => metricLine("sdgate_key_gpu_seconds_total", { key: u.key }, u.gpuMs / 1000)),
    "# HELP sdgate_key_model_load_seconds_total Seconds spent loading checkpoints for each API key's tasks.",
    "# TYPE sdgate_key_model_load_seconds_total counter",
    ...perKey.map((u) => metricLine("sdgate_key_model_load_seconds_total", { key: u.key }, u.modelLoadMs / 1000)),
    "# HELP sdgate_key_images_total Images made by each API key's tasks.",
    "# TYPE sdgate_key_images_total counter",
    ...perKey.map((u) => metricLine("sdgate_key_images_total", { key: u.key }, u.images)),
  ];
  return c.text(`${lines.join("\n")}\n`, 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
});
