// The submission headers both surfaces read (the original API's and the sd-webui one's).
import { z } from "zod";
import { WEBHOOK_URL_HEADER, webhookUrlSchema } from "./webhooks";

export const submitHeadersSchema = z.object({
  "request-type": z.enum(["sync", "async"]).optional().describe("sync (default) waits for the result; async answers 202 at once"),
  taskid: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,128}$/, "taskId may hold letters, digits and . _ : - (1–128)")
    .optional()
    .describe("Client-chosen task id, unique per key"),
  "idempotency-key": z.string().min(1).max(256).optional().describe("Retries with the same key return the same task"),
  "task-priority": z.coerce.number().int().min(-10).max(10).optional().describe("Higher runs first among waiting tasks (default 0)"),
  [WEBHOOK_URL_HEADER]: webhookUrlSchema.optional(),
});
export type SubmitHeaders = z.infer<typeof submitHeadersSchema>;
