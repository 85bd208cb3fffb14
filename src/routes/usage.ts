// GET /usage: what tasks used (sd-webui GPU seconds, model load seconds, images), by key and
// optionally by UTC day. A user key sees its own; an admin any key (`?key=`) or all of them.
import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { requireRole } from "../auth/middleware";
import { usage } from "../db/usage";
import { ApiError } from "../errors";
import { bearerSecurity, jsonContent, openApiApp, problemResponses } from "./openapi-app";

const DEFAULT_RANGE_MS = 30 * 86_400_000;

const instant = z
  .string()
  .refine((v) => /^\d{4}-\d{2}-\d{2}/.test(v) && !Number.isNaN(Date.parse(v)), "an ISO 8601 date (2026-05-01) or date-time")
  .transform((v) => Date.parse(v));

const usageQuery = z.object({
  from: instant.optional().describe("Start (inclusive) of when tasks ended; default 30 days before `to`"),
  to: instant.optional().describe("End (exclusive); default now"),
  groupBy: z.enum(["day", "total"]).default("total").describe("`day`: one row per key and UTC day"),
  key: z.string().optional().describe("Admin keys: only this key's usage (default: every key)"),
});

const usageRowSchema = z.object({
  key: z.string(),
  day: z.string().nullable().describe("UTC day (YYYY-MM-DD) with groupBy=day"),
  tasks: z.number().int().describe("Tasks that ended"),
  gpuSeconds: z.number().describe("sd-webui time the nodes reported"),
  modelLoadSeconds: z.number().describe("Time spent getting the checkpoint on disk and loaded, apart"),
  images: z.number().int(),
});

export const usageRoutes = openApiApp();

usageRoutes.openapi(
  createRoute({
    method: "get",
    path: "/usage",
    summary: "Usage of GPUs and images by ended tasks: yours, or (admin) any key's or all",
    tags: ["tasks"],
    security: bearerSecurity,
    middleware: [requireRole("user")],
    request: { query: usageQuery },
    responses: {
      200: jsonContent(z.object({ from: z.string(), to: z.string(), groupBy: z.enum(["day", "total"]), usage: z.array(usageRowSchema) }), "Usage"),
      ...problemResponses,
    },
  }),
  async (c) => {
    const query = c.req.valid("query");
    const caller = c.get("caller");
    if (query.key !== undefined && caller.role !== "admin" && query.key !== caller.owner) {
      throw new ApiError("forbidden", "Only admin keys read other keys' usage");
    }
    const to = query.to ?? Date.now();
    const from = query.from ?? to - DEFAULT_RANGE_MS;
    if (from >= to) throw new ApiError("validation_failed", "from: must be before to", [{ path: "from", message: "must be before to" }]);
    const key = caller.role === "admin" ? (query.key ?? null) : caller.owner;
    const rows = await usage(c.env.DB, { from, to, key, byDay: query.groupBy === "day" });
    return c.json(
      {
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
        groupBy: query.groupBy,
        usage: rows.map((r) => ({
          key: r.key,
          day: r.day,
          tasks: r.tasks,
          gpuSeconds: r.gpuMs / 1000,
          modelLoadSeconds: r.modelLoadMs / 1000,
          images: r.images,
        })),
      },
      200,
    );
  },
);
