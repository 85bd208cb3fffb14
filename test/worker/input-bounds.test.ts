// Hostile input answers a clear 4xx and changes nothing: null and deeply nested bodies, oversized
// options, unknown multipart uploads, invalid byte ranges.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN, call, createKey, createModel, json } from "./helpers";

interface Problem {
  status: number;
  code: string;
  detail: string;
}

let user: string;
beforeAll(async () => {
  await createModel("bounds-model");
  user = await createKey("user");
});

async function count(table: "tasks" | "key_options" | "models"): Promise<number> {
  return (await env.DB.prepare(`SELECT COUNT(*) AS n FROM ${table}`).first<{ n: number }>())!.n;
}

async function objectCount(): Promise<number> {
  return (await env.BUCKET.list()).objects.length;
}

/** `levels` arrays inside each other around a string. */
function nested(levels: number): unknown {
  let value: unknown = "deep";
  for (let i = 0; i < levels; i++) value = [value];
  return value;
}

describe("POST /uploads", () => {
  it("answers a JSON null body with 422 and stores nothing", async () => {
    const before = await objectCount();
    const res = await call("/uploads", { token: user, body: "null", headers: { "content-type": "application/json" } });
    const body = await json<Problem>(res, 422);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(body.detail).toContain("image");
    expect(await objectCount()).toBe(before);
  });
});

describe("deeply nested bodies", () => {
  const deep = nested(2200);

  it("are refused with 422 problem+json on the submit, options and upload routes, creating nothing", async () => {
    const before = { tasks: await count("tasks"), options: await count("key_options"), objects: await objectCount() };
    const attempts: Array<[string, unknown]> = [
      ["/txt2img", { stable_diffusion_model: "bounds-model", prompt: "x", alwayson_scripts: { s: { args: [deep] } } }],
      ["/txt2img", { stable_diffusion_model: "bounds-model", prompt: "x", extra: deep }],
      ["/img2img", { stable_diffusion_model: "bounds-model", init_images: ["iVBORw0KGgo="], override_settings: { x: deep } }],
      ["/options", { data: { deep } }],
      ["/uploads", { image: deep }],
    ];
    for (const [path, body] of attempts) {
      const res = await call(path, { token: user, body, headers: { "request-type": "async" } });
      const problem = await json<Problem>(res, 422);
      expect(res.headers.get("content-type"), path).toContain("application/problem+json");
      expect(problem.detail, path).toContain("64 levels");
    }
    expect({ tasks: await count("tasks"), options: await count("key_options"), objects: await objectCount() }).toEqual(before);
  });

  it("are refused on /sdapi/v1 in FastAPI's 422 shape", async () => {
    const before = { tasks: await count("tasks"), options: await count("key_options") };
    for (const [path, body] of [
      ["/sdapi/v1/txt2img", { stable_diffusion_model: "bounds-model", prompt: "x", alwayson_scripts: { s: { args: [deep] } } }],
      ["/sdapi/v1/options", { deep }],
      ["/sdapi/v1/png-info", { image: deep }],
    ] as const) {
      const answer = await json<{ detail: Array<{ loc: unknown[]; msg: string }> }>(await call(path, { token: user, body }), 422);
      expect(answer.detail[0]!.msg, path).toContain("64 levels");
    }
    expect({ tasks: await count("tasks"), options: await count("key_options") }).toEqual(before);
  });

  it("are accepted up to the stated depth", async () => {
    const res = await call("/options", { token: user, body: { data: { shallow: nested(60) } } });
    await json(res, 200);
    await json(await call("/options", { token: user, body: { data: { shallow: null } } }), 200);
  });
});

