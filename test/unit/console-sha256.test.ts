// The console's streaming SHA-256 (used for multipart model uploads) agrees with node:crypto,
// whatever the chunking and around the padding boundaries.
import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Sha256 } from "../../console/sha256.ts";

describe("console Sha256", () => {
  it("matches node:crypto for lengths around the block and padding boundaries, fed in uneven chunks", () => {
    for (const length of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 100_003]) {
      const bytes = randomBytes(length);
      const hash = new Sha256();
      for (let offset = 0; offset < length; offset += 37) hash.update(bytes.subarray(offset, offset + 37));
      expect(hash.digestHex(), `length ${length}`).toBe(createHash("sha256").update(bytes).digest("hex"));
    }
  });
});
