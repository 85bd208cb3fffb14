// The last lines sd-webui printed, kept for the errors that explain why it did not start or why it
// died; optionally echoed to the agent's log as they come.
import type { Readable } from "node:stream";
import type { Logger } from "../logger.ts";

const OUTPUT_TAIL_LINES = 40;
const MAX_LINE_CHARS = 500;
/** Progress bars redraw with \r and may never end a line: past this, a partial line is taken as is. */
const MAX_PARTIAL_CHARS = 4096;

export class OutputTail {
  private tail: string[] = [];
  /** Lines appended since the process started, kept or not. */
  private appended = 0;

  /** A mark to read the lines printed after it with `since`. */
  mark(): number {
    return this.appended;
  }

  /** The lines printed after `mark` that the tail still holds, oldest first. */
  since(mark: number): string[] {
    const count = Math.min(this.appended - mark, this.tail.length);
    return count > 0 ? this.tail.slice(-count) : [];
  }

  /** The last lines, oldest first (a copy). */
  lines(): string[] {
    return [...this.tail];
  }

  clear(): void {
    this.tail = [];
    this.appended = 0;
  }

  /** Follows `streams` line by line; each line is also logged to `echo` when given. */
  follow(streams: readonly (Readable | null)[], echo: Logger | null): void {
    for (const stream of streams) {
      if (!stream) continue;
      let partial = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => {
        const lines = (partial + chunk).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) {
          const text = lastCarriageSegment(line);
          this.append(text);
          if (echo && text.trim()) echo.info(text);
        }
        // Keep the tail current anyway.
        if (partial.length > MAX_PARTIAL_CHARS) {
          this.append(lastCarriageSegment(partial));
          partial = "";
        }
      });
      stream.on("end", () => {
        if (partial.trim()) this.append(lastCarriageSegment(partial));
        partial = "";
      });
    }
  }

  append(line: string): void {
    const text = line.trimEnd();
    if (!text) return;
    this.tail.push(text.length > MAX_LINE_CHARS ? `${text.slice(0, MAX_LINE_CHARS)}…` : text);
    this.appended++;
    if (this.tail.length > OUTPUT_TAIL_LINES) this.tail.splice(0, this.tail.length - OUTPUT_TAIL_LINES);
  }
}

function lastCarriageSegment(line: string): string {
  const segments = line.split("\r").filter((segment) => segment.trim() !== "");
  return segments[segments.length - 1] ?? "";
}
