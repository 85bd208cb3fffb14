// Checkpoints sd-webui holds in RAM: the agent sets sd-webui's settings from --ram-checkpoints,
// tells the Worker which checkpoints are held (register, heartbeat, claim), and a switch back to one
// of them takes sd-webui's RAM path, not a load from disk.
import { describe, expect, it } from "vitest";
import { startEmulator } from "../../emulator/server.ts";
import type { GpuNodeAgent } from "../../gpu-node/agent.ts";
import { agentFor, agentTestTeardown, checkpointsDirOf, modelBytes, supervisedEmulator, tempDir } from "./support/fixtures.ts";
import { TestGateway } from "./support/test-gateway.ts";

const KB = 1024;
const { cleanups, gateways } = agentTestTeardown();

async function gatewayWithAlphaAndBeta(): Promise<TestGateway> {
  const gateway = await TestGateway.start({ heartbeatIntervalMs: 100 });
  cleanups.push(() => gateway.close());
  gateways.push(gateway);
  gateway.addModel({ name: "alpha", bytes: modelBytes(64 * KB, 1) });
  gateway.addModel({ name: "beta", bytes: modelBytes(64 * KB, 2) });
  return gateway;
}

/** An agent attached to an in-process emulator, whose stats tell RAM switches from loads. */
async function attachedAgent(nodeId: string, ramCheckpoints: number) {
  const dataDir = await tempDir("ram-data");
  const emulator = await startEmulator({ port: 0, modelsDir: checkpointsDirOf(dataDir), stepMs: 1, loadMs: 10, ramLoadMs: 1 });
  cleanups.push(() => emulator.close());
  const gateway = await gatewayWithAlphaAndBeta();
  const agent = agentFor(gateway, { nodeId, webuiUrl: emulator.url, dataDir, ramCheckpoints });
  cleanups.push(() => agent.stop({ drain: false }));
  await agent.start();
  return { gateway, emulator, agent };
}

async function run(gateway: TestGateway, model: string): Promise<void> {
  const task = await gateway.waitForEnd(gateway.enqueue({ kind: "txt2img", model, payload: { prompt: `on ${model}`, steps: 1, width: 64, height: 64 } }));
  expect(task.status).toBe("succeeded");
}

async function webuiOptions(url: string): Promise<Record<string, unknown>> {
  return (await (await fetch(`${url}/sdapi/v1/options`)).json()) as Record<string, unknown>;
}

describe("checkpoints held in RAM", () => {
  it("with --ram-checkpoints 1 reports the checkpoint switched away from, and switching back to it takes sd-webui's RAM path", async () => {
    const { gateway, emulator } = await attachedAgent("ram-node", 1);
    expect(await webuiOptions(emulator.url)).toMatchObject({ sd_checkpoints_limit: 2, sd_checkpoints_keep_in_cpu: true, sd_checkpoint_cache: 0 });

    await run(gateway, "alpha");
    await run(gateway, "beta");
    expect(emulator.stats()).toMatchObject({ loads: 2, ramLoads: 0 });
    const node = gateway.node("ram-node");
    await gateway.waitFor("a heartbeat with alpha in RAM", () =>
      node.heartbeats.findLast((beat) => beat.loadedCheckpoint === "beta" && beat.ramCheckpoints[0] === "alpha"),
    );
    await gateway.waitFor("a claim with alpha in RAM", () => node.lastClaim?.ramCheckpoints?.includes("alpha"));
    expect(node.lastClaim?.ramCheckpoints).toEqual(["alpha"]);

    await run(gateway, "alpha");
    expect(emulator.stats()).toMatchObject({ loads: 2, ramLoads: 1 });
    await gateway.waitFor("a heartbeat with beta in RAM", () =>
      node.heartbeats.findLast((beat) => beat.loadedCheckpoint === "alpha" && beat.ramCheckpoints[0] === "beta"),
    );
    expect(node.heartbeats.at(-1)?.ramCheckpoints).toEqual(["beta"]);
  });

  it("with --ram-checkpoints 0 holds nothing in RAM and reports nothing", async () => {
    const { gateway, emulator } = await attachedAgent("no-ram-node", 0);
    expect(await webuiOptions(emulator.url)).toMatchObject({ sd_checkpoints_limit: 1 });
    await run(gateway, "alpha");
    await run(gateway, "beta");
    await run(gateway, "alpha");
    expect(emulator.stats()).toMatchObject({ loads: 3, ramLoads: 0 });
    const node = gateway.node("no-ram-node");
    await gateway.waitFor("a heartbeat after the last load", () => node.heartbeats.findLast((beat) => beat.loadedCheckpoint === "alpha"));
    expect(node.heartbeats.every((beat) => beat.ramCheckpoints.length === 0)).toBe(true);
    expect(node.registrations.every((registration) => registration.ramCheckpoints.length === 0)).toBe(true);
    expect(node.lastClaim?.ramCheckpoints).toEqual([]);
  });

  it("sets sd-webui's settings again after a restart and reports nothing held until it switches again", async () => {
    const gateway = await gatewayWithAlphaAndBeta();
    const agent: GpuNodeAgent = agentFor(gateway, {
      nodeId: "restarted-node",
      ...supervisedEmulator({ stepMs: 1, loadMs: 10 }),
      dataDir: await tempDir("ram-sup-data"),
      ramCheckpoints: 1,
    });
    cleanups.push(() => agent.stop({ drain: false }));
    await agent.start();
    await run(gateway, "alpha");
    await run(gateway, "beta");
    const node = gateway.node("restarted-node");
    await gateway.waitFor("a heartbeat with alpha in RAM", () => node.heartbeats.findLast((beat) => beat.ramCheckpoints.includes("alpha")));

    // Someone lowers the setting behind the agent's back; sd-webui saves it for its next start.
    const lowered = await fetch(`${agent.webuiUrl}/sdapi/v1/options`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ sd_checkpoints_limit: 1 }),
    });
    expect(lowered.status).toBe(200);
    const firstPid = agent.webuiPid;
    const beatsBefore = node.heartbeats.length;
    gateway.requestWebuiRestart("restarted-node");
    await gateway.waitFor("a new sd-webui process", () => agent.webuiPid !== undefined && agent.webuiPid !== firstPid, 30_000);
    // The agent sends the new run's catalog once it has set the settings and read what is loaded.
    await gateway.waitFor("the new run's catalog", () => node.heartbeats.slice(beatsBefore).find((beat) => beat.catalog !== undefined), 30_000);
    expect(await webuiOptions(agent.webuiUrl)).toMatchObject({ sd_checkpoints_limit: 2 });
    expect(node.heartbeats.at(-1)?.ramCheckpoints).toEqual([]);
  });
});
