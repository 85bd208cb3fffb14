// Download progress on stderr: a redrawn bar when stderr is a terminal, plain periodic lines
// otherwise (log files, journald, docker logs).

export interface ProgressOutput {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

const TTY_REDRAW_MS = 100;
const PLAIN_LINE_EVERY_MS = 5_000;

export class ProgressBar {
  private done = 0;
  private readonly startedAt = Date.now();
  private lastDrawAt = 0;
  private finished = false;

  constructor(
    private readonly label: string,
    private readonly totalBytes: number,
    private readonly output: ProgressOutput | null,
    /** Bytes already on disk (a resumed download); they do not count toward the speed. */
    private readonly initialBytes = 0,
  ) {
    this.done = initialBytes;
    if (output && !output.isTTY) {
      output.write(`${label}: ${initialBytes > 0 ? `resuming at ${formatBytes(initialBytes)} of` : "downloading"} ${formatBytes(totalBytes)}\n`);
      this.lastDrawAt = Date.now();
    }
  }

  update(doneBytes: number): void {
    this.done = doneBytes;
    if (!this.output || this.finished) return;
    const now = Date.now();
    if (now - this.lastDrawAt < (this.output.isTTY ? TTY_REDRAW_MS : PLAIN_LINE_EVERY_MS)) return;
    this.lastDrawAt = now;
    this.draw();
  }

  finish(message?: string): void {
    if (!this.output || this.finished) return;
    this.finished = true;
    if (this.output.isTTY) {
      this.draw();
      this.output.write("\n");
    }
    if (message) this.output.write(`${this.label}: ${message}\n`);
  }

  private draw(): void {
    const output = this.output!;
    const fraction = this.totalBytes > 0 ? Math.min(this.done / this.totalBytes, 1) : 0;
    const percent = `${(fraction * 100).toFixed(1)}%`.padStart(6);
    const elapsedS = Math.max((Date.now() - this.startedAt) / 1000, 0.001);
    const speed = (this.done - this.initialBytes) / elapsedS;
    const etaS = speed > 0 ? (this.totalBytes - this.done) / speed : Number.NaN;
    const figures = `${percent} ${formatBytes(this.done)}/${formatBytes(this.totalBytes)} ${formatBytes(speed)}/s${Number.isFinite(etaS) ? ` eta ${formatDuration(etaS)}` : ""}`;
    if (output.isTTY) {
      const width = Math.max(10, Math.min(40, (output.columns ?? 80) - this.label.length - figures.length - 6));
      const filled = Math.round(fraction * width);
      output.write(`\r${this.label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${figures}\x1b[K`);
    } else {
      output.write(`${this.label}: ${figures}\n`);
    }
  }
}

export function formatBytes(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
