// Per-key limits (issue 14): each refusal names the limit it hit, on sdgate's API as problem+json
// and on /sdapi/v1 in sd-webui's shape, and nothing is created by a refused submission.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN, call, claim, createKey, createModel, finishTask, json, registerNode, submit } from "./helpers";
import { completeTask } from "./sdapi-support";

const MODEL = "limits-model";

interface Problem {
  status: number;
  code: string;
  detail: string;
  limit?: string;
}

interface KeyView {
  id: string;
  limits: Record<string, unknown>;
  limitOverrides: Record<string, unknown>;
}

let node: string;
beforeAll(async () => {
  await createModel(MODEL);
  node = await createKey("node");
});

/** A user key with these limits set by an admin: its token and id. */
async function keyWithLimits(limits: Record<string, unknown>): Promise<{ token: string; id: string }> {
  const created = await json<{ token: string; id: string }>(await call("/keys", { token: ADMIN, body: { name: "limited", role: "user" } }), 201);
  await json(await call(`/keys/${created.id}/limits`, { method: "PUT", token: ADMIN, body: limits }), 200);
  return created;
}

async function taskCount(owner: string): Promise<number> {
  return (await env.DB.prepare("SELECT COUNT(*) AS n FROM tasks WHERE owner = ?").bind(owner).first<{ n: number }>())!.n;
}

const small = { stable_diffusion_model: MODEL, prompt: "x", steps: 10, width: 256, height: 256 };

describe("PUT /keys/{id}/limits", () => {
  it("shows the limits in force and the overrides in GET /keys, and null puts a default back", async () => {
    const { id } = await keyWithLimits({ requestsPerMinute: 7, maxRunning: 2, weight: 3 });
    const listed = (await json<KeyView[]>(await call("/keys", { token: ADMIN }), 200)).find((k) => k.id === id)!;
    expect(listed.limits).toMatchObject({ requestsPerMinute: 7, maxRunning: 2, weight: 3, maxWaiting: 1000, retentionDays: 30 });
    expect(listed.limitOverrides).toEqual({ requestsPerMinute: 7, maxRunning: 2, weight: 3 });
    const reset = await json<KeyView>(await call(`/keys/${id}/limits`, { method: "PUT", token: ADMIN, body: { requestsPerMinute: null } }), 200);
    expect(reset.limits.requestsPerMinute).toBe(120);
    expect(reset.limitOverrides).toEqual({ maxRunning: 2, weight: 3 });
  });

  it("refuses unknown limits, bad values and unknown keys, and user keys", async () => {
    const { id, token } = await keyWithLimits({});
    const unknown = await json<Problem>(await call(`/keys/${id}/limits`, { method: "PUT", token: ADMIN, body: { gpus: 3 } }), 422);
    expect(unknown.detail).toContain("gpus");
    await json(await call(`/keys/${id}/limits`, { method: "PUT", token: ADMIN, body: { weight: 0 } }), 422);
    await json(await call("/keys/key_nope/limits", { method: "PUT", token: ADMIN, body: { weight: 2 } }), 404);
    await json(await call(`/keys/${id}/limits`, { method: "PUT", token, body: { weight: 2 } }), 403);
  });
});

describe("requestsPerMinute", () => {
  it("answers RateLimit headers, then 429 with Retry-After naming the limit", async () => {
    const { token, id } = await keyWithLimits({ requestsPerMinute: 2 });
    for (const remaining of [1, 0]) {
      const res = await submit(token, small);
      await json(res, 202);
      expect(res.headers.get("ratelimit")).toMatch(new RegExp(`^limit=2, remaining=${remaining}, reset=\\d+$`));
      expect(res.headers.get("ratelimit-policy")).toBe("2;w=60");
    }
    const refused = await submit(token, small);
    const problem = await json<Problem>(refused, 429);
    expect(refused.headers.get("content-type")).toContain("application/problem+json");
    expect(problem).toMatchObject({ code: "rate_limited", limit: "requestsPerMinute" });
    expect(problem.detail).toContain("2 tasks per minute");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(refused.headers.get("ratelimit")).toMatch(/^limit=2, remaining=0, reset=\d+$/);
    expect(await taskCount(id)).toBe(2);
  });

  it("answers sd-webui's error shape on /sdapi/v1, with Retry-After", async () => {
    await createModel("limits-sdapi-model");
    await registerNode(node, "limits-sdapi-node", "limits-sdapi-model");
    const { token, id } = await keyWithLimits({ requestsPerMinute: 1 });
    const answer = call("/sdapi/v1/txt2img", { token, body: { ...small, stable_diffusion_model: "limits-sdapi-model" } });
    // Queued (its row follows it) before the node, which has its checkpoint loaded, claims.
    await expect.poll(() => taskCount(id)).toBe(1);
    await completeTask(node, (await claim(node, "limits-sdapi-node"))!);
    const answered = await answer;
    await json(answered, 200);
    expect(answered.headers.get("ratelimit")).toMatch(/^limit=1, remaining=0, reset=\d+$/);
    const refused = await call("/sdapi/v1/txt2img", { token, body: small });
    const body = await json<Record<string, string>>(refused, 429);
    expect(body).toMatchObject({ error: "HTTPException", body: "" });
    expect(body.detail).toContain("requestsPerMinute");
    expect(body.errors).toBe(`429: ${body.detail}`);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
  });

  it("counts each key on its own", async () => {
    const { token: first } = await keyWithLimits({ requestsPerMinute: 1 });
    const { token: second } = await keyWithLimits({ requestsPerMinute: 1 });
    await json(await submit(first, small), 202);
    await json(await submit(first, small), 429);
    await json(await submit(second, small), 202);
  });
});

