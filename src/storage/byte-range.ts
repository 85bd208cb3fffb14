// The one byte range a `Range: bytes=…` header asks of a file (RFC 9110 §14.1.2), for resumable
// model downloads.

export interface ByteRange {
  offset: number;
  length: number;
}

/** The range `header` asks of a `sizeBytes` file, clipped to it; null when malformed, several ranges, or none of it lies in the file. */
export function satisfiableRange(header: string, sizeBytes: number): ByteRange | null {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === "" && match[2] === "")) return null;
  const [first, last] = [match[1]!, match[2]!];
  if (first === "") {
    const suffix = Number(last);
    if (suffix === 0 || sizeBytes === 0) return null;
    const length = Math.min(suffix, sizeBytes);
    return { offset: sizeBytes - length, length };
  }
  const offset = Number(first);
  if (offset >= sizeBytes) return null;
  const end = last === "" ? sizeBytes - 1 : Math.min(Number(last), sizeBytes - 1);
  if (end < offset) return null;
  return { offset, length: end - offset + 1 };
}
