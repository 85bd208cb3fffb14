// A bounded, seeded fuzz of every POST and PUT route: thousands of generated JSON bodies (wrong
// types, huge numbers, nesting up to one past the limit, long and unicode strings, nulls, arrays
// where objects belong, extra fields) with a user key and an admin key. No answer may be a 5xx,
// and an answer in 4xx must leave D1 and R2 as they were.
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../../src/index";
import { MAX_JSON_DEPTH } from "../../src/json-depth";
import { ADMIN, BASE, call, createKey, createModel, json, largePngBase64 } from "./helpers";

const SEED = 0x5d6a7e13;
const REQUESTS = 3000;

/** mulberry32: a tiny seeded PRNG, so every run sends the same bodies. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = mulberry32(SEED);
const int = (max: number) => Math.floor(random() * max);
const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;

/** Field names the routes know, so generated objects often hit real fields with wrong values. */
const FIELDS = [
  "prompt",
  "negative_prompt",
  "steps",
  "width",
  "height",
  "n_iter",
  "batch_size",
  "seed",
  "cfg_scale",
  "sampler_name",
  "stable_diffusion_model",
  "sd_vae",
  "init_images",
  "mask",
  "image",
  "imageList",
  "data",
  "name",
  "type",
  "fileName",
  "ossPath",
  "etag",
  "sha256",
  "models",
  "parts",
  "partNumber",
  "functions",
  "concurrencyCap",
  "timeout",
  "minNodes",
  "maxNodes",
  "override_settings",
  "alwayson_scripts",
  "sd_model_checkpoint",
  "role",
  "leaseId",
  "progress",
  "waitMs",
  "nodeId",
  "imageCount",
  "parameters",
  "info",
  "enable_hr",
  "hr_scale",
  "denoising_strength",
  "folder",
  "env",
  "__proto__",
  "constructor",
  "",
] as const;

const STRINGS = [
  "",
  " ",
  "fuzz-model",
  "x".repeat(10_000),
  "ünïcødé ✓ 画像",
  "\u0000\u0001\u001f",
  "💥".repeat(50),
  "../../etc/passwd",
  "null",
  "-1",
  "1e999",
  "<script>",
  "' OR 1=1 --",
  "inputs/someone/up_x.png",
  "data:image/png;base64,AAAA",
  largePngBase64(128),
] as const;

const NUMBERS = [0, -1, 1, 2 ** 53 + 1, -(2 ** 63), 1e308, -1e308, 5e-324, 0.5, 64, 65, 10_000, 999_999_999_999] as const;

function nested(levels: number): unknown {
  let value: unknown = pick(STRINGS);
  for (let i = 0; i < levels; i++) value = random() < 0.5 ? [value] : { [pick(FIELDS)]: value };
  return value;
}

function value(depth: number): unknown {
  const roll = random();
  if (roll < 0.1) return null;
  if (roll < 0.18) return random() < 0.5;
  if (roll < 0.35) return pick(NUMBERS);
  if (roll < 0.42) return (random() - 0.5) * 10 ** int(12);
  if (roll < 0.62) return pick(STRINGS);
  if (roll < 0.66) return nested(pick([MAX_JSON_DEPTH - 2, MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1]));
  if (depth > 4) return pick(STRINGS);
  if (roll < 0.8) return Array.from({ length: int(5) }, () => value(depth + 1));
  return object(depth + 1);
}

function object(depth: number): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (let i = int(7); i > 0; i--) body[random() < 0.85 ? pick(FIELDS) : `extra_${int(1000)}`] = value(depth);
  return body;
}

/** A body: mostly objects, sometimes another JSON value, sometimes not JSON at all. */
function body(): { text: string; json: boolean } {
  const roll = random();
  if (roll < 0.05) return { text: pick(["{", "nul", "[1,", "\u00ff\u00fe", ""]), json: true };
  if (roll < 0.08) return { text: pick(STRINGS), json: false };
  const generated = roll < 0.8 ? object(0) : value(0);
  return { text: JSON.stringify(generated) ?? "null", json: true };
}

const PARAMS: Record<string, () => string> = {
  name: () => pick(["fuzz-model", "no-such-model", "x".repeat(300), "%2e%2e", "ünï"]),
  id: () => pick(["t_unknown", "fuzz-task", "0", "%00"]),
  taskId: () => pick(["t_unknown", "fuzz-task"]),
  nodeId: () => pick(["fuzz-node", "n_unknown"]),
  uploadId: () => pick(["no-such-upload", "x"]),
  n: () => String(pick([0, 1, 10_001])),
  partNumber: () => String(pick([0, 1, 10_001])),
  index: () => String(pick([0, 1, 99])),
};

