// A test gateway: the Worker's side of the node protocol (src/protocol/node.ts), in memory, on a
// node:http server. Faithful where the agent can notice — bearer auth, zod-validated bodies,
// long-poll claims, leases (409 stale_lease), Range on model files, retry of retryable
// failures — with hooks to enqueue tasks, cancel them, and break things on purpose.
import { createHash, randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { z } from "zod";
import { MODEL_FOLDER_BY_TYPE, type ModelType } from "../../../src/protocol/model-types.ts";
import {
  type AddonFile,
  type ClaimResponse,
  claimRequestSchema,
  completeRequestSchema,
  failRequestSchema,
  heartbeatSchema,
  LEASE_HEADER,
  type ModelFile,
  progressReportSchema,
  registerRequestSchema,
  type TaskKind,
} from "../../../src/protocol/node.ts";
import { NODE_ID_TAKEN } from "../../../src/protocol/node-errors.ts";

export type TaskStatus = "waiting" | "running" | "succeeded" | "failed" | "cancelled";

export interface TestModel {
  name: string;
  type: ModelType;
  /** Where an add-on goes under sd-webui's data directory. */
  folder: string;
  fileName: string;
  bytes: Buffer;
  /** What the gateway advertises (defaults to the real sha256 of `bytes`). */
  sha256: string;
}

export interface EnqueueInput {
  id?: string;
  kind: TaskKind;
  model: string;
  /** Registered add-on names the task needs (the claim carries their files). */
  addons?: string[];
  payload?: Record<string, unknown>;
  inputs?: { pointer: string; key: string }[];
  vae?: string | null;
  passthrough?: { method: "GET" | "POST" | "PUT" | "DELETE"; path: string } | null;
  timeoutSeconds?: number;
  keepInterruptedImages?: boolean;
}

export interface TaskRecord {
  id: string;
  kind: TaskKind;
  model: string;
  addons: string[];
  payload: Record<string, unknown>;
  inputs: { pointer: string; key: string }[];
  vae: string | null;
  passthrough: EnqueueInput["passthrough"];
  timeoutSeconds: number;
  keepInterruptedImages: boolean;
  status: TaskStatus;
  attempts: number;
  lease: { id: string; nodeId: string; expiresAt: number } | null;
  cancelRequested: boolean;
  /** Nodes that claimed it, in order. */
  claimedBy: string[];
  images: Map<number, { bytes: Buffer; contentType: string }>;
  progress: z.output<typeof progressReportSchema>[];
  complete: z.output<typeof completeRequestSchema> | null;
  failures: (z.output<typeof failRequestSchema> & { attempt: number })[];
  finishedAt: number | null;
}

export interface NodeRecord {
  nodeId: string;
  registrations: z.output<typeof registerRequestSchema>[];
  heartbeats: z.output<typeof heartbeatSchema>[];
  deregistered: boolean;
  restartWebui: boolean;
  /** Heartbeat answers say drain (the fleet scales in and chose this node). */
  drain: boolean;
  /** Checkpoints the heartbeat answers ask the node to prefetch. */
  prefetch: string[];
  /** The interval heartbeat answers tell the node (null: they leave it out, as older Workers do). */
  heartbeatIntervalMs: number | null;
  claims: number;
  /** The body of the node's last claim. */
  lastClaim: z.output<typeof claimRequestSchema> | null;
  /** Another process registered under this id: heartbeats and claims get 409 node_replaced. */
  replaced: boolean;
}

export interface ModelRequest {
  name: string;
  range: string | null;
  status: number;
}

export interface TestGatewayOptions {
  token?: string;
  heartbeatIntervalMs?: number;
  /** The interval heartbeat answers tell nodes, as Fleet's do (absent: they leave it out, as older Workers do). */
  answeredHeartbeatIntervalMs?: number;
  leaseMs?: number;
  claimWaitMs?: number;
  webuiExtraArgs?: string;
  maxAttempts?: number;
}

interface Waiter {
  nodeId: string;
  res: http.ServerResponse;
  timer: NodeJS.Timeout;
}

class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
  ) {
    super(detail);
  }
}

