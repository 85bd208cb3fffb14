// Webhooks: when a task submitted with a `Webhook-Url` header ends, sdgate POSTs what became of
// it there (`task.ended`), signed the Standard Webhooks way (https://www.standardwebhooks.com):
// headers `webhook-id` (the same on every retry), `webhook-timestamp` (unix seconds) and
// `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`. Each key has its
// own secret (`whsec_<base64>`, GET /webhooks/secret), derived from SIGNING_SECRET. Webhook URLs
// must name public hosts (./webhook-url.ts).
import { z } from "zod";
import type { Config } from "../config";
import { base64url, decodeBase64, encodeBase64, hmacSha256 } from "../crypto";
import type { TaskEnding } from "../db/task-records";
import { ApiError } from "../errors";
import { signedUrls } from "./views";
import { webhookUrlRefusal } from "./webhook-url";

export const WEBHOOK_URL_HEADER = "webhook-url";

export const webhookUrlSchema = z
  .string()
  .max(2048)
  .url()
  .refine((url) => /^https?:\/\//i.test(url), "an http or https URL")
  .describe("When the task ends, POST a signed `task.ended` event here (retried with backoff until it answers 2xx)");

/** A submission's webhook: its URL, and the origin the client called (image URLs point there). */
export interface RequestedWebhook {
  url: string;
  origin: string;
}

export function requestedWebhook(url: string | undefined, origin: string, config: Pick<Config, "localDevelopment">): RequestedWebhook | null {
  if (!url) return null;
  const refusal = webhookUrlRefusal(url, config.localDevelopment);
  if (refusal) throw new ApiError("validation_failed", `${WEBHOOK_URL_HEADER}: ${refusal}`, [{ path: WEBHOOK_URL_HEADER, message: refusal }]);
  return { url, origin };
}

/** The facts of an ending the event reports; signed image URLs are made fresh at each delivery. */
export interface TaskEnded {
  taskId: string;
  ending: TaskEnding;
}

export async function webhookSecret(signingSecret: string, owner: string): Promise<string> {
  return `whsec_${encodeBase64(await hmacSha256(signingSecret, `webhook-secret\n${owner}`))}`;
}

/**
 * The `webhook-id` of a delivery: an HMAC of its (internal) delivery id, so receivers see no task
 * uid, and the same on every retry as Standard Webhooks require.
 */
export async function webhookId(signingSecret: string, deliveryId: string): Promise<string> {
  return `msg_${base64url(await hmacSha256(signingSecret, `webhook-id\n${deliveryId}`)).slice(0, 32)}`;
}

/** The `webhook-signature` header value for one delivery. */
export async function signWebhook(secret: string, id: string, timestampSeconds: number, body: string): Promise<string> {
  const key = decodeBase64(secret.slice("whsec_".length))!;
  return `v1,${encodeBase64(await hmacSha256(key, `${id}.${timestampSeconds}.${body}`))}`;
}

/** The body of a `task.ended` event: GET /tasks/{taskId}/result has the rest. */
export async function taskEndedEvent(origin: string, config: Config, { taskId, ending }: TaskEnded) {
  const images = ending.imageKeys ?? [];
  return {
    type: "task.ended" as const,
    taskId,
    status: ending.status,
    ...(ending.status !== "succeeded" && ending.error ? { message: ending.error } : {}),
    images,
    ossUrl: await signedUrls(origin, config, images),
    attempts: ending.attempts ?? 0,
    finishedAt: new Date(ending.finishedAt).toISOString(),
  };
}
