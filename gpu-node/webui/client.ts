// Typed calls to sd-webui's HTTP API (AUTOMATIC1111 /sdapi/v1 and /internal/progress), answers
// validated with zod. Uses node:http rather than fetch: a generation request can run far longer
// than fetch's built-in 300 s header timeout, and a dropped connection must be told apart from an
// HTTP error (a crash makes the task retryable, an error answer does not).
import http from "node:http";
import https from "node:https";
import { z } from "zod";
import type { WebuiCatalog } from "../../src/protocol/node.ts";
import { errorMessage } from "../logger.ts";

/** sd-webui could not be reached or dropped the connection (not running, crashed, restarting). */
export class WebuiConnectionError extends Error {
  override name = "WebuiConnectionError";
}

/** sd-webui answered with an error status; `message` is sd-webui's own message. */
export class WebuiHttpError extends Error {
  override name = "WebuiHttpError";
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly path: string,
  ) {
    super(webuiErrorMessage(status, body));
  }
}

export interface WebuiResponse {
  status: number;
  /** Parsed JSON when the body was JSON, else the text. */
  body: unknown;
}

/** sd-webui's message from its error body (`detail`, `errors`, or FastAPI's 422 list). */
export function webuiErrorMessage(status: number, body: unknown): string {
  if (body && typeof body === "object" && !Array.isArray(body)) {
    const { detail, errors, error } = body as { detail?: unknown; errors?: unknown; error?: unknown };
    if (typeof detail === "string" && detail.trim()) return detail.trim();
    if (Array.isArray(detail) && detail.length > 0) {
      return detail
        .map((item) => {
          if (!item || typeof item !== "object") return String(item);
          const { loc, msg } = item as { loc?: unknown; msg?: unknown };
          const where = Array.isArray(loc) ? loc.join(".") : "";
          return where ? `${where}: ${String(msg)}` : String(msg);
        })
        .join("; ");
    }
    if (typeof errors === "string" && errors.trim()) return errors.trim();
    if (typeof error === "string" && error.trim()) return `${error.trim()} (HTTP ${status})`;
  }
  if (typeof body === "string" && body.trim()) return `HTTP ${status}: ${body.trim().slice(0, 500)}`;
  return `sd-webui answered HTTP ${status}`;
}

const sdModelSchema = z.looseObject({
  title: z.string(),
  model_name: z.string(),
  filename: z.string(),
  hash: z.string().nullish(),
  sha256: z.string().nullish(),
});
export type SdModel = z.infer<typeof sdModelSchema>;

const optionsSchema = z.looseObject({
  sd_model_checkpoint: z.string().nullish(),
  /** The loaded checkpoint's sha256 (`load_model_weights` sets it). */
  sd_checkpoint_hash: z.string().nullish(),
  sd_vae: z.string().nullish(),
});
export type WebuiOptions = z.infer<typeof optionsSchema>;

const internalProgressSchema = z.looseObject({
  active: z.boolean(),
  queued: z.boolean(),
  completed: z.boolean(),
  progress: z.number().nullish(),
  eta: z.number().nullish(),
  live_preview: z.string().nullish(),
  id_live_preview: z.number().nullish(),
  textinfo: z.string().nullish(),
});
export type InternalProgress = z.infer<typeof internalProgressSchema>;

const progressSchema = z.looseObject({
  progress: z.number(),
  eta_relative: z.number().nullish(),
  state: z.record(z.string(), z.unknown()).nullish(),
  current_image: z.string().nullish(),
  textinfo: z.string().nullish(),
});
export type WebuiProgress = z.infer<typeof progressSchema>;

/** The catalog's lists, each sd-webui's `GET /sdapi/v1/<name>` answer. */
export const CATALOG_PATHS = [
  "samplers",
  "schedulers",
  "upscalers",
  "latent-upscale-modes",
  "sd-vae",
  "loras",
  "face-restorers",
  "prompt-styles",
  "hypernetworks",
  "script-info",
] as const;
/** The catalog's objects, each sd-webui's `GET /sdapi/v1/<name>` answer. */
const CATALOG_OBJECT_PATHS = ["embeddings", "scripts", "options"] as const;
/** The ControlNet extension's lists (`scripts/api.py` of Mikubill/sd-webui-controlnet): route, answer key. */
const CONTROLNET_CATALOG = [
  ["controlnet-models", "/controlnet/model_list", "model_list"],
  ["controlnet-modules", "/controlnet/module_list", "module_list"],
] as const;

export interface WebuiClientOptions {
  baseUrl: string;
  /** `user:pass` for sd-webui's --api-auth. */
  auth?: string;
}

