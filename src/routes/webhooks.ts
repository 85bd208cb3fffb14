// GET /webhooks/secret: the secret a key's webhook receivers verify signatures with (see
// src/tasks/webhooks.ts). Derived, not stored: the same for a key until SIGNING_SECRET changes.
import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { requireRole } from "../auth/middleware";
import { webhookSecret } from "../tasks/webhooks";
import { bearerSecurity, jsonContent, openApiApp, problemResponses } from "./openapi-app";

export const webhookRoutes = openApiApp();

webhookRoutes.openapi(
  createRoute({
    method: "get",
    path: "/webhooks/secret",
    summary: "Your key's secret for verifying webhook signatures (Standard Webhooks)",
    tags: ["tasks"],
    security: bearerSecurity,
    middleware: [requireRole("user")],
    responses: {
      200: jsonContent(z.object({ secret: z.string().describe("whsec_<base64>: the HMAC-SHA256 key, base64 after the prefix") }), "The secret"),
      ...problemResponses,
    },
  }),
  async (c) => c.json({ secret: await webhookSecret(c.get("config").signingSecret, c.get("caller").owner) }, 200),
);
