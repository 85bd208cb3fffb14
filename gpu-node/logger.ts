// A small leveled logger for the agent. Lines go to stderr (stdout stays free for tools that
// wrap the agent). Secrets registered with the logger are replaced before anything is written,
// so the node token can never end up in a log line even when an error message echoes it. Messages
// are bounded, so a line stays short whatever an error echoes.

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

/** Longest message written; error messages can echo whole request or answer bodies. */
export const MAX_LOG_MESSAGE_CHARS = 2000;
export const TRUNCATED_MARKER = "…[truncated]";

const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** A logger whose lines start with `[scope]`. */
  child(scope: string): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Strings never to print (the node token, sd-webui's password). */
  secrets?: readonly string[];
  /** Where lines go; defaults to process.stderr. */
  write?: (line: string) => void;
  scope?: string;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? "info";
  const secrets = (options.secrets ?? []).filter((secret) => secret.length >= 4);
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));

  const emit = (lineLevel: Exclude<LogLevel, "silent">, scope: string | undefined, message: string) => {
    if (LEVEL_RANK[lineLevel] < LEVEL_RANK[level]) return;
    let text = message;
    for (const secret of secrets) text = text.split(secret).join("***");
    if (text.length > MAX_LOG_MESSAGE_CHARS) text = `${text.slice(0, MAX_LOG_MESSAGE_CHARS)}${TRUNCATED_MARKER}`;
    const prefix = `${new Date().toISOString()} ${lineLevel.toUpperCase().padEnd(5)}${scope ? ` [${scope}]` : ""}`;
    write(`${prefix} ${text}`);
  };

  const make = (scope: string | undefined): Logger => ({
    debug: (message) => emit("debug", scope, message),
    info: (message) => emit("info", scope, message),
    warn: (message) => emit("warn", scope, message),
    error: (message) => emit("error", scope, message),
    child: (childScope) => make(scope ? `${scope}/${childScope}` : childScope),
  });
  return make(options.scope);
}

export const silentLogger: Logger = createLogger({ level: "silent" });

/** The message of anything thrown, without a stack trace. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as Error & { cause?: unknown }).cause;
    const causeText = cause instanceof Error && cause.message && !error.message.includes(cause.message) ? ` (${cause.message})` : "";
    return `${error.message}${causeText}`;
  }
  return String(error);
}