/** Routes outside the OpenAPI document (src/routes: raw bodies, multipart, the sd-webui passthrough). */
const UNDOCUMENTED: Array<[method: "POST" | "PUT", path: string]> = [
  ["POST", "/uploads"],
  ["PUT", "/models/{name}/file"],
  ["POST", "/models/{name}/file/uploads"],
  ["PUT", "/models/{name}/file/uploads/{uploadId}/parts/{partNumber}"],
  ["POST", "/models/{name}/file/uploads/{uploadId}/complete"],
  ["PUT", "/nodes/tasks/{taskId}/images/{index}"],
  ["POST", "/nodes/tasks/{taskId}/result"],
  ["POST", "/sdapi/v1/png-info"],
  ["PUT", "/sdapi/v1/some-extension"],
  ["POST", "/controlnet/detect"],
];

interface Snapshot {
  rows: string;
  objects: number;
}

async function snapshot(): Promise<Snapshot> {
  const counts = await env.DB.prepare(
    "SELECT (SELECT COUNT(*) FROM tasks) AS tasks, (SELECT COUNT(*) FROM models) AS models, (SELECT COUNT(*) FROM key_options) AS options, (SELECT COUNT(*) FROM pools) AS pools, (SELECT COUNT(*) FROM api_keys) AS keys, (SELECT group_concat(sha256) FROM models) AS files, (SELECT group_concat(options) FROM key_options) AS option_values",
  ).first();
  return { rows: JSON.stringify(counts), objects: (await env.BUCKET.list({ limit: 1000 })).objects.length };
}

let routes: Array<[string, string]>;
let user: string;

beforeAll(async () => {
  await createModel("fuzz-model");
  user = await createKey("user", "fuzz-user");
  const document = await json<{ paths: Record<string, Record<string, unknown>> }>(await call("/openapi.json"), 200);
  const documented = Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.keys(methods)
      .filter((m) => m === "post" || m === "put")
      .map((m) => [m.toUpperCase(), path] as [string, string]),
  );
  routes = [...documented, ...UNDOCUMENTED];
});

/** One generated request: its route, key and body, drawn in order from the seeded PRNG. */
function generatedRequest(i: number) {
  const [method, template] = routes[i % routes.length]!;
  const path = template.replace(/\{(\w+)\}/g, (_, param: string) => encodeURIComponent((PARAMS[param] ?? (() => "x"))()));
  const { text, json: isJson } = body();
  const token = random() < 0.5 ? user : ADMIN;
  return { method, path, text, isJson, token, label: `#${i} ${method} ${path} (${token === ADMIN ? "admin" : "user"}) ${text.slice(0, 200)}` };
}

/** sd-webui answers an unknown `sd_model_checkpoint` on POST options with 500 RuntimeError; the surface says it as sd-webui does (test/worker/sdapi.test.ts). */
function sdWebuiUnknownModel(path: string, answer: string): boolean {
  return path === "/sdapi/v1/options" && /^\{"error":"RuntimeError","detail":"","body":"","errors":"model '.*' not found"\}$/s.test(answer);
}

/** Straight into the Worker's fetch: thousands of calls through the test pool's loopback slow down call after call. */
async function send(r: ReturnType<typeof generatedRequest>): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${r.token}`, "request-type": "async" };
  if (r.isJson) headers["content-type"] = "application/json";
  return worker.fetch(new Request(`${BASE}${r.path}`, { method: r.method, headers, body: r.text }), env, createExecutionContext());
}

describe("fuzz", () => {
  it(`answers ${REQUESTS} generated bodies on every POST and PUT route without a 5xx, changing nothing when it refuses`, { timeout: 120_000 }, async () => {
    expect(routes.length).toBeGreaterThan(30);
    const failures: string[] = [];
    let before = await snapshot();
    for (let i = 0; i < REQUESTS; i++) {
      const r = generatedRequest(i);
      const res = await send(r);
      const answer = await res.text();
      if (res.status >= 500 && !sdWebuiUnknownModel(r.path, answer)) failures.push(`${r.label} → ${res.status} ${answer.slice(0, 300)}`);
      const after = await snapshot();
      // A success may create things; a refusal may not.
      if (res.status >= 400 && JSON.stringify(after) !== JSON.stringify(before))
        failures.push(`${r.label} → ${res.status}, but D1 or R2 changed: ${JSON.stringify(before).slice(0, 300)} → ${JSON.stringify(after).slice(0, 300)}`);
      before = after;
    }
    expect(failures).toEqual([]);
  });
});
