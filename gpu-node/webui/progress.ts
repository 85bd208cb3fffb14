// Progress of a running generation, as the agent reports it to the Worker: the task's own
// progress from /internal/progress (its forced task id), falling back to the global
// /sdapi/v1/progress where sd-webui has no task-scoped progress.
import type { ProgressReport } from "../../src/protocol/node.ts";
import type { WebuiClient } from "./client.ts";

/** A progress report without its lease. */
export type ReportFields = Omit<ProgressReport, "leaseId">;

/** Follows one forced task id through /internal/progress, or the global /sdapi/v1/progress. */
export class GenerationPoller {
  active = false;
  private taskScoped = true;
  private previewId = -1;
  private preview: string | null = null;
  private last: ReportFields = { progress: 0, state: { job: "starting" } };

  constructor(
    private readonly webui: WebuiClient,
    private readonly taskId: string,
  ) {}

  async poll(): Promise<ReportFields> {
    try {
      if (this.taskScoped) {
        const scoped = await this.webui.internalProgress(this.taskId, this.previewId);
        if (scoped === null) this.taskScoped = false;
        else {
          this.active = scoped.active;
          if (scoped.live_preview && typeof scoped.id_live_preview === "number") {
            this.previewId = scoped.id_live_preview;
            this.preview = scoped.live_preview;
          }
          let state: Record<string, unknown> = { job: scoped.active ? "running" : scoped.queued ? "queued" : scoped.completed ? "finishing" : "starting" };
          if (scoped.active) {
            try {
              const global = await this.webui.progress(true);
              if (global.state) state = { ...global.state };
            } catch {
              // the scoped answer is enough
            }
          }
          this.last = {
            progress: clamp01(scoped.completed ? 1 : (scoped.progress ?? 0)),
            etaRelative: Math.max(0, scoped.eta ?? 0),
            state,
            currentImage: this.preview,
            textinfo: scoped.textinfo ?? null,
          };
          return this.last;
        }
      }
      const global = await this.webui.progress(false);
      const jobCount = typeof global.state?.job_count === "number" ? global.state.job_count : 0;
      // Without task-scoped progress, whatever runs is taken to be ours (the agent is sd-webui's only client).
      this.active = global.progress > 0 || jobCount !== 0;
      if (global.current_image) this.preview = global.current_image;
      this.last = {
        progress: clamp01(global.progress),
        etaRelative: Math.max(0, global.eta_relative ?? 0),
        state: global.state ?? {},
        currentImage: this.preview,
        textinfo: global.textinfo ?? null,
      };
    } catch {
      // sd-webui busy or restarting: report the last known figures (keeps the lease alive)
    }
    return this.last;
  }
}

function clamp01(value: number): number {
  return Number.isFinite(value) ? Math.min(1, Math.max(0, value)) : 0;
}
