// A sub-app whose validation failures answer as problem+json (422, naming each bad field).
import { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import type { AppEnv } from "../app-env";
import { validationProblem } from "../errors";

export function openApiApp() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) return validationProblem(c, result.error);
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
  })
  .openapi("Problem");

export const problemResponses = {
  default: { description: "Error (application/problem+json)", content: { "application/problem+json": { schema: problemSchema } } },
} as const;

export const bearerSecurity: Array<Record<string, string[]>> = [{ bearer: [] }, { token: [] }];

export function jsonContent<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { "application/json": { schema } } };
}
