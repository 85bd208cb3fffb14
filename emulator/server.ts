// The sd-webui emulator: an HTTP server with the endpoints, shapes and one-job-at-a-time
// behaviour of an API-only AUTOMATIC1111 sd-webui (v1.10), for machines without a GPU.
import { createHash, timingSafeEqual } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { AddonFolder } from "./addon-folder.ts";
import { loadEmbeddings } from "./addons.ts";
import { CheckpointRegistry } from "./checkpoints.ts";
import type { EmulatorContext } from "./context.ts";
import { errorResponse, httpException, RequestValidationError, RoutingError, WebuiError } from "./errors.ts";
import { resolveFolders } from "./folders.ts";
import { GenerationState } from "./generation-state.ts";
import { HashCache } from "./hash-cache.ts";
import { LoadedModel, selectCheckpoint } from "./loaded-model.ts";
import { FileHashes } from "./model-files.ts";
import { OptionsStore } from "./options-store.ts";
import { QueueLock } from "./queue-lock.ts";
import { ROUTES, type Route } from "./routes.ts";

export interface EmulatorOptions {
  /** 0 = any free port. Default 0. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** sd-webui's --data-dir: models/Stable-diffusion, models/Lora, embeddings … under it. */
  dataDir?: string;
  /** The checkpoint folder (--ckpt-dir); default DATA/models/Stable-diffusion. Without dataDir, DATA is two levels above it. */
  modelsDir?: string;
  /** --nowebui: no UI routes (no /internal/progress), as sd-webui's api_only(). Default false. */
  apiOnly?: boolean;
  /** Pretend the sd-webui-controlnet extension is installed. Default false. */
  controlnet?: boolean;
  /** Time per sampling step of one image. Default 50. */
  stepMs?: number;
  /** Time to load a different checkpoint from its file. Default 1000. */
  loadMs?: number;
  /** Time to switch to a checkpoint held in RAM (sd_checkpoints_limit, sd_checkpoint_cache). Default 200. */
  ramLoadMs?: number;
  /** HTTP Basic credentials for the core API, like --api-auth. Default none. */
  auth?: { username: string; password: string } | null;
  /** A path prefix in front of every route, e.g. "/webui". Default "". */
  basePath?: string;
  /** Live preview every this many sampling steps (the show_progress_every_n_steps setting). Default 2. */
  livePreviewEvery?: number;
}

export interface RunningEmulator {
  /** Base URL including basePath, e.g. http://127.0.0.1:7861. */
  url: string;
  port: number;
  close(): Promise<void>;
  stats(): {
    /** Finished txt2img/img2img requests. */
    generations: number;
    /** Checkpoint loads that cost loadMs (not the instant one at start-up). */
    loads: number;
    /** Switches to a checkpoint held in RAM, which cost ramLoadMs. */
    ramLoads: number;
    /** Titles of the checkpoints held in RAM besides the loaded one, most recently used first. */
    ramCheckpoints: string[];
    /** Title of the checkpoint in memory, as sd-webui's titles: "<file> [<short hash>]". */
    loadedCheckpoint: string | null;
  };
}

/** modules/esrgan_model.py find_models ext_filter. */
const ESRGAN_EXTENSIONS = [".pt", ".pth", ".safetensors"];

/** Large enough for a batch of big base64 images. */
const MAX_BODY_BYTES = 256 * 1024 * 1024;

function normaliseBasePath(basePath: string): string {
  const trimmed = basePath.replace(/\/+$/, "");
  if (trimmed === "") return "";
  if (!trimmed.startsWith("/")) throw new Error(`basePath must start with "/": ${basePath}`);
  return trimmed;
}

function checkNumber(name: string, value: number, min: number): number {
  if (!Number.isFinite(value) || value < min) throw new Error(`${name} must be a number >= ${min}, got ${value}`);
  return value;
}

const digest = (text: string) => createHash("sha256").update(text).digest();

function checkBasicAuth(header: string | undefined, auth: { username: string; password: string }): void {
  const [scheme, encoded] = (header ?? "").split(" ", 2);
  if (scheme?.toLowerCase() !== "basic" || !encoded) throw httpException(401, "Not authenticated");
  const decoded = Buffer.from(encoded, "base64").toString("utf8");
  const separator = decoded.indexOf(":");
  if (separator < 0) throw httpException(401, "Invalid authentication credentials");
  const username = decoded.slice(0, separator);
  const password = decoded.slice(separator + 1);
  const matches = timingSafeEqual(digest(username), digest(auth.username)) && timingSafeEqual(digest(password), digest(auth.password));
  if (!matches) throw httpException(401, "Incorrect username or password");
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new RoutingError(413, "Request body too large"));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** FastAPI's answer to a body that is not JSON. */
function parseJson(raw: Buffer): unknown {
  const text = raw.toString("utf8");
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const position = Number(/position (\d+)/.exec(message)?.[1] ?? 0);
    throw new RequestValidationError([{ loc: ["body", position], msg: message, type: "value_error.jsondecode" }]);
  }
}