describe("multipart model uploads", () => {
  const file = "/models/bounds-model/file";

  async function modelRow() {
    return env.DB.prepare("SELECT sha256, size_bytes, etag, oss_path FROM models WHERE name = 'bounds-model'").first<{ oss_path: string }>();
  }

  it("answer 404 problem+json for an unknown upload id on parts, complete and abort", async () => {
    const before = await modelRow();
    const part = await call(`${file}/uploads/no-such-upload/parts/1`, { method: "PUT", token: ADMIN, body: new Uint8Array(10) });
    expect((await json<Problem>(part, 404)).detail).toContain("no-such-upload");
    const complete = await call(`${file}/uploads/no-such-upload/complete`, {
      token: ADMIN,
      body: { parts: [{ partNumber: 1, etag: "abc" }], sha256: "a".repeat(64) },
    });
    expect(complete.headers.get("content-type")).toContain("application/problem+json");
    await json<Problem>(complete, 404);
    await json<Problem>(await call(`${file}/uploads/no-such-upload`, { method: "DELETE", token: ADMIN }), 404);
    expect(await modelRow()).toEqual(before);
  });

  it("answer 422 for complete with part etags the upload does not have, keeping the file", async () => {
    const before = await modelRow();
    const { uploadId } = await json<{ uploadId: string }>(await call(`${file}/uploads`, { token: ADMIN, body: {} }), 201);
    await json(await call(`${file}/uploads/${uploadId}/parts/1`, { method: "PUT", token: ADMIN, body: new Uint8Array(10) }), 200);
    const res = await call(`${file}/uploads/${uploadId}/complete`, {
      token: ADMIN,
      body: { parts: [{ partNumber: 1, etag: "not-the-etag" }], sha256: "a".repeat(64) },
    });
    const problem = await json<Problem>(res, 422);
    expect(problem.code).toBe("validation_failed");
    expect(await modelRow()).toEqual(before);
    const stored = await env.BUCKET.get(before!.oss_path);
    expect(await stored?.text()).toBe("weights of bounds-model");
  });
});

describe("Range on model file reads", () => {
  let node: string;
  const path = "/nodes/models/bounds-model/file";
  const size = "weights of bounds-model".length;

  beforeAll(async () => {
    node = await createKey("node");
  });

  it("answers 416 with Content-Range bytes */size for a malformed, multiple or unsatisfiable range", async () => {
    for (const range of ["bytes=abc", "bytes=5-2", `bytes=${size}-`, "bytes=0-1,4-5", "items=0-1", "bytes=-0"]) {
      const res = await call(path, { token: node, headers: { range } });
      expect(res.status, range).toBe(416);
      expect(res.headers.get("content-range"), range).toBe(`bytes */${size}`);
      expect(res.headers.get("content-type"), range).toContain("application/problem+json");
      await res.text();
    }
  });

  it("answers 206 with the asked bytes for a valid range", async () => {
    const res = await call(path, { token: node, headers: { range: "bytes=8-" } });
    expect(res.status).toBe(206);
    expect(res.headers.get("content-range")).toBe(`bytes 8-${size - 1}/${size}`);
    expect(await res.text()).toBe("of bounds-model");
    const suffix = await call(path, { token: node, headers: { range: "bytes=-5" } });
    expect(suffix.status).toBe(206);
    expect(await suffix.text()).toBe("model");
  });
});

describe("options", () => {
  it("refuses options over 64 KiB with 413, on /options and /sdapi/v1/options, keeping the saved ones", async () => {
    const key = await createKey("user", "options-bounds");
    await json(await call("/options", { token: key, body: { data: { CLIP_stop_at_last_layers: 2 } } }), 200);
    const big = "x".repeat(70 * 1024);
    const problem = await json<Problem>(await call("/options", { token: key, body: { data: { big } } }), 413);
    expect(problem.code).toBe("payload_too_large");
    expect(problem.detail).toContain("65536 bytes");
    const sdapi = await json<{ detail: string }>(await call("/sdapi/v1/options", { token: key, body: { big } }), 413);
    expect(sdapi.detail).toContain("65536 bytes");
    const saved = await json<{ data: Record<string, unknown> }>(await call("/options", { token: key }), 200);
    expect(saved.data).toEqual({ CLIP_stop_at_last_layers: 2 });
  });

  it("refuses options nested deeper than the stated depth with 422, keeping the saved ones", async () => {
    const key = await createKey("user", "options-depth");
    await json<Problem>(await call("/options", { token: key, body: { data: { deep: nested(100) } } }), 422);
    await json(await call("/sdapi/v1/options", { token: key, body: { deep: nested(100) } }), 422);
    expect(await json<{ data: Record<string, unknown> }>(await call("/options", { token: key }), 200)).toEqual({ data: {} });
  });
});
