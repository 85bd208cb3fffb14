// sd-webui's one global `shared.state` plus the task bookkeeping of modules/progress.py: what
// is running now, how far it is, the live preview, and which task ids are queued, active or
// recently finished. Interrupt and skip act on whatever is running, never on a given request.
import { encodePng } from "./image-codec.ts";
import type { RgbImage } from "./image-ops.ts";
import type { OptionsStore } from "./options-store.ts";

/** modules/progress.py remembers this many finished task ids. */
const FINISHED_TASKS_KEPT = 16;

export interface StateDict {
  skipped: boolean;
  interrupted: boolean;
  stopping_generation: boolean;
  job: string;
  job_count: number;
  job_timestamp: string;
  job_no: number;
  sampling_step: number;
  sampling_steps: number;
}

export interface ProgressResponse {
  progress: number;
  eta_relative: number;
  state: StateDict;
  current_image: string | null;
  textinfo: string | null;
}

export interface TaskProgressResponse {
  active: boolean;
  queued: boolean;
  completed: boolean;
  progress: number | null;
  eta: number | null;
  live_preview: string | null;
  id_live_preview: number;
  textinfo: string | null;
}

/** Draws the partial picture at a fraction (0..1) of the current sampling run. */
export type PreviewSource = (fraction: number) => RgbImage;

