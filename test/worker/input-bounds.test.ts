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