describe("maxWaiting", () => {
  it("refuses a submission beyond the key's waiting tasks with 429 naming the limit", async () => {
    const { token, id } = await keyWithLimits({ maxWaiting: 2 });
    await json(await submit(token, small), 202);
    await json(await submit(token, small), 202);
    const problem = await json<Problem>(await submit(token, small), 429);
    expect(problem).toMatchObject({ code: "quota_exceeded", limit: "maxWaiting" });
    expect(problem.detail).toContain("2 tasks waiting");
    expect(await taskCount(id)).toBe(2);
  });
});

describe("maxWorkPerRequest", () => {
  it("holds a generation to the key's megapixel-steps, the hires pass and every image included", async () => {
    const { token, id } = await keyWithLimits({ maxWorkPerRequest: 10 });
    // 256×256×20 = 1.3, plus the hires pass at twice the size 5.2: 6.6 megapixel-steps.
    const hires = { ...small, steps: 20, enable_hr: true, hr_scale: 2 };
    await json(await submit(token, hires), 202);
    const problem = await json<Problem & { errors: unknown[] }>(await submit(token, { ...hires, batch_size: 2 }), 422);
    expect(problem).toMatchObject({ code: "work_over_limit", limit: "maxWorkPerRequest" });
    expect(problem.detail).toContain("13.1 megapixel-steps");
    // sd-webui's default size and steps (512×512, 50) are 13.1 as well.
    await json(await submit(token, { stable_diffusion_model: MODEL, prompt: "defaults" }), 422);
    expect(await taskCount(id)).toBe(1);
  });

  it("answers sd-webui's error shape on /sdapi/v1", async () => {
    const { token } = await keyWithLimits({ maxWorkPerRequest: 1 });
    const body = await json<Record<string, string>>(await call("/sdapi/v1/txt2img", { token, body: { ...small, n_iter: 4 } }), 422);
    expect(body.error).toBe("HTTPException");
    expect(body.detail).toContain("maxWorkPerRequest");
  });

  it("accepts what the old per-field maxima refused when it is within the key's budget", async () => {
    const { token } = await keyWithLimits({ maxWorkPerRequest: 200 });
    await json(await submit(token, { ...small, width: 64, height: 64, steps: 20, batch_size: 32, n_iter: 40 }), 202);
  });
});

describe("daily budgets", () => {
  /** The key runs one task on a checkpoint of its own (so no other waiting task is claimed first). */
  async function runOne(token: string, nodeId: string, images: number, webuiMs: number): Promise<void> {
    const model = `budget-${nodeId}`;
    await createModel(model);
    const submitted = await json<{ taskId: string }>(await submit(token, { ...small, stable_diffusion_model: model }), 202);
    await registerNode(node, nodeId, model);
    const claimed = await claim(node, nodeId);
    expect(claimed).not.toBeNull();
    await finishTask(node, claimed!, images, { webuiMs, modelMs: 0 });
    await expect.poll(async () => (await json<{ status: string }>(await call(`/tasks/${submitted.taskId}/progress`, { token }), 200)).status).toBe("succeeded");
  }

  it("imagesPerDay: refused with 429 and Retry-After once the key made its images today", async () => {
    const { token } = await keyWithLimits({ imagesPerDay: 2 });
    await runOne(token, "budget-images", 2, 100);
    const refused = await submit(token, small);
    const problem = await json<Problem>(refused, 429);
    expect(problem).toMatchObject({ code: "quota_exceeded", limit: "imagesPerDay" });
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(86_400);
  });

  it("gpuSecondsPerDay: refused once the key's tasks used its sd-webui seconds today", async () => {
    const { token } = await keyWithLimits({ gpuSecondsPerDay: 2 });
    await runOne(token, "budget-gpu-1", 1, 1500);
    await json(await submit(token, small), 202);
    const { token: other } = await keyWithLimits({ gpuSecondsPerDay: 2 });
    await json(await submit(other, small), 202);
    const spent = await keyWithLimits({ gpuSecondsPerDay: 1 });
    await runOne(spent.token, "budget-gpu-2", 1, 1500);
    const problem = await json<Problem>(await submit(spent.token, small), 429);
    expect(problem).toMatchObject({ code: "quota_exceeded", limit: "gpuSecondsPerDay" });
  });
});
