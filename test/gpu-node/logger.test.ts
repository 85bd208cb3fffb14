import { describe, expect, it } from "vitest";
import { createLogger, MAX_LOG_MESSAGE_CHARS, TRUNCATED_MARKER } from "../../gpu-node/logger.ts";

describe("agent logger", () => {
  it("bounds every line, after hiding secrets", () => {
    const lines: string[] = [];
    const log = createLogger({ secrets: ["node-token-123"], write: (line) => lines.push(line) }).child("tasks");
    log.error(`sd-webui answered 500: ${"x".repeat(3_000_000)}`);
    log.info("short node-token-123");
    expect(lines[0]!.length).toBeLessThan(MAX_LOG_MESSAGE_CHARS + 100);
    expect(lines[0]!.endsWith(TRUNCATED_MARKER)).toBe(true);
    expect(lines[0]).toContain("[tasks] sd-webui answered 500: xxx");
    expect(lines[1]!.endsWith("short ***")).toBe(true);
  });
});
