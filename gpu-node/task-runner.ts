// One claimed task, end to end: checkpoint and add-ons on disk, the checkpoint loaded (and
// confirmed), input images resolved, the sd-webui call with progress polling (cancel and timeout
// interrupt sd-webui), the result checked to come from the asked-for weights, image uploads, then
// complete — or fail with sd-webui's own message. A 409 from the Worker at any point means
// the task is no longer ours: it is dropped without another word to the Worker.
import { z } from "zod";
import type { AddonType } from "../src/protocol/model-types.ts";
import type { ClaimedTask, ClaimResponse, FailRequest, TaskTimings } from "../src/protocol/node.ts";
import { type GatewayClient, GatewayHttpError, isGatewayStatus, isTransientGatewayError, StaleLeaseError } from "./gateway-client.ts";
import { errorMessage, type Logger } from "./logger.ts";
import { type CachedFile, type ModelCache, ModelCacheError } from "./model-cache.ts";
import { addonPath, checkpointPath } from "./model-paths.ts";
import { refreshAddons } from "./webui/addon-refresh.ts";
import { type WebuiClient, WebuiConnectionError, WebuiHttpError, type WebuiResponse, webuiErrorMessage } from "./webui/client.ts";
import { CheckpointLoadError, CheckpointNotListedError, type LoadedModel, resultHashProblem } from "./webui/loaded-model.ts";
import { buildWebuiRequest, type InputImage, InvalidTaskError, type WebuiRequest } from "./webui/payload.ts";
import { GenerationPoller, type ReportFields } from "./webui/progress.ts";
import type { WebuiExit, WebuiSupervisor } from "./webui/supervisor.ts";

/** After an interrupt (cancel, timeout) sd-webui normally answers within a step; give up waiting after this. */
const INTERRUPT_GRACE_MS = 30_000;
/** A cancelled or timed-out request that never becomes active in sd-webui is abandoned after this. */
const UNSTARTED_ABANDON_MS = 10_000;

/** The task ends failed with this message. */
export class TaskFailure extends Error {
  override name = "TaskFailure";
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly webuiError: { status: number; body: unknown } | null = null,
    readonly modelFailure: FailRequest["modelFailure"] = null,
  ) {
    super(message);
  }
}

/** The node or its sd-webui failed, not the task: retryable, and the Worker bounds it apart (MAX_INFRA_RETRIES). */
export class InfrastructureFailure extends TaskFailure {
  override name = "InfrastructureFailure";
  constructor(message: string) {
    super(message, true);
  }
}

/** The task is not ours any more (stale lease): say nothing more to the Worker about it. */
class TaskDropped extends Error {
  override name = "TaskDropped";
}

export type TaskOutcome = "completed" | "failed" | "dropped";

export interface TaskRunnerDeps {
  gateway: GatewayClient;
  supervisor: WebuiSupervisor;
  cache: ModelCache;
  loadedModel: LoadedModel;
  logger: Logger;
  progressIntervalMs: number;
  /** sd-webui's data directory (add-ons go under it) and its checkpoint folder. */
  dataDir: string;
  checkpointsDir: string;
  /** New add-ons are on disk and sd-webui was told: its catalog changed. */
  onAddonsArrived: () => void;
}

const generationAnswerSchema = z.looseObject({
  images: z.array(z.string()).nullish(),
  parameters: z.record(z.string(), z.unknown()).nullish(),
  info: z.unknown(),
});
const extrasSingleAnswerSchema = z.looseObject({ image: z.string().nullish(), html_info: z.string().nullish() });
const extrasBatchAnswerSchema = z.looseObject({ images: z.array(z.string()).nullish(), html_info: z.string().nullish() });

export class TaskRunner {
  readonly task: ClaimedTask;
  private readonly leaseId: string;
  private readonly abortController = new AbortController();
  /** Where the time went, reported with complete. */
  private readonly timings: TaskTimings = {};
  private readonly log: Logger;
  private webui!: WebuiClient;
  /** Set when the task must end before sd-webui finishes (cancel, timeout, hard stop). */
  private stopReason: TaskFailure | null = null;
  private stopRequestedAt = 0;
  private interruptSent = false;
  private ourJobActive = false;
  private onCancel: () => void = () => this.abort(new TaskFailure("cancelled", false));

