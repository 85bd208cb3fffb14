// The Worker's log lines: one JSON object per line (level, message and any other fields), which
// Workers Logs and `wrangler tail` show field by field. Lines are bounded: messages can echo whole
// queries with a tenant's values in them.

/** Longest log line, in characters. */
export const MAX_LOG_LINE_CHARS = 2048;
export const TRUNCATED_MARKER = "…[truncated]";
/** Longest message of an unexpected error, and how many stack frames are kept. */
const MAX_ERROR_MESSAGE_CHARS = 500;
const STACK_FRAMES = 5;

function cut(text: string, maxChars: number): string {
  return text.length <= maxChars ? text : text.slice(0, Math.max(0, maxChars - TRUNCATED_MARKER.length)) + TRUNCATED_MARKER;
}

/** One JSON log line of at most MAX_LOG_LINE_CHARS: long values are cut, each to a share of the line. */
export function boundedLogLine(level: string, message: string, fields: Record<string, unknown> = {}): string {
  const line = JSON.stringify({ level, message, ...fields });
  if (line.length <= MAX_LOG_LINE_CHARS) return line;
  const entries = Object.entries(fields);
  // Room for the keys, quotes and escapes; the rest is shared by the message and the fields.
  const share = Math.floor((MAX_LOG_LINE_CHARS - 256) / (entries.length + 1) / 2);
  const shortened = entries.map(([key, value]) => [key, cut(typeof value === "string" ? value : (JSON.stringify(value) ?? String(value)), share)]);
  const bounded = JSON.stringify({ level, message: cut(message, share), ...Object.fromEntries(shortened) });
  return cut(bounded, MAX_LOG_LINE_CHARS);
}

export function logLine(level: "error" | "warn", message: string, fields: Record<string, unknown> = {}): void {
  console.error(boundedLogLine(level, message, fields));
}

/** An error no handler expected: its message (short) and a few stack frames, never the request. */
export function logUnexpectedError(err: Error, requestId: unknown): void {
  logLine("error", cut(err.message, MAX_ERROR_MESSAGE_CHARS), {
    requestId,
    stack: err.stack
      ?.split("\n")
      .slice(1, STACK_FRAMES + 1)
      .join("\n"),
  });
}
