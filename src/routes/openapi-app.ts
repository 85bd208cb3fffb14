// A sub-app whose validation failures answer as problem+json (422, naming each bad field), and
// whose JSON bodies are refused when nested too deep for the handlers to walk.
import { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import type { AppEnv } from "../app-env";
import { validationProblem } from "../errors";
import { refuseDeepJson } from "../json-depth";

export function openApiApp() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) return validationProblem(c, result.error);
      if (result.target === "json") refuseDeepJson(result.data);
    },
  });
}

export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string(),
    instance: z.string(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    limit: z.string().optional().describe("The key's limit that refused the request (PUT /keys/{id}/limits)"),
  })
  .openapi("Problem");

export const problemResponses = {
  default: { description: "Error (application/problem+json)", content: { "application/problem+json": { schema: problemSchema } } },
} as const;

export const bearerSecurity: Array<Record<string, string[]>> = [{ bearer: [] }, { token: [] }];

export function jsonContent<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } };
}

/** Raw bytes (model files, images) in a body or an answer. */
export const binarySchema = z.string().openapi({ format: "binary" });

export function binaryContent(contentType: string, description: string) {
  return { description, content: { [contentType]: { schema: binarySchema } } };
}