export class TestGateway {
  readonly token: string;
  readonly tasks = new Map<string, TaskRecord>();
  readonly nodes = new Map<string, NodeRecord>();
  readonly models = new Map<string, TestModel>();
  readonly inputs = new Map<string, Buffer>();
  readonly modelRequests: ModelRequest[] = [];
  /** Requests the gateway refused as malformed (a protocol bug in the agent). */
  readonly protocolErrors: string[] = [];
  /** Requests without the right bearer token. */
  unauthorized = 0;
  /** Node ids another node key holds: registering one answers 409 node_id_taken. */
  readonly takenNodeIds = new Set<string>();
  /** Cut the next model download's connection after this many bytes (once). */
  cutNextModelDownloadAfterBytes: number | null = null;
  private heldDownload: { afterBytes: number; released: Promise<void> } | null = null;

  private readonly server: http.Server;
  private readonly waiters: Waiter[] = [];
  private readonly sweeper: NodeJS.Timeout;
  private readonly options: Required<Omit<TestGatewayOptions, "token" | "answeredHeartbeatIntervalMs">> &
    Pick<TestGatewayOptions, "answeredHeartbeatIntervalMs">;
  private seq = 0;

  private constructor(options: TestGatewayOptions) {
    this.token = options.token ?? "test-node-token";
    this.options = {
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 200,
      leaseMs: options.leaseMs ?? 15_000,
      claimWaitMs: options.claimWaitMs ?? 2_000,
      webuiExtraArgs: options.webuiExtraArgs ?? "",
      maxAttempts: options.maxAttempts ?? 3,
      answeredHeartbeatIntervalMs: options.answeredHeartbeatIntervalMs,
    };
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        if (error instanceof HttpProblem) return sendProblem(res, error.status, error.code, error.message);
        sendProblem(res, 500, "internal", String(error));
      });
    });
    this.sweeper = setInterval(() => this.expireLeases(), 100);
  }

  static async start(options: TestGatewayOptions = {}): Promise<TestGateway> {
    const gateway = new TestGateway(options);
    await new Promise<void>((resolve) => gateway.server.listen(0, "127.0.0.1", resolve));
    return gateway;
  }

  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.res.destroy();
    }
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- test controls -----------------------------------------------------------------------------

  /** Registers (or re-uploads) a model: a checkpoint unless `type` says otherwise. */
  addModel(model: { name: string; bytes: Buffer; fileName?: string; sha256?: string; type?: ModelType; folder?: string }): TestModel {
    const type = model.type ?? "checkpoint";
    const full: TestModel = {
      name: model.name,
      type,
      folder: model.folder ?? MODEL_FOLDER_BY_TYPE[type],
      fileName: model.fileName ?? `${model.name}.safetensors`,
      bytes: model.bytes,
      sha256: model.sha256 ?? createHash("sha256").update(model.bytes).digest("hex"),
    };
    this.models.set(model.name, full);
    return full;
  }

  addInput(key: string, bytes: Buffer): void {
    this.inputs.set(key, bytes);
  }

  enqueue(input: EnqueueInput): string {
    if (this.models.get(input.model)?.type !== "checkpoint") throw new Error(`unknown checkpoint ${input.model}`);
    for (const addon of input.addons ?? []) {
      const type = this.models.get(addon)?.type;
      if (!type || type === "checkpoint") throw new Error(`unknown add-on ${addon}`);
    }
    const id = input.id ?? `task-${++this.seq}-${randomUUID().slice(0, 8)}`;
    this.tasks.set(id, {
      id,
      kind: input.kind,
      model: input.model,
      addons: input.addons ?? [],
      payload: input.payload ?? {},
      inputs: input.inputs ?? [],
      vae: input.vae ?? null,
      passthrough: input.passthrough ?? null,
      timeoutSeconds: input.timeoutSeconds ?? 120,
      keepInterruptedImages: input.keepInterruptedImages ?? false,
      status: "waiting",
      attempts: 0,
      lease: null,
      cancelRequested: false,
      claimedBy: [],
      images: new Map(),
      progress: [],
      complete: null,
      failures: [],
      finishedAt: null,
    });
    this.dispatch();
    return id;
  }

  /** Like POST /tasks/{id}/cancellation: waiting → cancelled now; running → the node is told. */
  cancel(id: string): void {
    const task = this.mustTask(id);
    if (task.status === "waiting") this.finish(task, "cancelled");
    else if (task.status === "running") task.cancelRequested = true;
  }

  /** The running task's lease runs out now (as if the node had gone quiet): back to the queue. */
  expireLease(id: string): void {
    const task = this.mustTask(id);
    if (task.status !== "running" || !task.lease) throw new Error(`task ${id} is not running`);
    task.lease.expiresAt = 0;
    this.expireLeases();
  }

  /** The next heartbeat answer of this node says restartWebui. */
  requestWebuiRestart(nodeId: string): void {
    this.mustNode(nodeId).restartWebui = true;
  }

  /** From now on this node's heartbeat answers say drain, as Fleet's do for a node chosen to leave. */
  requestDrain(nodeId: string): void {
    this.mustNode(nodeId).drain = true;
  }

  /** From now on this node's heartbeat answers name these checkpoints to prefetch, as Fleet's do. */
  requestPrefetch(nodeId: string, names: string[]): void {
    this.mustNode(nodeId).prefetch = names;
  }

  /** The next model download sends this many bytes, then waits until the returned function is called. */
  holdNextModelDownload(afterBytes: number): () => void {
    let release!: () => void;
    this.heldDownload = { afterBytes, released: new Promise((resolve) => (release = resolve)) };
    return release;
  }

  /** Forget a node, as a Worker whose Fleet state was lost (its next call gets 404). */
  forgetNode(nodeId: string): void {
    this.nodes.delete(nodeId);
  }

  /** As if another agent process had registered under this node id. */
  replaceNode(nodeId: string): void {
    this.mustNode(nodeId).replaced = true;
  }

  task(id: string): TaskRecord {
    return this.mustTask(id);
  }

  node(nodeId: string): NodeRecord {
    return this.mustNode(nodeId);
  }

  downloadsOf(name: string): ModelRequest[] {
    return this.modelRequests.filter((request) => request.name === name);
  }

  async waitFor<T>(what: string, check: () => T | null | undefined | false, timeoutMs = 20_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const value = check();
      if (value !== null && value !== undefined && value !== false) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Waits until the task reaches one of the final states and returns it. */
  waitForEnd(id: string, timeoutMs = 20_000): Promise<TaskRecord> {
    return this.waitFor(
      `task ${id} to end`,
      () => {
        const task = this.mustTask(id);
        return task.status === "succeeded" || task.status === "failed" || task.status === "cancelled" ? task : null;
      },
      timeoutMs,
    );
  }

  // ---- protocol ----------------------------------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://gateway");
    const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    if (parts[0] !== "nodes") throw new HttpProblem(404, "not_found", "no such route");
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      this.unauthorized++;
      throw new HttpProblem(401, "unauthorized", "bad node token");
    }
    const method = req.method ?? "GET";
    const route = `${method} ${parts.length}`;

    if (method === "POST" && parts[1] === "register" && parts.length === 2) return this.register(req, res);
    if (parts[1] === "models" && parts[3] === "file" && method === "GET" && parts.length === 4) return this.modelFile(req, res, parts[2]!);
    if (parts[1] === "tasks" && parts.length >= 4) {
      const task = this.mustTask(parts[2]!, true);
      if (method === "GET" && parts[3] === "inputs" && parts.length === 5) return this.input(req, res, task, parts[4]!);
      if (method === "POST" && parts[3] === "progress") return this.progress(req, res, task);
      if (method === "PUT" && parts[3] === "images" && parts.length === 5) return this.image(req, res, task, Number(parts[4]));
      if (method === "POST" && parts[3] === "complete") return this.complete(req, res, task);
      if (method === "POST" && parts[3] === "result") return this.result(req, res, task);
      if (method === "POST" && parts[3] === "fail") return this.fail(req, res, task);
    }
    if (parts.length === 2 && method === "DELETE") {
      const node = this.mustNode(parts[1]!);
      node.deregistered = true;
      return sendJson(res, 200, { ok: true });
    }
    if (parts.length === 3 && method === "POST" && parts[2] === "heartbeat") return this.heartbeat(req, res, parts[1]!);
    if (parts.length === 3 && method === "POST" && parts[2] === "claim") return this.claim(req, res, parts[1]!);
    throw new HttpProblem(404, "not_found", `no route ${route}`);
  }

  private async register(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await this.readBody(req, registerRequestSchema, "register");
    if (this.takenNodeIds.has(body.nodeId)) throw new HttpProblem(409, NODE_ID_TAKEN, `node id ${body.nodeId} belongs to another node key`);
    const node: NodeRecord = this.nodes.get(body.nodeId) ?? {
      nodeId: body.nodeId,
      registrations: [],
      heartbeats: [],
      deregistered: false,
      restartWebui: false,
      drain: false,
      prefetch: [],
      heartbeatIntervalMs: this.options.answeredHeartbeatIntervalMs ?? null,
      claims: 0,
      lastClaim: null,
      replaced: false,
    };
    node.registrations.push(body);
    node.deregistered = false;
    node.replaced = false;
    this.nodes.set(body.nodeId, node);
    sendJson(res, 200, {
      nodeId: body.nodeId,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      leaseMs: this.options.leaseMs,
      claimWaitMs: this.options.claimWaitMs,
      webuiExtraArgs: this.options.webuiExtraArgs,
    });
  }

  private async heartbeat(req: http.IncomingMessage, res: http.ServerResponse, nodeId: string): Promise<void> {
    const body = await this.readBody(req, heartbeatSchema, "heartbeat");
    const node = this.mustNode(nodeId);
    if (node.replaced) throw new HttpProblem(409, "node_replaced", "another process registered this node id");
    node.heartbeats.push(body);
    const restartWebui = node.restartWebui;
    node.restartWebui = false;
    const interval = node.heartbeatIntervalMs === null ? {} : { heartbeatIntervalMs: node.heartbeatIntervalMs };
    sendJson(res, 200, { restartWebui, drain: node.drain, prefetch: node.prefetch.map((name) => modelFile(this.models.get(name)!)), ...interval });
  }

  private async claim(req: http.IncomingMessage, res: http.ServerResponse, nodeId: string): Promise<void> {
    const body = await this.readBody(req, claimRequestSchema, "claim");
    const node = this.mustNode(nodeId);
    if (node.replaced) throw new HttpProblem(409, "node_replaced", "another process registered this node id");
    node.claims++;
    node.lastClaim = body;
    const task = this.nextWaiting();
    if (task) return sendJson(res, 200, this.lease(task, nodeId));
    const waiter: Waiter = {
      nodeId,
      res,
      timer: setTimeout(
        () => {
          this.removeWaiter(waiter);
          res.writeHead(204).end();
        },
        Math.min(body.waitMs, this.options.claimWaitMs),
      ),
    };
    // A node that hangs up (stopping) must not be handed a task.
    res.on("close", () => {
      if (!res.writableEnded) {
        clearTimeout(waiter.timer);
        this.removeWaiter(waiter);
      }
    });
    this.waiters.push(waiter);
  }

  private modelFile(req: http.IncomingMessage, res: http.ServerResponse, name: string): void {
    const model = this.models.get(name);
    const range = req.headers.range ?? null;
    if (!model) {
      this.modelRequests.push({ name, range, status: 404 });
      throw new HttpProblem(404, "model_not_found", `no model ${name}`);
    }
    const size = model.bytes.length;
    let start = 0;
    let status = 200;
    if (range) {
      const match = /^bytes=(\d+)-(\d*)$/.exec(range);
      if (!match) throw new HttpProblem(400, "bad_range", range);
      start = Number(match[1]);
      if (start >= size) {
        this.modelRequests.push({ name, range, status: 416 });
        res.writeHead(416, { "Content-Range": `bytes */${size}` }).end();
        return;
      }
      status = 206;
    }
    this.modelRequests.push({ name, range, status });
    const body = model.bytes.subarray(start);
    const headers: Record<string, string | number> = {
      "Content-Type": "application/octet-stream",
      "Content-Length": body.length,
      "Accept-Ranges": "bytes",
    };
    if (status === 206) headers["Content-Range"] = `bytes ${start}-${size - 1}/${size}`;
    res.writeHead(status, headers);
    const held = this.heldDownload;
    if (held && held.afterBytes < body.length) {
      this.heldDownload = null;
      res.write(body.subarray(0, held.afterBytes));
      void held.released.then(() => res.end(body.subarray(held.afterBytes)));
      return;
    }
    const cut = this.cutNextModelDownloadAfterBytes;
    if (cut !== null && cut < body.length) {
      this.cutNextModelDownloadAfterBytes = null;
      res.write(body.subarray(0, cut), () => setTimeout(() => res.destroy(), 20));
      return;
    }
    res.end(body);
  }

  private input(req: http.IncomingMessage, res: http.ServerResponse, task: TaskRecord, key: string): void {
    this.checkLease(task, req.headers[LEASE_HEADER.toLowerCase()]);
    if (!task.inputs.some((input) => input.key === key)) throw new HttpProblem(404, "input_not_found", `task has no input ${key}`);
    const bytes = this.inputs.get(key);
    if (!bytes) throw new HttpProblem(404, "input_not_found", `no input ${key}`);
    res.writeHead(200, { "Content-Type": "image/png", "Content-Length": bytes.length }).end(bytes);
  }

  private async progress(req: http.IncomingMessage, res: http.ServerResponse, task: TaskRecord): Promise<void> {
    const body = await this.readBody(req, progressReportSchema, "progress");
    this.checkLease(task, body.leaseId);
    task.progress.push(body);
    task.lease!.expiresAt = Date.now() + this.options.leaseMs;
    sendJson(res, 200, { cancel: task.cancelRequested, leaseExpiresAt: task.lease!.expiresAt });
  }

  private async image(req: http.IncomingMessage, res: http.ServerResponse, task: TaskRecord, index: number): Promise<void> {
    const bytes = await readAll(req);
    this.checkLease(task, req.headers[LEASE_HEADER.toLowerCase()]);
    if (!Number.isInteger(index) || index < 0 || index > 255) throw new HttpProblem(400, "bad_index", String(index));
    if (bytes.length === 0) this.protocolError("image upload with an empty body");
    task.images.set(index, { bytes, contentType: String(req.headers["content-type"] ?? "") });
    sendJson(res, 200, { key: `images/test/${task.id}_${index}.png` });
  }

  private async complete(req: http.IncomingMessage, res: http.ServerResponse, task: TaskRecord): Promise<void> {
    const body = await this.readBody(req, completeRequestSchema, "complete");
    this.checkLease(task, body.leaseId);
    for (let index = 0; index < body.imageCount; index++) {
      if (!task.images.has(index)) this.protocolError(`complete says ${body.imageCount} images but image ${index} was not uploaded`);
    }
    task.complete = body;
    // As the Worker: a completion is finished work, even after a cancel (only a failure ends cancelled).
    this.finish(task, "succeeded");
    sendJson(res, 200, { ok: true });
  }

  /** Images and completion in one multipart request, as the Worker's POST .../result takes them. */
  private async result(req: http.IncomingMessage, res: http.ServerResponse, task: TaskRecord): Promise<void> {
    const bytes = await readAll(req);
    const form = await new Request("http://test-gateway/result", {
      method: "POST",
      headers: { "content-type": String(req.headers["content-type"] ?? "") },
      body: new Uint8Array(bytes),
    }).formData();
    const raw = form.get("result");
    if (typeof raw !== "string") this.protocolError("result without a `result` field");
    const parsed = completeRequestSchema.safeParse(JSON.parse(raw));
    if (!parsed.success) this.protocolError(`result: ${parsed.error.message}`);
    this.checkLease(task, parsed.data.leaseId);
    const files = form.getAll("image").filter((f): f is File => typeof f !== "string");
    if (files.length !== parsed.data.imageCount) this.protocolError(`result says ${parsed.data.imageCount} images but carries ${files.length}`);
    for (const [index, file] of files.entries()) {
      const image = Buffer.from(await file.arrayBuffer());
      if (image.length === 0) this.protocolError(`result image ${index} is empty`);
      task.images.set(index, { bytes: image, contentType: file.type });
    }
    task.complete = parsed.data;
    this.finish(task, "succeeded");
    sendJson(res, 200, { ok: true });
  }

  private async fail(req: http.IncomingMessage, res: http.ServerResponse, task: TaskRecord): Promise<void> {
    const body = await this.readBody(req, failRequestSchema, "fail");
    this.checkLease(task, body.leaseId);
    task.failures.push({ ...body, attempt: task.attempts });
    if (task.cancelRequested) this.finish(task, "cancelled");
    else if (body.retryable && task.attempts < this.options.maxAttempts) this.requeue(task);
    else this.finish(task, "failed");
    sendJson(res, 200, { ok: true });
  }

  // ---- queue and leases --------------------------------------------------------------------------

  private nextWaiting(): TaskRecord | undefined {
    return [...this.tasks.values()].find((task) => task.status === "waiting");
  }

  private lease(task: TaskRecord, nodeId: string): ClaimResponse {
    const model = this.models.get(task.model)!;
    task.status = "running";
    task.attempts++;
    task.claimedBy.push(nodeId);
    task.lease = { id: randomUUID(), nodeId, expiresAt: Date.now() + this.options.leaseMs };
    return {
      task: {
        id: task.id,
        kind: task.kind,
        model: modelFile(model),
        vae: task.vae,
        addons: task.addons.map((name) => addonFile(this.models.get(name)!)),
        payload: task.payload,
        inputs: task.inputs,
        passthrough: task.passthrough ?? null,
        attempt: task.attempts,
        timeoutSeconds: task.timeoutSeconds,
        keepInterruptedImages: task.keepInterruptedImages,
      },
      lease: { id: task.lease.id, expiresAt: task.lease.expiresAt, leaseMs: this.options.leaseMs },
    };
  }

  private dispatch(): void {
    while (this.waiters.length > 0) {
      const task = this.nextWaiting();
      if (!task) return;
      const waiter = this.waiters.shift()!;
      clearTimeout(waiter.timer);
      sendJson(waiter.res, 200, this.lease(task, waiter.nodeId));
    }
  }

  private requeue(task: TaskRecord): void {
    task.status = "waiting";
    task.lease = null;
    this.dispatch();
  }

  private finish(task: TaskRecord, status: TaskStatus): void {
    task.status = status;
    task.lease = null;
    task.finishedAt = Date.now();
  }

  private expireLeases(): void {
    const now = Date.now();
    for (const task of this.tasks.values()) {
      if (task.status !== "running" || !task.lease || task.lease.expiresAt > now) continue;
      task.failures.push({
        leaseId: task.lease.id,
        error: "lease expired",
        retryable: true,
        infrastructure: true,
        webuiError: null,
        modelFailure: null,
        attempt: task.attempts,
      });
      if (task.attempts < this.options.maxAttempts) this.requeue(task);
      else this.finish(task, "failed");
    }
  }

  private checkLease(task: TaskRecord, leaseId: unknown): void {
    if (task.status !== "running" || !task.lease || task.lease.id !== leaseId) {
      throw new HttpProblem(409, "stale_lease", "lease is not the task's current one");
    }
  }

  private removeWaiter(waiter: Waiter): void {
    const index = this.waiters.indexOf(waiter);
    if (index >= 0) this.waiters.splice(index, 1);
  }

  private mustTask(id: string, http404 = false): TaskRecord {
    const task = this.tasks.get(id);
    if (!task) {
      if (http404) throw new HttpProblem(404, "task_not_found", `no task ${id}`);
      throw new Error(`no task ${id}`);
    }
    return task;
  }

  private mustNode(nodeId: string): NodeRecord {
    const node = this.nodes.get(nodeId);
    if (!node) throw new HttpProblem(404, "node_not_found", `no node ${nodeId}`);
    return node;
  }

  private protocolError(message: string): never {
    this.protocolErrors.push(message);
    throw new HttpProblem(400, "bad_request", message);
  }

  private async readBody<S extends z.ZodType>(req: http.IncomingMessage, schema: S, what: string): Promise<z.output<S>> {
    const text = (await readAll(req)).toString("utf8");
    if (req.headers["content-type"] !== "application/json") this.protocolError(`${what}: content-type ${req.headers["content-type"]}`);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      this.protocolError(`${what}: body is not JSON`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) this.protocolError(`${what}: ${parsed.error.message}`);
    return parsed.data as z.output<S>;
  }
}

function modelFile(model: TestModel): ModelFile {
  return { name: model.name, fileName: model.fileName, sha256: model.sha256, sizeBytes: model.bytes.length };
}

function addonFile(model: TestModel): AddonFile {
  if (model.type === "checkpoint") throw new Error(`${model.name} is a checkpoint`);
  return { name: model.name, type: model.type, folder: model.folder, fileName: model.fileName, sha256: model.sha256, sizeBytes: model.bytes.length };
}

function readAll(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) }).end(text);
}

function sendProblem(res: http.ServerResponse, status: number, code: string, detail: string): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify({ type: `https://sdgate.dev/problems/${code}`, title: code, status, detail, code });
  res.writeHead(status, { "Content-Type": "application/problem+json", "Content-Length": Buffer.byteLength(text) }).end(text);
}
