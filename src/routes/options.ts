// POST /options (the original contract: {data:{…}}): per-key default sd-webui options, merged
// into each of the key's requests (the request wins). `sd_model_checkpoint` is the key's default
// checkpoint. GET /options reads them back.
import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { requireRole } from "../auth/middleware";
import { readKeyOptions, updateKeyOptions } from "../db/key-options";
import { resolveModel } from "../db/models";
import { ApiError } from "../errors";
import { bearerSecurity, jsonContent, openApiApp, problemResponses } from "./openapi-app";

const optionsSchema = z.record(z.string(), z.unknown());
const user = [requireRole("user")];

/** Checks a default checkpoint names a registered model, and stores its canonical name. */
export async function canonicalOptions(db: D1Database, data: Record<string, unknown>): Promise<Record<string, unknown>> {
  const checkpoint = data.sd_model_checkpoint;
  if (checkpoint === undefined || checkpoint === null) return data;
  if (typeof checkpoint !== "string")
    throw new ApiError("validation_failed", "data.sd_model_checkpoint: must be a string", [{ path: "data.sd_model_checkpoint", message: "expected string" }]);
  const model = await resolveModel(db, checkpoint, "checkpoint");
  if (!model) throw new ApiError("model_not_found", `No model named ${JSON.stringify(checkpoint)} is registered`);
  return { ...data, sd_model_checkpoint: model.name };
}

export const optionRoutes = openApiApp();

optionRoutes.openapi(
  createRoute({
    method: "post",
    path: "/options",
    summary: "Set your default sd-webui options (null removes one)",
    tags: ["options"],
    security: bearerSecurity,
    middleware: user,
    request: { body: { content: { "application/json": { schema: z.object({ data: optionsSchema }).openapi("OptionRequest") } }, required: true } },
    responses: { 200: jsonContent(z.object({ message: z.string(), data: optionsSchema }), "Saved"), ...problemResponses },
  }),
  async (c) => {
    const data = await canonicalOptions(c.env.DB, c.req.valid("json").data);
    const merged = await updateKeyOptions(c.env.DB, c.get("caller").owner, data);
    return c.json({ message: "success", data: merged }, 200);
  },
);

optionRoutes.openapi(
  createRoute({
    method: "get",
    path: "/options",
    summary: "Your default sd-webui options",
    tags: ["options"],
    security: bearerSecurity,
    middleware: user,
    responses: { 200: jsonContent(z.object({ data: optionsSchema }), "Options"), ...problemResponses },
  }),
  async (c) => c.json({ data: await readKeyOptions(c.env.DB, c.get("caller").owner) }, 200),
);