function timestamp(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}${pad(date.getMonth() + 1)}${pad(date.getDate())}${pad(date.getHours())}${pad(date.getMinutes())}${pad(date.getSeconds())}`;
}

export class GenerationState {
  job = "";
  /** -1 right after `begin` until the job count is known; 0 when idle. */
  jobCount = 0;
  jobNo = 0;
  samplingStep = 0;
  samplingSteps = 0;
  jobTimestamp = "0";
  interrupted = false;
  skipped = false;
  /** Set once the emulator is closing: running work stops at its next step. */
  closed = false;
  private timeStartMs = 0;

  private idLivePreview = 0;
  private previewStep = 0;
  private preview: Buffer | null = null;
  private previewSource: PreviewSource | null = null;

  /** Task id → time it was queued, in arrival order. */
  private readonly pending = new Map<string, number>();
  private currentTask: string | null = null;
  private readonly finished: string[] = [];

  private wakeSleeper: (() => void) | null = null;

  constructor(private readonly options: OptionsStore) {}

  get stopRequested(): boolean {
    return this.interrupted || this.skipped || this.closed;
  }

  begin(job: string): void {
    this.job = job;
    this.jobCount = -1;
    this.jobNo = 0;
    this.samplingStep = 0;
    this.samplingSteps = 0;
    this.jobTimestamp = timestamp(new Date());
    this.timeStartMs = Date.now();
    this.interrupted = false;
    this.skipped = false;
    this.idLivePreview = 0;
    this.previewStep = 0;
    this.preview = null;
    this.previewSource = null;
  }

  /** As sd-webui's `state.end()`: only the job name and count are reset. */
  end(): void {
    this.job = "";
    this.jobCount = 0;
    this.previewSource = null;
  }

  nextJob(): void {
    this.jobNo++;
    this.samplingStep = 0;
    this.previewStep = 0;
  }

  startSampling(steps: number, previewSource: PreviewSource): void {
    this.samplingSteps = steps;
    this.samplingStep = 0;
    this.previewStep = 0;
    this.previewSource = previewSource;
  }

  /** Waits until `deadlineMs` (Date.now() scale), or less if interrupted, skipped or closed. */
  sleepUntil(deadlineMs: number): Promise<void> {
    const delayMs = deadlineMs - Date.now();
    if (delayMs <= 0 || this.stopRequested) return Promise.resolve();
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const wake = () => {
        clearTimeout(timer);
        this.wakeSleeper = null;
        resolve();
      };
      timer = setTimeout(wake, delayMs);
      this.wakeSleeper = wake;
    });
  }

  interrupt(): void {
    this.interrupted = true;
    this.wakeSleeper?.();
  }

  skip(): void {
    this.skipped = true;
    this.wakeSleeper?.();
  }

  close(): void {
    this.closed = true;
    this.wakeSleeper?.();
  }

  queueTask(id: string): void {
    this.pending.set(id, Date.now());
  }

  startTask(id: string): void {
    this.currentTask = id;
    this.pending.delete(id);
  }

  finishTask(id: string): void {
    this.pending.delete(id);
    if (this.currentTask === id) this.currentTask = null;
    this.finished.push(id);
    if (this.finished.length > FINISHED_TASKS_KEPT) this.finished.shift();
  }

  pendingTasks(): { size: number; tasks: string[] } {
    return { size: this.pending.size, tasks: [...this.pending.keys()] };
  }

  stateDict(): StateDict {
    return {
      skipped: this.skipped,
      interrupted: this.interrupted,
      stopping_generation: false,
      job: this.job,
      job_count: this.jobCount,
      job_timestamp: this.jobTimestamp,
      job_no: this.jobNo,
      sampling_step: this.samplingStep,
      sampling_steps: this.samplingSteps,
    };
  }

  /** `GET /sdapi/v1/progress`. */
  progress(skipCurrentImage: boolean): ProgressResponse {
    if (this.jobCount === 0) return { progress: 0, eta_relative: 0, state: this.stateDict(), current_image: null, textinfo: null };
    let progress = 0.01;
    if (this.jobCount > 0) {
      progress += this.jobNo / this.jobCount;
      if (this.samplingSteps > 0) progress += ((1 / this.jobCount) * this.samplingStep) / this.samplingSteps;
    }
    const elapsedSeconds = (Date.now() - this.timeStartMs) / 1000;
    const etaRelative = elapsedSeconds / progress - elapsedSeconds;
    this.refreshPreview();
    return {
      progress: Math.min(progress, 1),
      eta_relative: etaRelative,
      state: this.stateDict(),
      current_image: this.preview && !skipCurrentImage ? this.preview.toString("base64") : null,
      textinfo: null,
    };
  }

  /** `POST /internal/progress`. */
  taskProgress(idTask: string | null, idLivePreview: number, wantLivePreview: boolean): TaskProgressResponse {
    const active = idTask !== null && idTask === this.currentTask;
    const queued = idTask !== null && this.pending.has(idTask);
    const completed = idTask !== null && this.finished.includes(idTask);
    if (!active) {
      const queue = [...this.pending.keys()];
      const textinfo = queued ? `In queue: ${queue.indexOf(idTask!) + 1}/${queue.length}` : "Waiting...";
      return { active, queued, completed, progress: null, eta: null, live_preview: null, id_live_preview: -1, textinfo };
    }
    let progress = 0;
    if (this.jobCount > 0) {
      progress += this.jobNo / this.jobCount;
      if (this.samplingSteps > 0) progress += ((1 / this.jobCount) * this.samplingStep) / this.samplingSteps;
    }
    progress = Math.min(progress, 1);
    const elapsedSeconds = (Date.now() - this.timeStartMs) / 1000;
    const eta = progress > 0 ? elapsedSeconds / progress - elapsedSeconds : null;
    let livePreview: string | null = null;
    let previewId = idLivePreview;
    if (wantLivePreview && this.options.get("live_previews_enable")) {
      this.refreshPreview();
      if (this.preview && this.idLivePreview !== idLivePreview) {
        livePreview = `data:image/png;base64,${this.preview.toString("base64")}`;
        previewId = this.idLivePreview;
      }
    }
    return { active, queued, completed, progress, eta, live_preview: livePreview, id_live_preview: previewId, textinfo: null };
  }

  /**
   * sd-webui's `set_current_image`: redraws the preview once the sampler has advanced
   * `show_progress_every_n_steps` steps since the last one (-1 = no previews while sampling).
   */
  private refreshPreview(): void {
    const every = Number(this.options.get("show_progress_every_n_steps"));
    if (!this.previewSource || !this.options.get("live_previews_enable") || every === -1 || !Number.isFinite(every)) return;
    const advanced = this.samplingStep - this.previewStep;
    if (advanced < every || (this.preview && advanced === 0) || this.samplingSteps <= 0) return;
    this.preview = encodePng(this.previewSource(this.samplingStep / this.samplingSteps));
    this.idLivePreview++;
    this.previewStep = this.samplingStep;
  }
}