function findRoute(ctx: EmulatorContext, method: string, path: string): Route {
  const candidates = ROUTES.filter((route) => route.path === path && (route.available?.(ctx) ?? true));
  if (candidates.length === 0) throw new RoutingError(404, "Not Found");
  const route = candidates.find((candidate) => candidate.method === method);
  if (!route) throw new RoutingError(405, "Method Not Allowed");
  return route;
}

export async function startEmulator(options: EmulatorOptions): Promise<RunningEmulator> {
  const host = options.host ?? "127.0.0.1";
  const basePath = normaliseBasePath(options.basePath ?? "");
  const stepMs = checkNumber("stepMs", options.stepMs ?? 50, 0);
  const loadMs = checkNumber("loadMs", options.loadMs ?? 1000, 0);
  const ramLoadMs = checkNumber("ramLoadMs", options.ramLoadMs ?? 200, 0);
  const livePreviewEvery = checkNumber("livePreviewEvery", options.livePreviewEvery ?? 2, -1);
  const auth = options.auth ?? null;

  const folders = resolveFolders(options.dataDir, options.modelsDir);
  await mkdir(folders.byType.checkpoint, { recursive: true });
  const settings = new OptionsStore(livePreviewEvery, options.dataDir === undefined ? null : path.join(folders.dataDir, "config.json"));
  await settings.load();
  const closing = new AbortController();
  const hashes = new FileHashes();
  const checkpoints = new CheckpointRegistry(
    folders.byType.checkpoint,
    hashes,
    new HashCache(options.dataDir === undefined ? null : path.join(folders.dataDir, "cache.json")),
  );
  await checkpoints.refresh();
  const addons = {
    lora: new AddonFolder(folders.byType.lora, hashes),
    vae: new AddonFolder(folders.byType.vae, hashes),
    controlnet: new AddonFolder(folders.byType.controlnet, hashes),
    embedding: new AddonFolder(folders.byType.embedding, hashes),
    upscaler: new AddonFolder(folders.byType.upscaler, hashes, ESRGAN_EXTENSIONS),
  };
  for (const folder of [addons.lora, addons.vae, addons.controlnet, addons.upscaler]) await folder.refresh();
  const model = new LoadedModel(settings, checkpoints, { loadMs, ramLoadMs }, closing.signal);
  // At start sd-webui loads the checkpoint its (saved) settings name, else the first one.
  const initial = checkpoints.list().length > 0 ? selectCheckpoint(checkpoints, settings) : undefined;
  if (initial) {
    await model.setInitial(initial);
    settings.set("sd_model_checkpoint", initial.title);
  }
  const ctx: EmulatorContext = {
    folders,
    apiOnly: options.apiOnly ?? false,
    controlnet: options.controlnet ?? false,
    stepMs,
    host,
    authEnabled: auth !== null,
    port: 0,
    checkpoints,
    addons,
    embeddingsScannedMtimeMs: -1,
    options: settings,
    state: new GenerationState(settings),
    lock: new QueueLock(),
    model,
    generations: 0,
  };

  await loadEmbeddings(ctx, true);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const startedMs = performance.now();
    const send = (status: number, body: unknown) => {
      if (res.headersSent || res.destroyed) return;
      const payload = JSON.stringify(body === undefined ? null : body);
      res.writeHead(status, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(payload),
        "x-process-time": ((performance.now() - startedMs) / 1000).toFixed(4),
      });
      res.end(payload);
    };
    try {
      const url = new URL(req.url ?? "/", "http://emulator");
      const underBase = basePath === "" || url.pathname === basePath || url.pathname.startsWith(`${basePath}/`);
      if (!underBase) throw new RoutingError(404, "Not Found");
      const route = findRoute(ctx, req.method ?? "GET", url.pathname.slice(basePath.length));
      if (route.auth && auth) checkBasicAuth(req.headers.authorization, auth);
      const raw = await readBody(req);
      send(200, await route.handle(ctx, { query: url.searchParams, body: () => parseJson(raw) }));
    } catch (error) {
      const expected = error instanceof WebuiError || error instanceof RequestValidationError || error instanceof RoutingError;
      if (!expected && !ctx.state.closed) console.error(`emulator: ${req.method} ${req.url} failed:`, error);
      const { status, body } = errorResponse(error);
      send(status, body);
    }
  };

  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  ctx.port = (server.address() as AddressInfo).port;
  const urlHost = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "[::1]" : host.includes(":") ? `[${host}]` : host;

  let closed: Promise<void> | null = null;
  return {
    url: `http://${urlHost}:${ctx.port}${basePath}`,
    port: ctx.port,
    close() {
      closed ??= new Promise<void>((resolve) => {
        ctx.state.close();
        closing.abort();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
    stats: () => ({
      generations: ctx.generations,
      loads: model.loads,
      ramLoads: model.ramLoads,
      ramCheckpoints: model.heldInRam(),
      loadedCheckpoint: model.current?.title ?? null,
    }),
  };
}
