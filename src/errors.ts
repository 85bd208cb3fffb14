// The closed table of error codes and their problem+json answers (RFC 9457).
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ZodError } from "zod";
import { logUnexpectedError } from "./log";
import { NODE_ID_TAKEN, NODE_REPLACED, NODE_UNKNOWN, STALE_LEASE } from "./protocol/node-errors";

export const ERRORS = {
  bad_request: { status: 400, title: "Bad request" },
  validation_failed: { status: 422, title: "The request is not valid" },
  malformed_json: { status: 400, title: "The body is not valid JSON" },
  unauthorized: { status: 401, title: "Missing or unknown API key" },
  forbidden: { status: 403, title: "This key may not do that" },
  not_found: { status: 404, title: "Not found" },
  task_not_found: { status: 404, title: "No such task" },
  model_not_found: { status: 404, title: "No such model" },
  [NODE_UNKNOWN]: { status: 404, title: "This node is not registered" },
  image_not_found: { status: 404, title: "No such image" },
  task_id_conflict: { status: 409, title: "A task with this id already exists" },
  idempotency_conflict: { status: 409, title: "This Idempotency-Key was used for another request" },
  [NODE_REPLACED]: { status: 409, title: "Another agent process registered under this node id" },
  [NODE_ID_TAKEN]: { status: 409, title: "This node id belongs to another node key" },
  task_finished: { status: 409, title: "The task has already ended" },
  task_live: { status: 409, title: "The task is still waiting or running" },
  [STALE_LEASE]: { status: 409, title: "The lease is no longer the task's current one" },
  model_exists: { status: 409, title: "A model with this name already exists" },
  model_file_missing: { status: 409, title: "The model has no file yet" },
  model_in_use: { status: 409, title: "Tasks waiting or running use this model" },
  model_failed: { status: 409, title: "The model failed to load on the nodes; upload a new file" },
  invalid_signature: { status: 403, title: "The signed URL is not valid" },
  url_expired: { status: 410, title: "The signed URL has expired" },
  link_revoked: { status: 410, title: "The key that owns this image was revoked" },
  length_required: { status: 411, title: "The body needs a Content-Length" },
  payload_too_large: { status: 413, title: "The body is too large" },
  unsupported_media_type: { status: 415, title: "Unsupported content type" },
  range_not_satisfiable: { status: 416, title: "The Range is not one range within the file" },
  work_over_limit: { status: 422, title: "The request asks for more work than this key may ask at once" },
  rate_limited: { status: 429, title: "Too many submissions from this key" },
  quota_exceeded: { status: 429, title: "This key has reached one of its limits" },
  no_default_model: { status: 422, title: "No checkpoint given and the key has no default" },
  addon_not_found: { status: 422, title: "The request names add-on models that are neither registered nor built into the nodes" },
  misconfigured: { status: 500, title: "The service is misconfigured" },
  internal: { status: 500, title: "Internal error" },
} as const satisfies Record<string, { status: ContentfulStatusCode; title: string }>;

export type ErrorCode = keyof typeof ERRORS;

export interface FieldError {
  path: string;
  message: string;
}

/** A refusal by one of the key's limits (src/tenants/limits.ts): which, and when trying again may succeed. */
export interface LimitRefusal {
  limit: string;
  retryAfterSeconds?: number;
}

/** An expected failure with a code from the table; `onError` turns it into problem+json. */
export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly detail?: string,
    readonly errors?: FieldError[],
    readonly refusal?: LimitRefusal,
  ) {
    super(detail ?? ERRORS[code].title);
  }
}

/** Retry-After for a refusal that says when to try again. */
export function retryAfterHeader(refusal: LimitRefusal | undefined): Record<string, string> {
  return refusal?.retryAfterSeconds === undefined ? {} : { "Retry-After": String(Math.max(1, Math.ceil(refusal.retryAfterSeconds))) };
}

export function problem(c: Context, code: ErrorCode, detail?: string, errors?: FieldError[], refusal?: LimitRefusal): Response {
  const { status, title } = ERRORS[code];
  const body = {
    type: `https://sdgate.dev/problems/${code.replaceAll("_", "-")}`,
    title,
    status,
    detail: detail ?? title,
    code,
    instance: new URL(c.req.url).pathname,
    ...(errors && errors.length > 0 ? { errors } : {}),
    ...(refusal ? { limit: refusal.limit } : {}),
  };
  return c.body(JSON.stringify(body), status, { "content-type": "application/problem+json", ...retryAfterHeader(refusal) });
}

export function zodFieldErrors(error: ZodError): FieldError[] {
  return error.issues.map((issue) => ({ path: issue.path.join(".") || "(body)", message: issue.message }));
}

export function validationProblem(c: Context, error: ZodError): Response {
  const errors = zodFieldErrors(error);
  const detail = errors.map((e) => `${e.path}: ${e.message}`).join("; ");
  return problem(c, "validation_failed", detail, errors);
}

/** Hono's onError: the table's errors, HTTPException and ZodError as problem+json; the rest as 500. */
export function handleError(err: Error, c: Context): Response {
  if (err instanceof ApiError) return problem(c, err.code, err.detail, err.errors, err.refusal);
  if (err instanceof ZodError) return validationProblem(c, err);
  if (err instanceof HTTPException) {
    if (err.status === 400 && /json/i.test(err.message)) return problem(c, "malformed_json", err.message);
    const byStatus: Partial<Record<number, ErrorCode>> = {
      400: "bad_request",
      401: "unauthorized",
      403: "forbidden",
      404: "not_found",
      413: "payload_too_large",
      415: "unsupported_media_type",
    };
    const code = byStatus[err.status];
    if (code) return problem(c, code, err.message || undefined);
  }
  if (err instanceof SyntaxError) return problem(c, "malformed_json", err.message);
  logUnexpectedError(err, c.get("requestId" as never));
  return problem(c, "internal", "Something went wrong on our side; the request id is in the Request-Id header.");
}
