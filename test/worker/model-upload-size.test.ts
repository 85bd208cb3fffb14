// A single-request model upload streams: a file of tens of megabytes is stored whole, with its
// sha256; a body without a Content-Length (which R2 needs) gets a plain answer, not a reset.
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ADMIN, BASE, call, json } from "./helpers";

/** `bytes` of a repeating pattern, produced chunk by chunk so the test never holds the whole file. */
function patternStream(bytes: number, chunkBytes = 1024 * 1024): ReadableStream<Uint8Array> {
  const chunk = Uint8Array.from({ length: chunkBytes }, (_, i) => i % 251);
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= bytes) return controller.close();
      const size = Math.min(chunkBytes, bytes - sent);
      controller.enqueue(size === chunkBytes ? chunk.slice() : chunk.slice(0, size));
      sent += size;
    },
  });
}

async function sha256Of(stream: ReadableStream<Uint8Array>): Promise<string> {
  const digest = new crypto.DigestStream("SHA-256");
  await stream.pipeTo(digest);
  return [...new Uint8Array(await digest.digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

describe("PUT /models/{name}/file", () => {
  it("streams a large file into R2 and reports its sha256", async () => {
    const size = 20 * 1024 * 1024;
    await json(await call("/models", { token: ADMIN, body: { name: "big-model" } }), 201);
    const res = await exports.default.fetch(`${BASE}/models/big-model/file`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN}`, "content-length": String(size) },
      body: patternStream(size),
    });
    const model = await json<{ sha256: string; sizeBytes: number; ossPath: string }>(res, 200);
    expect(model.sizeBytes).toBe(size);
    expect(model.sha256).toBe(await sha256Of(patternStream(size)));
    const stored = await env.BUCKET.head(model.ossPath);
    expect(stored?.size).toBe(size);
  });

  it("answers a body without a Content-Length with 411, naming the multipart upload, and keeps the file", async () => {
    const before = await env.BUCKET.head("models/big-model/big-model.safetensors");
    const res = await exports.default.fetch(`${BASE}/models/big-model/file`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN}` },
      body: patternStream(3 * 1024 * 1024),
    });
    const problem = await json<{ code: string; detail: string }>(res, 411);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(problem.detail).toContain("/file/uploads");
    expect((await env.BUCKET.head("models/big-model/big-model.safetensors"))?.etag).toBe(before?.etag);
  });
});
