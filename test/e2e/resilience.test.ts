// End to end, when things go wrong: an agent dies mid-task, sd-webui crashes, and the model
// cache saves downloads. Each case checks what a client would notice: the task still ends,
// once, with an image that decodes.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { checkpointPath } from "../../gpu-node/model-paths.ts";
import { demoCheckpointBytes } from "../../scripts/local-stack.ts";
import { callApi, E2E_MODELS, emulatorPids, fetchPng, nodeStatus, type Stack, useStack, waitFor } from "./support.ts";

interface Submitted {
  taskId: string;
  status: string;
  ossUrl: string[];
}
interface Result {
  status: string;
  ossUrl: string[];
  attempts: number;
  images: string[];
}

const stackOf = useStack(1);
let stack: Stack;
beforeAll(() => {
  stack = stackOf();
});

const result = async (taskId: string) => (await callApi<Result>(stack, `/tasks/${taskId}/result`)).body;
const running = async (taskId: string) => (await callApi<{ status: string; progress: number }>(stack, `/tasks/${taskId}/progress`)).body.progress > 0;
const count = (text: string, needle: string) => text.split(needle).length - 1;

describe("resilience", () => {
  it("downloads a checkpoint once, then serves it from the node's cache", async () => {
    const [agent] = stack.agents;
    for (const seed of [1, 2]) {
      const { body } = await callApi<Submitted>(stack, "/txt2img", { body: { stable_diffusion_model: "e2e-b", seed, steps: 4, width: 64, height: 64 } });
      expect(body.status).toBe("succeeded");
    }
    expect(count(agent!.output(), "downloading model e2e-b")).toBe(1);
    // The agent keeps each checkpoint version in a folder named by its short hash.
    const e2eB = E2E_MODELS.find((model) => model.name === "e2e-b")!;
    const sha = createHash("sha256").update(demoCheckpointBytes(e2eB)).digest("hex");
    expect(existsSync(checkpointPath(agent!.modelsDir, { fileName: "e2e-b.safetensors", sha256: sha }))).toBe(true);
  });

  it("an sd-webui crash fails the running task as retryable; sd-webui restarts and the retry succeeds", async () => {
    const [agent] = stack.agents;
    const emulators = emulatorPids(agent!.process.pid!);
    expect(emulators.length).toBe(1);
    const { body } = await callApi<Submitted>(stack, "/txt2img", {
      body: { stable_diffusion_model: "e2e-a", steps: 150, width: 64, height: 64 },
      headers: { "request-type": "async" },
    });
    await waitFor(() => running(body.taskId), 30_000, "the task to run", agent);
    process.kill(emulators[0]!, "SIGKILL");
    await waitFor(async () => (await result(body.taskId)).status === "succeeded", 60_000, "the retried task", agent);
    const done = await result(body.taskId);
    expect(done.attempts).toBe(2);
    expect((await fetchPng(done.ossUrl[0]!)).width).toBe(64);
    const restarted = emulatorPids(agent!.process.pid!);
    expect(restarted.length).toBe(1);
    expect(restarted[0]).not.toBe(emulators[0]);
  });

  it("an agent killed mid-task: the task is retried on another agent and finishes exactly once", async () => {
    const [first] = stack.agents;
    const { body } = await callApi<Submitted>(stack, "/txt2img", {
      body: { stable_diffusion_model: "e2e-a", steps: 250, width: 64, height: 64 },
      headers: { "request-type": "async" },
    });
    await waitFor(() => running(body.taskId), 30_000, "the task to run", first);
    const second = await stack.addAgent("e2e-node-2");
    await first!.kill();
    await waitFor(async () => (await nodeStatus(stack.gateway.url, "e2e-node-1")) === "lost", 15_000, "the gateway to notice the dead agent");
    await waitFor(async () => (await result(body.taskId)).status === "succeeded", 60_000, "the task on the second agent", second);
    const done = await result(body.taskId);
    expect(done.attempts).toBe(2);
    expect(done.images).toHaveLength(1);
    expect((await fetchPng(done.ossUrl[0]!)).height).toBe(64);
    expect(count(second.output(), "completed in")).toBe(1);
    const listed = await callApi<{ tasks: Array<{ taskId: string }> }>(stack, "/tasks?limit=100");
    expect(listed.body.tasks.filter((t) => t.taskId === body.taskId)).toHaveLength(1);
  });

  it("a second agent started under a node id in use: the first stops with a clear error, the second keeps the id", async () => {
    const first = await stack.addAgent("e2e-twin");
    const second = await stack.addAgent("e2e-twin");
    const exitCode = await Promise.race([first.exited, new Promise((r) => setTimeout(() => r("still running"), 30_000))]);
    expect(exitCode, first.output().slice(-2000)).toBe(1);
    expect(first.output()).toContain("another agent process registered as node e2e-twin");
    // The first did not deregister the id on its way out: the second holds it, heartbeat after heartbeat.
    await new Promise((r) => setTimeout(r, 2500));
    expect(await nodeStatus(stack.gateway.url, "e2e-twin")).toBe("idle");
    expect(second.process.exitCode).toBeNull();
  });
});
