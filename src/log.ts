// The Worker's log lines: one JSON object per line (level, message and any other fields), which
// Workers Logs and `wrangler tail` show field by field.
export function logLine(level: "error" | "warn", message: string, fields: Record<string, unknown> = {}): void {
  console.error(JSON.stringify({ level, message, ...fields }));
}
