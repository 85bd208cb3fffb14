// The agent's life with the Worker: registration with sd-webui's catalog, heartbeats, re-register
// after the Worker forgets the node, a refused token or node id, and the two kinds of stop.
import { describe, expect, it } from "vitest";
import { startEmulator } from "../../emulator/server.ts";
import { createLogger } from "../../gpu-node/logger.ts";
import { agentFor, agentTestTeardown, checkpointsDirOf, modelBytes, tempDir } from "./support/fixtures.ts";
import { TestGateway } from "./support/test-gateway.ts";

const { cleanups, gateways } = agentTestTeardown();

async function setup(nodeId: string, gatewayOptions: Parameters<typeof TestGateway.start>[0] = {}, agentOptions: { group?: string } = {}) {
  const dataDir = await tempDir("life-data");
  const modelsDir = checkpointsDirOf(dataDir);
  const emulator = await startEmulator({ port: 0, modelsDir, stepMs: 20, loadMs: 10 });
  cleanups.push(() => emulator.close());
  const gateway = await TestGateway.start(gatewayOptions);
  cleanups.push(() => gateway.close());
  gateways.push(gateway);
  gateway.addModel({ name: "demo-v1", bytes: modelBytes(32 * 1024, 5) });
  const agent = agentFor(gateway, { nodeId, webuiUrl: emulator.url, dataDir, ...agentOptions });
  cleanups.push(() => agent.stop({ drain: false }));
  return { gateway, agent, emulator };
}

