// The agent's side of the node protocol (src/protocol/node.ts): typed calls to the Worker under
// /nodes, answers validated with the shared zod schemas. Every request carries the node token as
// `Authorization: Bearer`; the token never appears in an error message.
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import {
  type ClaimRequest,
  type ClaimResponse,
  type CompleteRequest,
  claimResponseSchema,
  type FailRequest,
  type Heartbeat,
  type HeartbeatResponse,
  heartbeatResponseSchema,
  LEASE_HEADER,
  type ProgressAnswer,
  type ProgressReport,
  progressAnswerSchema,
  type RegisterRequest,
  type RegisterResponse,
  registerResponseSchema,
} from "../src/protocol/node.ts";
import { NODE_ID_TAKEN, NODE_REPLACED, STALE_LEASE } from "../src/protocol/node-errors.ts";
import { errorMessage, type Logger } from "./logger.ts";

/** The Worker answered with an HTTP error. */
export class GatewayHttpError extends Error {
  override name = "GatewayHttpError";
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly code: string | undefined,
    readonly detail: string,
  ) {
    super(`${method} ${path} answered ${status}${code ? ` ${code}` : ""}${detail ? `: ${detail}` : ""}`);
  }
}

/** 409 stale_lease: the lease is not the task's current one any more; the task is not ours. */
export class StaleLeaseError extends GatewayHttpError {
  override name = "StaleLeaseError";
}

/** The Worker could not be reached (connection refused, reset, DNS, timeout). */
export class GatewayNetworkError extends Error {
  override name = "GatewayNetworkError";
}

export function isGatewayStatus(error: unknown, status: number): boolean {
  return error instanceof GatewayHttpError && error.status === status;
}

/** 409 node_replaced: another agent process registered under this node id after us. */
export function isNodeReplaced(error: unknown): boolean {
  return error instanceof GatewayHttpError && error.status === 409 && error.code === NODE_REPLACED;
}

/** 409 node_id_taken: the node id belongs to another node key. */
export function isNodeIdTaken(error: unknown): boolean {
  return error instanceof GatewayHttpError && error.status === 409 && error.code === NODE_ID_TAKEN;
}

/** Errors worth retrying: the network, 5xx and 429. */
export function isTransientGatewayError(error: unknown): boolean {
  if (error instanceof GatewayNetworkError) return true;
  return error instanceof GatewayHttpError && (error.status >= 500 || error.status === 429);
}

export interface GatewayClientOptions {
  baseUrl: string;
  token: string;
  userAgent: string;
  logger: Logger;
  /** Timeout of ordinary (non long-poll, non streaming) calls. */
  requestTimeoutMs?: number;
}

interface RequestOptions {
  body?: unknown;
  rawBody?: Uint8Array;
  contentType?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Overall timeout; null for none (streams). */
  timeoutMs?: number | null;
}

const TASK_CALL_RETRIES = 5;

export class GatewayClient {
  private readonly requestTimeoutMs: number;

  constructor(private readonly options: GatewayClientOptions) {
    this.requestTimeoutMs = options.requestTimeoutMs ?? 60_000;
  }

  async register(body: RegisterRequest): Promise<RegisterResponse> {
    const res = await this.request("POST", "/nodes/register", { body });
    return registerResponseSchema.parse(await readJson(res));
  }

  async heartbeat(nodeId: string, body: Heartbeat): Promise<HeartbeatResponse> {
    const res = await this.request("POST", `/nodes/${encodeURIComponent(nodeId)}/heartbeat`, { body });
    return heartbeatResponseSchema.parse(await readJson(res));
  }

  /** Long poll: null when the Worker had no work for us within waitMs (204). */
  async claim(nodeId: string, request: ClaimRequest & { waitMs: number }, signal?: AbortSignal): Promise<ClaimResponse | null> {
    const waitMs = request.waitMs;
    const res = await this.request("POST", `/nodes/${encodeURIComponent(nodeId)}/claim`, {
      body: request,
      signal,
      timeoutMs: waitMs + 60_000,
    });
    if (res.status === 204) {
      await readToEnd(res);
      return null;
    }
    return claimResponseSchema.parse(await readJson(res));
  }

  async deregister(nodeId: string, instanceId: string, signal?: AbortSignal): Promise<void> {
    const res = await this.request("DELETE", `/nodes/${encodeURIComponent(nodeId)}?instanceId=${encodeURIComponent(instanceId)}`, {
      signal,
      timeoutMs: 10_000,
    });
    await readToEnd(res);
  }

  /**
   * The checkpoint's bytes from `offset` on (a Range request when offset > 0). The caller reads
   * the body and checks the status: 206 continues at offset, 200 restarts from byte 0.
   */
  async modelFile(name: string, offset: number, signal?: AbortSignal): Promise<Response> {
    return this.request("GET", `/nodes/models/${encodeURIComponent(name)}/file`, {
      headers: offset > 0 ? { Range: `bytes=${offset}-` } : {},
      signal,
      timeoutMs: null,
    });
  }

  async taskInput(taskId: string, key: string, leaseId: string, signal?: AbortSignal): Promise<Buffer> {
    return this.retryTransient(`input ${key}`, signal, async () => {
      const res = await this.request("GET", `/nodes/tasks/${encodeURIComponent(taskId)}/inputs/${encodeURIComponent(key)}`, {
        headers: { [LEASE_HEADER]: leaseId },
        signal,
      });
      return Buffer.from(await res.arrayBuffer());
    });
  }

