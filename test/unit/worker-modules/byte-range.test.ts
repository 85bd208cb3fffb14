import { describe, expect, it } from "vitest";
import { satisfiableRange } from "../../../src/storage/byte-range";

describe("satisfiableRange", () => {
  it("reads one range, clipped to the file", () => {
    expect(satisfiableRange("bytes=0-9", 100)).toEqual({ offset: 0, length: 10 });
    expect(satisfiableRange("bytes=90-", 100)).toEqual({ offset: 90, length: 10 });
    expect(satisfiableRange("bytes=90-500", 100)).toEqual({ offset: 90, length: 10 });
    expect(satisfiableRange("bytes=-10", 100)).toEqual({ offset: 90, length: 10 });
    expect(satisfiableRange("bytes=-500", 100)).toEqual({ offset: 0, length: 100 });
  });

  it("refuses malformed, multiple and unsatisfiable ranges", () => {
    for (const header of ["bytes=", "bytes=-", "bytes=a-b", "bytes=5-2", "bytes=100-", "bytes=-0", "bytes=0-1,3-4", "lines=0-1", "bytes=1.5-2"])
      expect(satisfiableRange(header, 100), header).toBeNull();
    expect(satisfiableRange("bytes=0-", 0)).toBeNull();
  });
});