interface CallOptions {
  signal?: AbortSignal;
  /** null: no timeout. */
  timeoutMs?: number | null;
  query?: Record<string, string>;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const MODEL_LOAD_TIMEOUT_MS = 30 * 60_000;
const REFRESH_TIMEOUT_MS = 5 * 60_000;

export class WebuiClient {
  readonly baseUrl: string;
  private readonly authHeader: string | undefined;
  // No keep-alive: a reused socket that sd-webui is closing would look like a crash.
  private readonly agents = { http: new http.Agent({ keepAlive: false }), https: new https.Agent({ keepAlive: false }) };

  constructor(options: WebuiClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.authHeader = options.auth ? `Basic ${Buffer.from(options.auth).toString("base64")}` : undefined;
  }

  /** Any status; throws WebuiConnectionError when there is no answer. */
  async request(method: string, path: string, body?: unknown, options: CallOptions = {}): Promise<WebuiResponse> {
    const url = new URL(this.baseUrl + path);
    for (const [key, value] of Object.entries(options.query ?? {})) url.searchParams.set(key, value);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const timeoutMs = options.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : options.timeoutMs;
    const transport = url.protocol === "https:" ? https : http;
    const headers: Record<string, string | number> = { Accept: "application/json" };
    if (payload) {
      headers["Content-Type"] = "application/json";
      headers["Content-Length"] = payload.length;
    }
    if (this.authHeader) headers.Authorization = this.authHeader;

    return new Promise<WebuiResponse>((resolve, reject) => {
      let settled = false;
      const finish = (error: Error | null, response?: WebuiResponse) => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
        if (error) reject(error);
        else resolve(response!);
      };
      const req = transport.request(url, {
        method,
        headers,
        agent: url.protocol === "https:" ? this.agents.https : this.agents.http,
      });
      const onAbort = () => {
        req.destroy();
        finish(options.signal!.reason instanceof Error ? options.signal!.reason : new Error("aborted"));
      };
      const timer =
        timeoutMs === null
          ? undefined
          : setTimeout(() => {
              req.destroy();
              finish(new WebuiConnectionError(`${method} ${path}: no answer from sd-webui within ${timeoutMs} ms`));
            }, timeoutMs);
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener("abort", onAbort, { once: true });
      req.on("error", (error) => finish(new WebuiConnectionError(`${method} ${path}: ${errorMessage(error)}`)));
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", (error) => finish(new WebuiConnectionError(`${method} ${path}: ${errorMessage(error)}`)));
        res.on("aborted", () => finish(new WebuiConnectionError(`${method} ${path}: connection lost while reading the answer`)));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown = text;
          try {
            parsed = text === "" ? null : JSON.parse(text);
          } catch {
            // keep the text
          }
          finish(null, { status: res.statusCode ?? 0, body: parsed });
        });
      });
      req.end(payload);
    });
  }

  /** 2xx answers validated with `schema`; other statuses throw WebuiHttpError. */
  private async call<T>(method: string, path: string, schema: z.ZodType<T>, body?: unknown, options?: CallOptions): Promise<T> {
    const res = await this.request(method, path, body, options);
    if (res.status < 200 || res.status >= 300) throw new WebuiHttpError(res.status, res.body, path);
    const parsed = schema.safeParse(res.body);
    if (!parsed.success) throw new Error(`${method} ${path}: unexpected answer from sd-webui: ${parsed.error.message}`);
    return parsed.data;
  }

  /** sd-webui is up when GET /sdapi/v1/sd-models answers 200. */
  async isReady(timeoutMs = 5_000): Promise<boolean> {
    try {
      const res = await this.request("GET", "/sdapi/v1/sd-models", undefined, { timeoutMs });
      return res.status === 200;
    } catch {
      return false;
    }
  }

  sdModels(): Promise<SdModel[]> {
    return this.call("GET", "/sdapi/v1/sd-models", z.array(sdModelSchema));
  }

  async refreshCheckpoints(): Promise<void> {
    await this.call("POST", "/sdapi/v1/refresh-checkpoints", z.unknown(), undefined, { timeoutMs: REFRESH_TIMEOUT_MS });
  }

  /** The built-in Lora extension rescans models/Lora (`extensions-builtin/Lora/lora_script.py`). */
  async refreshLoras(): Promise<void> {
    await this.call("POST", "/sdapi/v1/refresh-loras", z.unknown(), undefined, { timeoutMs: REFRESH_TIMEOUT_MS });
  }

  /** `modules/api/api.py` refresh_vae: `sd_vae.refresh_vae_list()`. */
  async refreshVae(): Promise<void> {
    await this.call("POST", "/sdapi/v1/refresh-vae", z.unknown(), undefined, { timeoutMs: REFRESH_TIMEOUT_MS });
  }

  /**
   * `modules/api/api.py` refresh_embeddings: `load_textual_inversion_embeddings(force_reload=True)`.
   * False when this sd-webui has no such route (404); it then reloads the embeddings by itself on
   * the next generation, as `textual_inversion.py` `load_textual_inversion_embeddings` checks
   * whether the embeddings folder's mtime changed (`DirWithTextualInversionEmbeddings.has_changed`).
   */
  async refreshEmbeddings(): Promise<boolean> {
    const res = await this.request("POST", "/sdapi/v1/refresh-embeddings", undefined, { timeoutMs: REFRESH_TIMEOUT_MS });
    if (res.status === 404) return false;
    if (res.status < 200 || res.status >= 300) throw new WebuiHttpError(res.status, res.body, "/sdapi/v1/refresh-embeddings");
    return true;
  }

  /** The ControlNet extension rescans its model folders on `GET /controlnet/model_list?update=true`. */
  async refreshControlnetModels(): Promise<void> {
    await this.call("GET", "/controlnet/model_list", z.unknown(), undefined, { timeoutMs: REFRESH_TIMEOUT_MS, query: { update: "true" } });
  }

  getOptions(): Promise<WebuiOptions> {
    return this.call("GET", "/sdapi/v1/options", optionsSchema);
  }

  /** Setting sd_model_checkpoint loads the model before sd-webui answers. */
  async setOptions(options: Record<string, unknown>, signal?: AbortSignal): Promise<void> {
    await this.call("POST", "/sdapi/v1/options", z.unknown(), options, { signal, timeoutMs: MODEL_LOAD_TIMEOUT_MS });
  }

  /** Task-scoped progress; null when this sd-webui has no /internal/progress (404). */
  async internalProgress(idTask: string, idLivePreview: number): Promise<InternalProgress | null> {
    const res = await this.request("POST", "/internal/progress", { id_task: idTask, id_live_preview: idLivePreview, live_preview: true });
    if (res.status === 404) return null;
    if (res.status !== 200) throw new WebuiHttpError(res.status, res.body, "/internal/progress");
    return internalProgressSchema.parse(res.body);
  }

  /** Global progress of whatever sd-webui runs now. */
  progress(skipCurrentImage: boolean): Promise<WebuiProgress> {
    return this.call("GET", "/sdapi/v1/progress", progressSchema, undefined, { query: { skip_current_image: String(skipCurrentImage) } });
  }

  async interrupt(): Promise<void> {
    await this.call("POST", "/sdapi/v1/interrupt", z.unknown());
  }

  /** A generation or passthrough call: no timeout of its own (the task's timeout applies). */
  run(method: string, path: string, body: unknown, signal?: AbortSignal): Promise<WebuiResponse> {
    return this.request(method, path, method === "GET" || method === "DELETE" ? undefined : body, { signal, timeoutMs: null });
  }

  /**
   * The lists the Worker shows per node (samplers, upscalers, embeddings, options, …); what sd-webui
   * lacks is left out — the ControlNet lists when the extension is not installed (404).
   */
  async catalog(): Promise<WebuiCatalog> {
    const read = async <T>(key: string, path: string, schema: z.ZodType<T>): Promise<readonly [string, T] | null> => {
      try {
        return [key, await this.call("GET", path, schema)] as const;
      } catch {
        return null;
      }
    };
    const entries = await Promise.all([
      ...CATALOG_PATHS.map(async (name) => {
        const entry = await read(name, `/sdapi/v1/${name}`, z.array(z.unknown()));
        // A lora's metadata is its safetensors header and can weigh megabytes: keep the names.
        return entry && name === "loras" ? ([name, entry[1].map(trimLora)] as const) : entry;
      }),
      ...CATALOG_OBJECT_PATHS.map((name) => read(name, `/sdapi/v1/${name}`, z.record(z.string(), z.unknown()))),
      ...CONTROLNET_CATALOG.map(async ([key, path, field]) => {
        const entry = await read(key, path, z.looseObject({ [field]: z.array(z.string()) }));
        return entry ? ([key, entry[1][field]] as const) : null;
      }),
    ]);
    return Object.fromEntries(entries.filter((entry) => entry !== null));
  }
}

function trimLora(entry: unknown): unknown {
  if (!entry || typeof entry !== "object") return entry;
  const { name, alias, path } = entry as { name?: unknown; alias?: unknown; path?: unknown };
  return { name, alias, path };
}
