// sd-webui's error answers, so A1111 clients see the shapes they were written against:
// `{error, detail, body, errors}` (sd-webui's exception handler, with the exception's status) and
// FastAPI's 422 `{detail: [{loc, msg, type}]}` for request validation. `sdapiErrorHandler` is the
// onError of the sd-webui surface: it maps the gateway's own errors into these shapes.
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ZodError, type ZodIssue } from "zod";
import { tokenFromHeaders } from "../auth/middleware";
import { ApiError, ERRORS, type FieldError, retryAfterHeader } from "../errors";
import { logUnexpectedError } from "../log";

export interface WebuiErrorBody {
  error: string;
  detail: string;
  body: string;
  errors: string;
}

export interface ValidationItem {
  loc: Array<string | number>;
  msg: string;
  type: string;
}

/** What sd-webui answers for an exception: HTTPException's `errors` is "<status>: <detail>"; others have no detail. */
export function webuiErrorBody(status: number, detail: string, error = "HTTPException"): WebuiErrorBody {
  if (error === "HTTPException") return { error, detail, body: "", errors: `${status}: ${detail}` };
  return { error, detail: "", body: "", errors: detail };
}

/** An sd-webui-shaped failure to throw from a handler of the surface. */
export class SdapiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly body: unknown,
  ) {
    super(typeof body === "object" && body && "errors" in body ? String((body as WebuiErrorBody).errors) : `sdapi error ${status}`);
  }

  static http(status: ContentfulStatusCode, detail: string): SdapiError {
    return new SdapiError(status, webuiErrorBody(status, detail));
  }

  /** An uncaught exception in sd-webui: 500 with the exception's class name. */
  static runtime(message: string, error = "RuntimeError"): SdapiError {
    return new SdapiError(500, webuiErrorBody(500, message, error));
  }

  static validation(items: ValidationItem[]): SdapiError {
    return new SdapiError(422, { detail: items });
  }
}

function issueItem(issue: ZodIssue, where: string): ValidationItem {
  const loc = [where, ...issue.path.map((p) => (typeof p === "number" ? p : String(p)))];
  if (issue.code === "invalid_type" && /received undefined/.test(issue.message)) return { loc, msg: "field required", type: "value_error.missing" };
  if (issue.code === "invalid_type") return { loc, msg: issue.message, type: `type_error.${issue.expected}` };
  return { loc, msg: issue.message, type: "value_error" };
}

export function zodValidationItems(error: ZodError, where = "body"): ValidationItem[] {
  return error.issues.map((issue) => issueItem(issue, where));
}

function fieldItems(errors: readonly FieldError[] | undefined, detail: string): ValidationItem[] {
  if (!errors || errors.length === 0) return [{ loc: ["body"], msg: detail, type: "value_error" }];
  const segment = (part: string) => (/^\d+$/.test(part) ? Number(part) : part);
  return errors.map((e) => ({ loc: ["body", ...e.path.split(".").filter(Boolean).map(segment)], msg: e.message, type: "value_error" }));
}

function answer(c: Context, error: SdapiError, extraHeaders: Record<string, string> = {}): Response {
  // sd-webui's Api.auth (modules/api/api.py) raises its 401s with WWW-Authenticate: Basic, as
  // FastAPI's HTTPBasic does: clients and browsers answer it with credentials.
  const headers: Record<string, string> = error.status === 401 ? { "WWW-Authenticate": "Basic", ...extraHeaders } : extraHeaders;
  return c.json(error.body as object, error.status, headers);
}

/** The gateway's error codes, said the way sd-webui says errors. */
function fromApiError(c: Context, err: ApiError): SdapiError {
  const detail = err.detail ?? ERRORS[err.code].title;
  switch (err.code) {
    case "unauthorized":
      return SdapiError.http(401, tokenFromHeaders(c.req.raw.headers) ? "Incorrect username or password" : "Not authenticated");
    case "validation_failed":
    case "addon_not_found":
      return SdapiError.validation(fieldItems(err.errors, detail));
    case "no_default_model":
      return SdapiError.http(
        422,
        'No checkpoint chosen: send `stable_diffusion_model` in the body or `override_settings.sd_model_checkpoint`, or set a default with POST /sdapi/v1/options {"sd_model_checkpoint": "<model>"}',
      );
    default:
      return SdapiError.http(ERRORS[err.code].status, detail);
  }
}

/** onError of the sd-webui surface. */
export function sdapiErrorHandler(err: Error, c: Context): Response {
  if (err instanceof SdapiError) return answer(c, err);
  if (err instanceof ApiError) return answer(c, fromApiError(c, err), retryAfterHeader(err.refusal));
  if (err instanceof ZodError) return answer(c, SdapiError.validation(zodValidationItems(err)));
  if (err instanceof SyntaxError) return answer(c, SdapiError.validation([{ loc: ["body", 0], msg: err.message, type: "value_error.jsondecode" }]));
  if (err instanceof HTTPException) return answer(c, SdapiError.http(err.status as ContentfulStatusCode, err.message || "Error"));
  logUnexpectedError(err, c.get("requestId" as never));
  return answer(
    c,
    SdapiError.runtime(`Internal error; the request id is in the Request-Id header (${String(c.get("requestId" as never) ?? "")})`, "InternalError"),
  );
}
