// The local autoscaled fleet (scripts/local-scaler.ts, as `npm start -- --autoscale` runs it):
// from zero nodes, work makes the fleet grow and every task succeeds; idle, it shrinks back to
// zero; work submitted while a node is leaving is not lost, and no task is cut short by a
// scale-in (each succeeds on its first attempt).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOCAL_GROUP, type LocalScaler, startLocalScaler } from "../../scripts/local-scaler.ts";
import { createKey, DEV_ADMIN_TOKEN } from "../../scripts/local-stack.ts";
import { callApi, useStack, waitFor } from "./support.ts";

const stack = useStack(0);
let scaler: LocalScaler;

beforeAll(async () => {
  scaler = await startLocalScaler({
    gateway: stack().gateway.url,
    scalerKey: await createKey(stack().gateway.url, "scaler", "e2e scaler"),
    nodeKey: stack().nodeKey,
    pollMs: 300,
    group: { idleSeconds: 2, targetWaitSeconds: 10, bootSeconds: 2 },
    stepMs: 30,
    loadMs: 200,
  });
});

// Before the stack stops (useStack's afterAll runs after this one).
afterAll(async () => {
  await scaler?.stop();
});

async function submit(prompt: string): Promise<string> {
  const res = await callApi<{ taskId: string }>(stack(), "/txt2img", {
    body: { stable_diffusion_model: "e2e-a", prompt, steps: 5 },
    headers: { "request-type": "async" },
  });
  expect(res.status).toBe(202);
  return res.body.taskId;
}

async function result(taskId: string): Promise<{ status: string; attempts: number; ossUrl: string[] }> {
  return (await callApi<{ status: string; attempts: number; ossUrl: string[] }>(stack(), `/tasks/${taskId}/result`)).body;
}

async function liveNodes(): Promise<number> {
  const res = await fetch(`${stack().gateway.url}/nodes`, { headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}` } });
  return ((await res.json()) as Array<{ status: string }>).filter((n) => n.status !== "lost").length;
}

async function allSucceed(taskIds: readonly string[]): Promise<void> {
  await waitFor(
    async () => (await Promise.all(taskIds.map(result))).every((r) => r.status === "succeeded" || r.status === "failed"),
    60_000,
    "the tasks to end",
  );
  for (const r of await Promise.all(taskIds.map(result))) expect(r).toMatchObject({ status: "succeeded", attempts: 1, ossUrl: [expect.any(String)] });
}

const scaledToZero = async () => scaler.agents().length === 0 && (await liveNodes()) === 0;

describe("local autoscaled fleet", () => {
  it("grows from zero when work comes, shrinks back to zero when idle, and loses no task to a scale-in", async () => {
    // No work: no node.
    await new Promise((r) => setTimeout(r, 1000));
    expect(scaler.started()).toHaveLength(0);
    expect(await liveNodes()).toBe(0);

    const first = await Promise.all(Array.from({ length: 12 }, (_, i) => submit(`first ${i}`)));
    await allSucceed(first);
    expect(scaler.started().length).toBeGreaterThanOrEqual(1);

    // A node chosen to leave (idle) drains; work submitted then is served by a node started for it.
    await waitFor(async () => scaler.started().some((a) => a.output().includes("chose this node")), 30_000, "a node to be chosen to leave");
    const during = await Promise.all([submit("during scale-in 1"), submit("during scale-in 2")]);
    await allSucceed(during);

    await waitFor(scaledToZero, 30_000, "the fleet to shrink to zero");
    for (const agent of scaler.started()) expect(await agent.exited).toBe(0);
    const answer = (await (await fetch(`${stack().gateway.url}/autoscale`, { headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}` } })).json()) as {
      groups: Record<string, { desired: number; current: number }>;
    };
    expect(answer.groups[LOCAL_GROUP]).toMatchObject({ desired: 0, current: 0 });
  });
});