  /** One report; not retried (the next one follows within the progress interval). */
  async progress(taskId: string, report: ProgressReport, signal?: AbortSignal): Promise<ProgressAnswer> {
    const res = await this.request("POST", `/nodes/tasks/${encodeURIComponent(taskId)}/progress`, {
      body: report,
      signal,
      timeoutMs: 30_000,
    });
    return progressAnswerSchema.parse(await readJson(res));
  }

  /** Images and completion in one request (multipart `result` + `image` files). */
  async deliver(taskId: string, body: CompleteRequest, images: ReadonlyArray<{ bytes: Uint8Array; contentType: string }>): Promise<void> {
    const { contentType, bytes } = multipartBody([
      { name: "result", bytes: Buffer.from(JSON.stringify(body)) },
      ...images.map((image, index) => ({ name: "image", fileName: `${index}`, contentType: image.contentType, bytes: image.bytes })),
    ]);
    await this.retryTransient("result", undefined, async () => {
      const res = await this.request("POST", `/nodes/tasks/${encodeURIComponent(taskId)}/result`, { rawBody: bytes, contentType, timeoutMs: 120_000 });
      await readToEnd(res);
    });
  }

  async complete(taskId: string, body: CompleteRequest): Promise<void> {
    await this.retryTransient("complete", undefined, async () => {
      const res = await this.request("POST", `/nodes/tasks/${encodeURIComponent(taskId)}/complete`, { body });
      await readToEnd(res);
    });
  }

  async fail(taskId: string, body: FailRequest): Promise<void> {
    await this.retryTransient("fail", undefined, async () => {
      const res = await this.request("POST", `/nodes/tasks/${encodeURIComponent(taskId)}/fail`, { body });
      await readToEnd(res);
    });
  }

  private async retryTransient<T>(what: string, signal: AbortSignal | undefined, call: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        if (!isTransientGatewayError(error) || attempt >= TASK_CALL_RETRIES || signal?.aborted) throw error;
        const delayMs = Math.min(500 * 2 ** attempt, 8_000);
        this.options.logger.warn(`${what}: ${errorMessage(error)}; retrying in ${delayMs} ms`);
        await sleep(delayMs, undefined, { signal });
      }
    }
  }

  private async request(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.options.token}`,
      "User-Agent": this.options.userAgent,
      ...options.headers,
    };
    let body: BodyInit | undefined;
    if (options.rawBody) {
      body = options.rawBody as unknown as BodyInit;
      headers["Content-Type"] = options.contentType ?? "application/octet-stream";
    } else if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers["Content-Type"] = "application/json";
    }
    const timeoutMs = options.timeoutMs === undefined ? this.requestTimeoutMs : options.timeoutMs;
    const signals = [options.signal, timeoutMs === null ? undefined : AbortSignal.timeout(timeoutMs)].filter(
      (signal): signal is AbortSignal => signal !== undefined,
    );
    let res: Response;
    try {
      res = await fetch(this.options.baseUrl + path, {
        method,
        headers,
        body,
        signal: signals.length > 0 ? AbortSignal.any(signals) : undefined,
      });
    } catch (error) {
      if (options.signal?.aborted) throw error;
      throw new GatewayNetworkError(`${method} ${path}: ${errorMessage(error)}`);
    }
    if (res.ok) return res;
    const text = await res.text().catch(() => "");
    let code: string | undefined;
    let detail = text.slice(0, 300);
    try {
      const problem = JSON.parse(text) as { code?: unknown; detail?: unknown; title?: unknown };
      if (typeof problem.code === "string") code = problem.code;
      if (typeof problem.detail === "string" && problem.detail) detail = problem.detail;
      else if (typeof problem.title === "string") detail = problem.title;
    } catch {
      // not JSON: keep the text
    }
    const ErrorClass = res.status === 409 && code === STALE_LEASE ? StaleLeaseError : GatewayHttpError;
    throw new ErrorClass(method, path, res.status, code, detail);
  }
}

async function readJson(res: Response): Promise<unknown> {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new GatewayNetworkError(`${res.url}: answer is not JSON (${text.slice(0, 100)})`);
  }
}

/**
 * A multipart/form-data body in one buffer: sent with a Content-Length in a single write, where a
 * FormData is streamed in chunks.
 */
function multipartBody(parts: ReadonlyArray<{ name: string; fileName?: string; contentType?: string; bytes: Uint8Array }>): {
  contentType: string;
  bytes: Buffer;
} {
  const boundary = `sdgate-${randomBytes(12).toString("hex")}`;
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const disposition = `form-data; name="${part.name}"${part.fileName === undefined ? "" : `; filename="${part.fileName}"`}`;
    const type = part.contentType === undefined ? "" : `Content-Type: ${part.contentType}\r\n`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${type}\r\n`), Buffer.from(part.bytes), Buffer.from("\r\n"));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { contentType: `multipart/form-data; boundary=${boundary}`, bytes: Buffer.concat(chunks) };
}

/**
 * Reads a small answer to its end so the keep-alive connection is reused; cancelling the body
 * would close it, and the next call would pay for a new connection.
 */
async function readToEnd(res: Response): Promise<void> {
  await res.arrayBuffer();
}
