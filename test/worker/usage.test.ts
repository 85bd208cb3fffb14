// Metering (issue 14): each ended task records its sd-webui time, model load time and images;
// GET /usage sums them per key and UTC day, and /metrics counts them per key.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN, call, claim, createKey, createModel, finishTask, json, registerNode, submit } from "./helpers";

const MODEL = "usage-model";
const YESTERDAY = "2026-03-09";

interface Usage {
  key: string;
  day: string | null;
  tasks: number;
  gpuSeconds: number;
  modelLoadSeconds: number;
  images: number;
}

let node: string;
const keys: Record<"a" | "b", { token: string; id: string }> = {} as never;

async function runTask(token: string, images: number, webuiMs: number, modelMs: number): Promise<string> {
  const { taskId } = await json<{ taskId: string }>(await submit(token, { stable_diffusion_model: MODEL, prompt: "x" }), 202);
  const claimed = (await claim(node, "usage-node"))!;
  await finishTask(node, claimed, images, { webuiMs, modelMs });
  // Reading the progress waits until the queue's records of the end are in D1.
  expect((await json<{ status: string }>(await call(`/tasks/${taskId}/progress`, { token }), 200)).status).toBe("succeeded");
  return taskId;
}

beforeAll(async () => {
  await createModel(MODEL);
  node = await createKey("node");
  await registerNode(node, "usage-node", MODEL);
  for (const name of ["a", "b"] as const) {
    keys[name] = await json<{ token: string; id: string }>(await call("/keys", { token: ADMIN, body: { name: `usage-${name}`, role: "user" } }), 201);
  }
  await runTask(keys.a.token, 2, 1200, 300);
  await runTask(keys.a.token, 1, 800, 0);
  const old = await runTask(keys.a.token, 3, 5000, 1000);
  await runTask(keys.b.token, 1, 400, 0);
  // One of a's tasks ended yesterday noon (UTC).
  await env.DB.prepare("UPDATE tasks SET finished_at = ? WHERE owner = ? AND task_id = ?")
    .bind(Date.parse(`${YESTERDAY}T12:00:00Z`), keys.a.id, old)
    .run();
});

async function sumsInD1(owner: string): Promise<{ gpu: number; images: number; n: number }> {
  return (await env.DB.prepare("SELECT SUM(gpu_ms) AS gpu, SUM(image_count) AS images, COUNT(*) AS n FROM tasks WHERE owner = ?")
    .bind(owner)
    .first<{ gpu: number; images: number; n: number }>())!;
}

describe("GET /usage", () => {
  it("sums a user's own tasks, and per UTC day", async () => {
    const all = await json<{ usage: Usage[] }>(await call("/usage?from=2026-01-01", { token: keys.a.token }), 200);
    const d1 = await sumsInD1(keys.a.id);
    expect(all.usage).toEqual([{ key: keys.a.id, day: null, tasks: 3, gpuSeconds: 7, modelLoadSeconds: 1.3, images: 6 }]);
    expect(all.usage[0]!.gpuSeconds * 1000).toBe(d1.gpu);
    expect(all.usage[0]!.images).toBe(d1.images);

    const byDay = await json<{ usage: Usage[] }>(await call("/usage?from=2026-01-01&groupBy=day", { token: keys.a.token }), 200);
    expect(byDay.usage).toHaveLength(2);
    expect(byDay.usage[0]).toEqual({ key: keys.a.id, day: YESTERDAY, tasks: 1, gpuSeconds: 5, modelLoadSeconds: 1, images: 3 });
    expect(byDay.usage[1]).toMatchObject({ tasks: 2, gpuSeconds: 2, modelLoadSeconds: 0.3, images: 3 });

    const range = await json<{ usage: Usage[] }>(await call(`/usage?from=${YESTERDAY}&to=${YESTERDAY}T23:59:59Z`, { token: keys.a.token }), 200);
    expect(range.usage).toEqual([{ key: keys.a.id, day: null, tasks: 1, gpuSeconds: 5, modelLoadSeconds: 1, images: 3 }]);
  });

  it("shows a user only its own usage", async () => {
    await json(await call(`/usage?key=${keys.b.id}`, { token: keys.a.token }), 403);
    const own = await json<{ usage: Usage[] }>(await call("/usage", { token: keys.b.token }), 200);
    expect(own.usage.map((u) => u.key)).toEqual([keys.b.id]);
  });

  it("shows an admin every key, or the one it names", async () => {
    const all = await json<{ usage: Usage[] }>(await call("/usage?from=2026-01-01", { token: ADMIN }), 200);
    expect(all.usage.map((u) => u.key).sort()).toEqual([keys.a.id, keys.b.id].sort());
    const one = await json<{ usage: Usage[] }>(await call(`/usage?from=2026-01-01&key=${keys.b.id}`, { token: ADMIN }), 200);
    expect(one.usage).toEqual([{ key: keys.b.id, day: null, tasks: 1, gpuSeconds: 0.4, modelLoadSeconds: 0, images: 1 }]);
  });

  it("refuses a bad range", async () => {
    await json(await call("/usage?from=yesterday", { token: keys.a.token }), 422);
    await json(await call("/usage?from=2026-03-02&to=2026-03-01", { token: keys.a.token }), 422);
  });
});

describe("GET /metrics", () => {
  it("counts each key's tasks, GPU seconds and images", async () => {
    const text = await (await call("/metrics", { token: ADMIN })).text();
    expect(text).toContain("# TYPE sdgate_key_gpu_seconds_total counter");
    expect(text).toContain(`sdgate_key_gpu_seconds_total{key="${keys.a.id}"} 7`);
    expect(text).toContain(`sdgate_key_images_total{key="${keys.a.id}"} 6`);
    expect(text).toContain(`sdgate_key_tasks_total{key="${keys.b.id}"} 1`);
    expect(text).toContain(`sdgate_key_model_load_seconds_total{key="${keys.a.id}"} 1.3`);
  });
});