describe("gpu-node agent lifecycle", () => {
  it("registers with sd-webui's catalog and keeps a heartbeat", async () => {
    const { gateway, agent } = await setup("life-node");
    await agent.start();

    const node = gateway.node("life-node");
    const registration = node.registrations[0]!;
    expect(registration.gpuClass).toBe("test-gpu");
    expect(registration.gpuMemoryMb).toBe(8192);
    expect(registration.catalog.samplers?.length).toBeGreaterThan(0);
    expect(registration.catalog.upscalers?.length).toBeGreaterThan(0);
    expect(registration.catalog.scripts).toHaveProperty("txt2img");
    expect(registration.catalog["script-info"]?.length).toBeGreaterThan(0);
    expect(registration.catalog.embeddings).toHaveProperty("loaded");
    expect(registration.catalog.hypernetworks).toBeInstanceOf(Array);
    expect(registration.catalog.options?.sd_model_checkpoint).toBeDefined();
    // No ControlNet extension on this sd-webui: its lists are left out, not empty.
    expect(registration.catalog).not.toHaveProperty("controlnet-models");
    expect(registration.catalog).not.toHaveProperty("controlnet-modules");
    expect(registration.cachedAddons).toEqual([]);
    await gateway.waitFor("heartbeats", () => node.heartbeats.length >= 2);
    expect(node.heartbeats.at(-1)).toMatchObject({ status: "idle", currentTaskId: null });
  });

  it("beats at the interval the last heartbeat answer told it (Fleet lengthens it as the fleet grows)", async () => {
    const { gateway, agent } = await setup("interval-node", { heartbeatIntervalMs: 60_000, answeredHeartbeatIntervalMs: 50 });
    await agent.start();
    // Registered with a minute between beats; the answers say 50 ms.
    const node = gateway.node("interval-node");
    await gateway.waitFor("heartbeats at the answered interval", () => node.heartbeats.length >= 4);
  });

  it("registers again when the Worker no longer knows the node, and keeps working", async () => {
    const { gateway, agent } = await setup("forgotten-node");
    await agent.start();
    gateway.forgetNode("forgotten-node");

    await gateway.waitFor("the node to register again", () => gateway.nodes.get("forgotten-node"));
    const task = await gateway.waitForEnd(
      gateway.enqueue({ kind: "txt2img", model: "demo-v1", payload: { prompt: "still here", steps: 2, width: 64, height: 64 } }),
    );
    expect(task.status).toBe("succeeded");
    expect(task.claimedBy).toEqual(["forgotten-node"]);
  });

  it("does not start with a token the Worker refuses, and never shows the token", async () => {
    const { gateway, emulator } = await setup("unused");
    const lines: string[] = [];
    const agent = agentFor(
      gateway,
      { nodeId: "bad-token-node", webuiUrl: emulator.url, dataDir: await tempDir("life-data"), token: "wrong-token-1234" },
      { logger: createLogger({ level: "debug", secrets: ["wrong-token-1234"], write: (line) => lines.push(line) }) },
    );

    await expect(agent.start()).rejects.toThrow(/refused/);
    expect(gateway.unauthorized).toBeGreaterThan(0);
    expect(gateway.nodes.has("bad-token-node")).toBe(false);
    expect(lines.join("\n")).not.toContain("wrong-token-1234");
  });

  it("does not start with a node id another node key holds, and says how to free it", async () => {
    const { gateway, emulator } = await setup("unused-too");
    gateway.takenNodeIds.add("someone-elses-node");
    const agent = agentFor(gateway, { nodeId: "someone-elses-node", webuiUrl: emulator.url, dataDir: await tempDir("life-data") });

    await expect(agent.start()).rejects.toThrow(
      "node id someone-elses-node belongs to another node key; give this agent its own --node-id, or have an admin release the id (DELETE /nodes/someone-elses-node)",
    );
    expect(gateway.nodes.has("someone-elses-node")).toBe(false);
  });

  it("on stop({ drain: true }) finishes the current task, claims nothing more and deregisters", async () => {
    const { gateway, agent } = await setup("drain-node");
    await agent.start();
    const running = gateway.enqueue({ kind: "txt2img", model: "demo-v1", payload: { prompt: "finish me", steps: 60, width: 64, height: 64 } });
    await gateway.waitFor("the task to make progress", () => gateway.task(running).progress.some((report) => report.progress > 0));

    const stopping = agent.stop({ drain: true });
    const waiting = gateway.enqueue({ kind: "txt2img", model: "demo-v1", payload: { prompt: "not for this node", steps: 2, width: 64, height: 64 } });
    await stopping;

    expect(gateway.task(running).status).toBe("succeeded");
    expect(gateway.task(running).images.size).toBe(1);
    expect(gateway.task(waiting).status).toBe("waiting");
    expect(gateway.task(waiting).attempts).toBe(0);
    const node = gateway.node("drain-node");
    expect(node.deregistered).toBe(true);
    expect(node.heartbeats.some((beat) => beat.status === "draining" && beat.currentTaskId === running)).toBe(true);
    expect(agent.status).toBe("stopped");
  });

  it("names its group when it registers, and leaves as on a drain when a heartbeat answers drain (the fleet scales in)", async () => {
    const { gateway, agent } = await setup("leaving-node", {}, { group: "l4-pool" });
    await agent.start();
    expect(gateway.node("leaving-node").registrations[0]).toMatchObject({ group: "l4-pool" });
    const running = gateway.enqueue({ kind: "txt2img", model: "demo-v1", payload: { prompt: "finish me", steps: 60, width: 64, height: 64 } });
    await gateway.waitFor("the task to make progress", () => gateway.task(running).progress.some((report) => report.progress > 0));

    gateway.requestDrain("leaving-node");
    await agent.closed;

    expect(gateway.task(running).status).toBe("succeeded");
    expect(gateway.node("leaving-node").deregistered).toBe(true);
    expect(agent.fatalError).toBeFalsy();
  });

  it("on stop({ drain: false }) interrupts sd-webui and hands the task back as retryable", async () => {
    const { gateway, agent } = await setup("hard-stop-node");
    await agent.start();
    const id = gateway.enqueue({ kind: "txt2img", model: "demo-v1", payload: { prompt: "long", steps: 4000, width: 64, height: 64 } });
    await gateway.waitFor("the task to make progress", () => gateway.task(id).progress.some((report) => report.progress > 0));

    await agent.stop({ drain: false });

    const task = gateway.task(id);
    expect(task.failures[0]).toMatchObject({ retryable: true, infrastructure: true });
    expect(task.status).toBe("waiting");
    expect(gateway.node("hard-stop-node").deregistered).toBe(true);
  });

  it("stops at once when another process takes its node id: interrupts its task and leaves the id alone", async () => {
    const { gateway, agent } = await setup("replaced-node");
    await agent.start();
    const registered = gateway.node("replaced-node").registrations[0]!;
    expect(registered.instanceId).toMatch(/^[A-Za-z0-9_-]{8,64}$/);
    const id = gateway.enqueue({ kind: "txt2img", model: "demo-v1", payload: { prompt: "long", steps: 4000, width: 64, height: 64 } });
    await gateway.waitFor("the task to make progress", () => gateway.task(id).progress.some((report) => report.progress > 0));

    gateway.replaceNode("replaced-node");
    await agent.closed; // its next heartbeat hears it; a drain would take the task's 80 s

    expect(agent.fatalError?.message).toContain("another agent process registered as node replaced-node");
    expect(gateway.task(id).failures[0]?.retryable).toBe(true);
    expect(gateway.node("replaced-node").deregistered).toBe(false);
    expect(gateway.node("replaced-node").heartbeats.every((beat) => beat.instanceId === registered.instanceId)).toBe(true);
  });
});