  constructor(
    private readonly deps: TaskRunnerDeps,
    claim: ClaimResponse,
  ) {
    this.task = claim.task;
    this.leaseId = claim.lease.id;
    this.log = deps.logger.child(`task ${claim.task.id}`);
  }

  get signal(): AbortSignal {
    return this.abortController.signal;
  }

  async run(): Promise<TaskOutcome> {
    const { supervisor } = this.deps;
    const onCrash = (exit: WebuiExit) =>
      this.abort(new InfrastructureFailure(`sd-webui crashed while running the task (${exit.signal ? `killed by ${exit.signal}` : `exit code ${exit.code}`})`));
    supervisor.on("crash", onCrash);
    const started = Date.now();
    this.log.info(`running ${this.task.kind} on ${this.task.model.name} (attempt ${this.task.attempt})`);
    try {
      await this.prepare();
      this.timings.modelMs = Date.now() - started;
      const request = buildWebuiRequest(this.task, await this.fetchInputs());
      const webuiStarted = Date.now();
      const answer = await this.callWebui(request);
      this.timings.webuiMs = Date.now() - webuiStarted;
      await this.finish(answer);
      this.log.info(`completed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      return "completed";
    } catch (error) {
      return await this.handleError(error);
    } finally {
      supervisor.off("crash", onCrash);
    }
  }

  /** Hard stop (second signal): interrupt sd-webui if it runs our job, fail the task as retryable. */
  abortNow(reason: string): void {
    const failure = new InfrastructureFailure(reason);
    if (this.ourJobActive && !this.interruptSent) {
      this.interruptSent = true;
      this.webui?.interrupt().catch(() => undefined);
    }
    this.abort(failure);
  }

  private abort(reason: Error): void {
    if (!this.abortController.signal.aborted) this.abortController.abort(reason);
  }

  // ---- phase 1: sd-webui up, checkpoint on disk and loaded --------------------------------------

  private async prepare(): Promise<void> {
    const { supervisor, cache, loadedModel } = this.deps;
    const model = this.task.model;
    let phase: ReportFields = { progress: 0, state: { job: "waiting for sd-webui" } };
    const reporting = this.startReporting(async () => phase);
    try {
      await supervisor.waitReady(this.signal);
      this.webui = supervisor.client;

      const checkpoint: CachedFile = { ...model, type: "checkpoint", path: checkpointPath(this.deps.checkpointsDir, model) };
      const addons = this.task.addons.map((addon): CachedFile & { type: AddonType } => {
        const where = addonPath(this.deps.dataDir, addon);
        if (!where) throw new TaskFailure(`add-on ${addon.name} names folder ${addon.folder}, which sd-webui does not read`, false);
        return { ...addon, path: where };
      });
      // Nothing the task uses, nor the loaded checkpoint, makes room for another of its files.
      const loaded = loadedModel.checkpoint;
      const protect = [checkpoint.path, ...addons.map((addon) => addon.path), ...(loaded ? [checkpointPath(this.deps.checkpointsDir, loaded)] : [])];
      const arrived = new Set<AddonType>();
      for (const file of [checkpoint, ...addons]) {
        phase = { progress: 0, state: { job: "downloading model" }, textinfo: `checking ${file.name}` };
        const { downloaded } = await cache.ensure(file, {
          signal: this.signal,
          protect,
          onProgress: (done, total) => {
            const percent = total > 0 ? Math.floor((done / total) * 100) : 0;
            phase = { progress: 0, state: { job: "downloading model" }, textinfo: `downloading ${file.name}: ${percent}%` };
          },
        });
        if (downloaded && file.type !== "checkpoint") arrived.add(file.type);
      }
      if (arrived.size > 0) await this.showAddons(arrived);

      phase = { progress: 0, state: { job: "loading model" }, textinfo: `loading ${model.name}` };
      await loadedModel.load(this.webui, supervisor.generation, model, this.task.vae, { signal: this.signal, log: this.log, printed: supervisor.printed });
      await cache.dropOtherVersions(checkpoint);
    } finally {
      await reporting.stop();
    }
  }

  /** New add-on files are on disk: sd-webui rescans its lists (or restarts, for upscalers), the Worker gets the new catalog. */
  private async showAddons(arrived: ReadonlySet<AddonType>): Promise<void> {
    const { supervisor } = this.deps;
    const { restartNeeded } = await refreshAddons(this.webui, arrived, this.log);
    if (restartNeeded) {
      if (supervisor.supervised) {
        this.log.info("restarting sd-webui: it lists upscalers only at start");
        await supervisor.restart();
        await supervisor.waitReady(this.signal);
        this.webui = supervisor.client;
      } else {
        this.log.warn("sd-webui lists upscalers only at start: restart the sd-webui this node attaches to for it to see the new upscaler");
      }
    }
    this.deps.onAddonsArrived();
  }

  // ---- phase 2: input images ---------------------------------------------------------------------

  private async fetchInputs(): Promise<InputImage[]> {
    const images: InputImage[] = [];
    for (const input of this.task.inputs) {
      try {
        images.push({ ...input, bytes: await this.deps.gateway.taskInput(this.task.id, input.key, this.leaseId, this.signal) });
      } catch (error) {
        if (isGatewayStatus(error, 404)) throw new TaskFailure(`input image ${input.key} is not available`, false);
        throw error;
      }
    }
    return images;
  }

  // ---- phase 3: the sd-webui call ----------------------------------------------------------------

  private async callWebui(request: WebuiRequest): Promise<WebuiResponse> {
    const task = this.task;
    const generation = request.isGeneration;
    const cancelled = new TaskFailure("cancelled", false);
    this.onCancel = () => this.requestStop(cancelled, generation);
    const timeoutMs = task.timeoutSeconds * 1000;
    const timer = setTimeout(() => this.requestStop(new TaskFailure(`timed out after ${task.timeoutSeconds} s`, false), generation), timeoutMs);
    const poller = new GenerationPoller(this.webui, task.id);
    const reporting = this.startReporting(async () => {
      if (!generation) return { progress: 0, state: { job: task.kind } };
      const fields = await poller.poll();
      this.ourJobActive = poller.active;
      await this.enforceStop(poller);
      return fields;
    }, false);
    try {
      const answer = await this.webui.run(request.method, request.path, request.body, this.signal);
      // An interrupted generation answers 200 with what it had (sd-webui's launch_sampling catches
      // InterruptedException and decodes the last latent, modules/sd_samplers_kdiffusion.py): a
      // cancelled task that asked to keep them completes with those images (and the Worker ends it
      // succeeded); any other cancelled task fails "cancelled" with none. A timeout fails.
      const keptAfterCancel = task.keepInterruptedImages && this.stopReason === cancelled && generation && answer.status >= 200 && answer.status < 300;
      if (this.stopReason && !keptAfterCancel) throw this.stopReason;
      return answer;
    } finally {
      clearTimeout(timer);
      await reporting.stop();
      this.ourJobActive = false;
    }
  }

  /** Cancel or timeout: interrupt our job once it is the active one; abandon it if it never starts. */
  private requestStop(reason: TaskFailure, interruptible: boolean): void {
    if (this.stopReason) return;
    this.stopReason = reason;
    this.stopRequestedAt = Date.now();
    this.log.info(`${reason.message}: stopping the sd-webui request`);
    if (!interruptible) this.abort(reason);
  }

  private async enforceStop(poller: GenerationPoller): Promise<void> {
    if (!this.stopReason) return;
    const waited = Date.now() - this.stopRequestedAt;
    if (!this.interruptSent && poller.active) {
      this.interruptSent = true;
      try {
        await this.webui.interrupt();
        this.log.info("interrupted sd-webui");
      } catch (error) {
        this.log.warn(`interrupt failed: ${errorMessage(error)}`);
      }
      this.stopRequestedAt = Date.now();
      return;
    }
    const limit = this.interruptSent ? INTERRUPT_GRACE_MS : UNSTARTED_ABANDON_MS;
    if (waited > limit) {
      this.log.warn(
        this.interruptSent ? "sd-webui did not stop after the interrupt; abandoning the request" : "the request never started in sd-webui; abandoning it",
      );
      this.abort(this.stopReason);
    }
  }

  // ---- phase 4: uploads and complete -------------------------------------------------------------

  private async finish(answer: WebuiResponse): Promise<void> {
    const { gateway } = this.deps;
    const task = this.task;
    if (task.kind === "passthrough") {
      await gateway.complete(task.id, {
        leaseId: this.leaseId,
        imageCount: 0,
        parameters: {},
        info: null,
        passthroughResult: { status: answer.status, body: answer.body },
        timings: this.timings,
      });
      return;
    }
    if (answer.status < 200 || answer.status >= 300) {
      throw new TaskFailure(webuiErrorMessage(answer.status, answer.body), false, { status: answer.status, body: answer.body });
    }

    let images: string[];
    let parameters: Record<string, unknown> = {};
    let info: unknown = null;
    if (task.kind === "extras") {
      const parsed = parseAnswer(extrasSingleAnswerSchema, answer.body);
      images = parsed.image ? [parsed.image] : [];
      info = parsed.html_info ?? null;
    } else if (task.kind === "extras_batch") {
      const parsed = parseAnswer(extrasBatchAnswerSchema, answer.body);
      images = parsed.images ?? [];
      info = parsed.html_info ?? null;
    } else {
      const parsed = parseAnswer(generationAnswerSchema, answer.body);
      images = parsed.images ?? [];
      parameters = parsed.parameters ?? {};
      info = parseInfo(parsed.info);
      // Images from other weights than the task's are never delivered.
      const problem = resultHashProblem(info, task.model);
      if (problem) {
        await this.deps.loadedModel.readFrom(this.webui, this.deps.supervisor.generation).catch(() => this.deps.loadedModel.forget());
        throw new CheckpointLoadError("wrong_weights", task.model, problem);
      }
      this.deps.loadedModel.ranOn(this.deps.supervisor.generation, task.model);
    }

    const files = images.map((image, index) => {
      const bytes = decodeImage(image);
      if (bytes.length === 0) throw new TaskFailure(`sd-webui returned an empty image at index ${index}`, true);
      return { bytes, contentType: sniffImageType(bytes) };
    });
    await gateway.deliver(
      task.id,
      { leaseId: this.leaseId, imageCount: files.length, parameters, info, passthroughResult: null, timings: this.timings },
      files,
    );
  }

  // ---- errors ------------------------------------------------------------------------------------

  private async handleError(error: unknown): Promise<TaskOutcome> {
    const reason = this.signal.aborted && this.signal.reason instanceof Error ? this.signal.reason : error;
    if (reason instanceof TaskDropped || reason instanceof StaleLeaseError || isGatewayStatus(reason, 404)) {
      this.log.info(`task is no longer ours (${errorMessage(reason)}); dropping it`);
      return "dropped";
    }
    const failure = this.toFailure(reason);
    this.log.warn(`failed${failure.retryable ? " (retryable)" : ""}: ${failure.message}`);
    try {
      await this.deps.gateway.fail(this.task.id, {
        leaseId: this.leaseId,
        error: failure.message.slice(0, 4000),
        retryable: failure.retryable,
        infrastructure: failure instanceof InfrastructureFailure,
        webuiError: failure.webuiError,
        modelFailure: failure.modelFailure,
      });
    } catch (failError) {
      if (failError instanceof StaleLeaseError) {
        this.log.info("task is no longer ours; dropping it");
        return "dropped";
      }
      this.log.error(`could not report the failure: ${errorMessage(failError)} (the lease will run out and the Worker retries)`);
    }
    return "failed";
  }

  private toFailure(error: unknown): TaskFailure {
    if (error instanceof TaskFailure) return error;
    if (error instanceof ModelCacheError) return new TaskFailure(error.message, error.retryable);
    if (error instanceof CheckpointNotListedError) return new TaskFailure(error.message, true);
    if (error instanceof CheckpointLoadError) {
      const { checkpoint, kind, reason } = error;
      return new TaskFailure(error.message, true, null, { checkpoint: checkpoint.name, sha256: checkpoint.sha256, kind, reason: reason.slice(0, 4000) });
    }
    if (error instanceof InvalidTaskError) return new TaskFailure(error.message, false);
    if (error instanceof WebuiConnectionError) {
      this.deps.supervisor.markUnhealthy();
      return new InfrastructureFailure(`lost the connection to sd-webui: ${error.message}`);
    }
    if (error instanceof WebuiHttpError) return new TaskFailure(error.message, false, { status: error.status, body: error.body });
    if (isTransientGatewayError(error)) return new InfrastructureFailure(`gateway unreachable: ${errorMessage(error)}`);
    if (error instanceof GatewayHttpError) return new TaskFailure(`gateway refused a call: ${errorMessage(error)}`, true);
    return new TaskFailure(`agent error: ${errorMessage(error)}`, true);
  }

  // ---- progress reports (they keep the lease alive and carry cancel) ----------------------------

  /**
   * Reports what `produce` returns every progress interval until stopped. The first report waits
   * one interval (a cached, loaded checkpoint needs none) unless `immediate`.
   */
  private startReporting(produce: () => Promise<ReportFields | null>, immediate = false): { stop(): Promise<void> } {
    let stopped = false;
    let wake: (() => void) | null = null;
    const interval = this.deps.progressIntervalMs;
    const sleepInterval = () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, interval);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    const loop = (async () => {
      if (!immediate) await sleepInterval();
      while (!stopped && !this.signal.aborted) {
        try {
          const fields = await produce();
          if (fields && !stopped) await this.report(fields);
        } catch (error) {
          this.log.debug(`progress: ${errorMessage(error)}`);
        }
        if (stopped) break;
        await sleepInterval();
      }
    })();
    return {
      stop: async () => {
        stopped = true;
        (wake as (() => void) | null)?.();
        await loop;
      },
    };
  }

  private async report(fields: ReportFields): Promise<void> {
    try {
      const answer = await this.deps.gateway.progress(this.task.id, { leaseId: this.leaseId, ...fields });
      if (answer.cancel && !this.stopReason) this.onCancel();
    } catch (error) {
      if (error instanceof StaleLeaseError || isGatewayStatus(error, 404)) {
        // Someone else owns the task now: free the GPU if our run of it is going.
        if (this.ourJobActive && !this.interruptSent) {
          this.interruptSent = true;
          this.webui.interrupt().catch(() => undefined);
        }
        this.abort(new TaskDropped(errorMessage(error)));
        return;
      }
      throw error;
    }
  }
}

function parseAnswer<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new TaskFailure(`unexpected answer from sd-webui: ${parsed.error.issues[0]?.message ?? "invalid"}`, false);
  return parsed.data;
}

function parseInfo(info: unknown): unknown {
  if (typeof info !== "string") return info ?? null;
  try {
    return JSON.parse(info);
  } catch {
    return info;
  }
}

function decodeImage(image: string): Buffer {
  const comma = image.startsWith("data:") ? image.indexOf(",") : -1;
  return Buffer.from(comma >= 0 ? image.slice(comma + 1) : image, "base64");
}

export function sniffImageType(bytes: Uint8Array): string {
  if (bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return "image/png";
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return "image/jpeg";
  if (bytes[0] === 0x52 && bytes[1] === 0x49 && bytes[2] === 0x46 && bytes[3] === 0x46 && bytes[8] === 0x57 && bytes[9] === 0x45) return "image/webp";
  return "image/png";
}
