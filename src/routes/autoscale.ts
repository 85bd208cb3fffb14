// Autoscaling (issue 15): GET /autoscale, what KEDA (or the local scaler) reads to size each
// node group, for admin and scaler keys; node group settings under /groups (admin).
import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { requireRole } from "../auth/middleware";
import { ApiError } from "../errors";
import { autoscaleAnswer } from "../fleet/autoscale-answer";
import { DEFAULT_GROUP_SETTINGS, groupNameSchema, groupSettingsSchema, type NodeGroupRecord } from "../fleet/node-groups";
import { fleetStub } from "../fleet/stub";
import { bearerSecurity, jsonContent, openApiApp, problemResponses } from "./openapi-app";

const admin = [requireRole("admin")];

const groupFiguresSchema = z.object({
  desired: z.number().int().describe("Nodes the group should have: what KEDA sets its replicas to"),
  current: z.number().int().describe("Registered nodes that stay (booting, idle, busy)"),
  ready: z.number().int().describe("Nodes taking work (idle or busy)"),
  busy: z.number().int(),
  booting: z.number().int().describe("Registered, not yet asking for work"),
  draining: z.number().int().describe("Leaving: finishing their task, getting no more"),
  demand: z.number().describe("Nodes the work asks for, before rounding and the group's limits"),
  leaving: z.array(z.string()).describe("Nodes chosen to leave at this read"),
  reasons: z.array(z.string()),
});

const autoscaleAnswerSchema = z
  .object({
    groups: z.record(z.string(), groupFiguresSchema).describe("By group name: KEDA's metrics-api valueLocation is `groups.<name>.desired`"),
    unservedCheckpoints: z.array(z.string()).describe("Checkpoints with work that no known group may serve (GPU class or memory)"),
  })
  .openapi("Autoscale");

const groupViewSchema = z
  .object({
    name: z.string(),
    /** False: nobody set them; the defaults apply. */
    configured: z.boolean(),
    settings: groupSettingsSchema,
    gpuClass: z.string().nullable(),
    gpuMemoryMb: z.number().int().nullable(),
    bootSeconds: z.number().describe("Boot time the policy assumes: measured (registration → first claim) once nodes booted, else settings.bootSeconds"),
    bootSamples: z.number().int(),
  })
  .openapi("NodeGroup");

function groupView(record: NodeGroupRecord): z.infer<typeof groupViewSchema> {
  const settings = record.settings ?? DEFAULT_GROUP_SETTINGS;
  return {
    name: record.name,
    configured: record.settings !== null,
    settings,
    gpuClass: settings.gpuClass ?? record.seenGpuClass,
    gpuMemoryMb: settings.gpuMemoryMb ?? record.seenGpuMemoryMb,
    bootSeconds: (record.learnedBootMs ?? settings.bootSeconds * 1000) / 1000,
    bootSamples: record.bootSamples,
  };
}

export const autoscaleRoutes = openApiApp();

autoscaleRoutes.openapi(
  createRoute({
    method: "get",
    path: "/autoscale",
    summary: "Desired, current, ready, booting and draining nodes per node group, with the reasons (admin or scaler)",
    description:
      "Each read is the scaler's tick: idle nodes chosen to leave are told to drain and get no more work. KEDA's metrics-api scaler reads `groups.<name>.desired`.",
    tags: ["admin"],
    security: bearerSecurity,
    middleware: [requireRole("scaler")],
    responses: { 200: jsonContent(autoscaleAnswerSchema, "Figures"), ...problemResponses },
  }),
  async (c) => c.json(autoscaleAnswer(await fleetStub(c.env).autoscale()), 200),
);

autoscaleRoutes.openapi(
  createRoute({
    method: "get",
    path: "/groups",
    summary: "Node groups: settings, GPU, boot-time estimate (admin)",
    tags: ["admin"],
    security: bearerSecurity,
    middleware: admin,
    responses: { 200: jsonContent(z.array(groupViewSchema), "Groups"), ...problemResponses },
  }),
  async (c) => c.json((await fleetStub(c.env).listGroups()).map(groupView), 200),
);

autoscaleRoutes.openapi(
  createRoute({
    method: "get",
    path: "/groups/{name}",
    summary: "One node group (admin)",
    tags: ["admin"],
    security: bearerSecurity,
    middleware: admin,
    request: { params: z.object({ name: groupNameSchema }) },
    responses: { 200: jsonContent(groupViewSchema, "Group"), ...problemResponses },
  }),
  async (c) => {
    const name = c.req.valid("param").name;
    const record = (await fleetStub(c.env).listGroups()).find((g) => g.name === name);
    if (!record) throw new ApiError("not_found", `No node group ${name}: no node registered with it and no settings were put`);
    return c.json(groupView(record), 200);
  },
);

autoscaleRoutes.openapi(
  createRoute({
    method: "put",
    path: "/groups/{name}",
    summary: "Set a node group's settings (admin); fields left out take their defaults",
    tags: ["admin"],
    security: bearerSecurity,
    middleware: admin,
    request: {
      params: z.object({ name: groupNameSchema }),
      body: { content: { "application/json": { schema: groupSettingsSchema } }, required: true },
    },
    responses: { 200: jsonContent(groupViewSchema, "Saved"), ...problemResponses },
  }),
  async (c) => {
    const settings = c.req.valid("json");
    if (settings.maxNodes > 0 && settings.minNodes > settings.maxNodes) throw new ApiError("validation_failed", "minNodes exceeds maxNodes");
    return c.json(groupView(await fleetStub(c.env).putGroup(c.req.valid("param").name, settings)), 200);
  },
);
