// The error bodies sd-webui answers with. Its API exception handler turns any HTTPException or
// uncaught exception into {error, detail, body, errors}; request validation keeps FastAPI's
// default 422 {detail: [{loc, msg, type}]}; an unknown route is Starlette's {detail: "Not Found"}.

/** An error answered in sd-webui's exception-handler shape. */
export class WebuiError extends Error {
  constructor(
    readonly status: number,
    readonly errorName: string,
    readonly detail: string,
    message: string,
  ) {
    super(message);
  }
}

/** FastAPI's HTTPException: `errors` is `"<status>: <detail>"`. */
export function httpException(status: number, detail: string): WebuiError {
  return new WebuiError(status, "HTTPException", detail, `${status}: ${detail}`);
}

/** A Python exception that has no status code (e.g. RuntimeError): answered as 500. */
export function pythonException(errorName: string, message: string): WebuiError {
  return new WebuiError(500, errorName, "", message);
}

export interface FastApiIssue {
  loc: (string | number)[];
  msg: string;
  type: string;
}

/** FastAPI's request-validation failure (422). */
export class RequestValidationError extends Error {
  constructor(readonly issues: FastApiIssue[]) {
    super(issues.map((issue) => `${issue.loc.join(".")}: ${issue.msg}`).join("; "));
  }
}

/** Starlette's own HTTP errors (unknown route, wrong method) keep the plain {detail} body. */
export class RoutingError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
  ) {
    super(detail);
  }
}

export interface ErrorResponse {
  status: number;
  body: unknown;
}

export function errorResponse(error: unknown): ErrorResponse {
  if (error instanceof WebuiError) {
    return { status: error.status, body: { error: error.errorName, detail: error.detail, body: "", errors: error.message } };
  }
  if (error instanceof RequestValidationError) return { status: 422, body: { detail: error.issues } };
  if (error instanceof RoutingError) return { status: error.status, body: { detail: error.detail } };
  const name = error instanceof Error ? error.name : "Exception";
  const message = error instanceof Error ? error.message : String(error);
  return { status: 500, body: { error: name, detail: "", body: "", errors: message } };
}
