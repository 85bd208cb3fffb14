import { describe, expect, it } from "vitest";
import { boundedLogLine, MAX_LOG_LINE_CHARS, TRUNCATED_MARKER } from "../../../src/log";

describe("boundedLogLine", () => {
  it("leaves a short line as it is", () => {
    expect(JSON.parse(boundedLogLine("error", "boom", { requestId: "r1" }))).toEqual({ level: "error", message: "boom", requestId: "r1" });
  });

  it("bounds a line with a multi-megabyte message and fields, keeping it one JSON object with the short fields whole", () => {
    const huge = "v".repeat(5_000_000);
    const line = boundedLogLine("error", `D1 refused: ${huge}`, { requestId: "r1", stack: huge, options: { big: huge } });
    expect(line.length).toBeLessThanOrEqual(MAX_LOG_LINE_CHARS);
    const parsed = JSON.parse(line) as { requestId: string; message: string; options: string };
    expect(parsed.requestId).toBe("r1");
    expect(parsed.message.startsWith("D1 refused: vvv")).toBe(true);
    expect(parsed.message.endsWith(TRUNCATED_MARKER)).toBe(true);
    expect(parsed.options.endsWith(TRUNCATED_MARKER)).toBe(true);
  });

  it("stays bounded when escapes make the line longer than its characters", () => {
    const line = boundedLogLine("warn", '"\n'.repeat(100_000), Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`f${i}`, "\u0001".repeat(1000)])));
    expect(line.length).toBeLessThanOrEqual(MAX_LOG_LINE_CHARS);
    expect(line.endsWith(TRUNCATED_MARKER) || JSON.parse(line)).toBeTruthy();
  });
});
