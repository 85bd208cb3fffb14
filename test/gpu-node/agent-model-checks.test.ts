// The agent never reports images made with other weights than the task's: a re-uploaded
// checkpoint is really loaded (the next result carries its new hash), a result from another
// checkpoint is refused as retryable with a model failure, and a checkpoint sd-webui fails to load
// never yields a completed task.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { startEmulator } from "../../emulator/server.ts";
import { checkpointPath } from "../../gpu-node/model-paths.ts";
import { agentFor, agentTestTeardown, checkpointsDirOf, exists, modelBytes, safetensorsBytes, supervisedEmulator, tempDir } from "./support/fixtures.ts";
import { type TaskRecord, TestGateway } from "./support/test-gateway.ts";

const { cleanups, gateways } = agentTestTeardown();

async function attachedNode(nodeId: string) {
  const dataDir = await tempDir("checks-data");
  const emulator = await startEmulator({ port: 0, dataDir, apiOnly: true, stepMs: 5, loadMs: 10 });
  cleanups.push(() => emulator.close());
  const gateway = await TestGateway.start();
  cleanups.push(() => gateway.close());
  gateways.push(gateway);
  const agent = agentFor(gateway, { nodeId, webuiUrl: emulator.url, dataDir });
  cleanups.push(() => agent.stop({ drain: false }));
  return { gateway, dataDir, emulator, agent };
}

function txt2img(gateway: TestGateway, model: string, payload: Record<string, unknown> = {}): Promise<TaskRecord> {
  return gateway.waitForEnd(gateway.enqueue({ kind: "txt2img", model, payload: { prompt: `on ${model}`, steps: 2, width: 64, height: 64, ...payload } }));
}

const modelHashOf = (task: TaskRecord) => (task.complete?.info as { sd_model_hash?: string } | null)?.sd_model_hash;
const shortHash = (gateway: TestGateway, name: string) => gateway.models.get(name)!.sha256.slice(0, 10);

describe("gpu-node model checks", () => {
  it("loads a re-uploaded checkpoint (same file name, new sha256): the next result carries the new hash", async () => {
    const { gateway, dataDir, emulator, agent } = await attachedNode("reupload-node");
    const first = gateway.addModel({ name: "remade", bytes: modelBytes(64 * 1024, 51) });
    await agent.start();

    const before = await txt2img(gateway, "remade");
    expect(before.status).toBe("succeeded");
    expect(modelHashOf(before)).toBe(first.sha256.slice(0, 10));

    const second = gateway.addModel({ name: "remade", bytes: modelBytes(64 * 1024, 52) });
    expect(second.fileName).toBe(first.fileName);
    const after = await txt2img(gateway, "remade");
    expect(after.status).toBe("succeeded");
    expect(modelHashOf(after)).toBe(second.sha256.slice(0, 10));
    expect(emulator.stats().loadedCheckpoint).toContain(second.sha256.slice(0, 10));
    // The old version's file is gone; the new one is where sd-webui loaded it from.
    expect(await exists(checkpointPath(checkpointsDirOf(dataDir), first))).toBe(false);
    expect(await exists(checkpointPath(checkpointsDirOf(dataDir), second))).toBe(true);
    expect(gateway.downloadsOf("remade")).toHaveLength(2);
  });

  it("refuses a result made by another checkpoint: retryable, with a model failure, and no image delivered", async () => {
    const { gateway, agent } = await attachedNode("mixup-node");
    gateway.addModel({ name: "wanted", bytes: modelBytes(64 * 1024, 61) });
    gateway.addModel({ name: "other", bytes: modelBytes(64 * 1024, 62) });
    await agent.start();
    expect((await txt2img(gateway, "other")).status).toBe("succeeded");

    // A request that makes sd-webui switch weights for the run (override_settings) is caught by the result check.
    const task = await txt2img(gateway, "wanted", { override_settings: { sd_model_checkpoint: shortHash(gateway, "other") } });
    expect(task.status).toBe("failed");
    expect(task.complete).toBeNull();
    expect(task.images.size).toBe(0);
    expect(task.failures.length).toBeGreaterThan(0);
    for (const failure of task.failures) {
      expect(failure.retryable).toBe(true);
      expect(failure.modelFailure).toMatchObject({ checkpoint: "wanted", sha256: gateway.models.get("wanted")!.sha256, kind: "wrong_weights" });
      expect(failure.modelFailure?.reason).toContain(shortHash(gateway, "other"));
    }
  });

  it("fails a checkpoint sd-webui cannot load as retryable with sd-webui's reason, and reports the checkpoint really loaded", async () => {
    const { gateway, agent } = await attachedNode("broken-load-node");
    gateway.addModel({ name: "good", bytes: modelBytes(64 * 1024, 71) });
    // A LoRA registered as a checkpoint: sd-webui answers the load with 200 and keeps the previous weights.
    gateway.addModel({ name: "not-a-checkpoint", bytes: safetensorsBytes("lora", 72) });
    await agent.start();
    expect((await txt2img(gateway, "good")).status).toBe("succeeded");

    const task = await txt2img(gateway, "not-a-checkpoint");
    expect(task.status).toBe("failed");
    expect(task.complete).toBeNull();
    expect(task.images.size).toBe(0);
    for (const failure of task.failures) {
      expect(failure.retryable).toBe(true);
      expect(failure.modelFailure).toMatchObject({ checkpoint: "not-a-checkpoint", kind: "load_failed" });
      expect(failure.modelFailure?.reason.length).toBeGreaterThan(0);
    }
    // The node never claims the checkpoint it could not load.
    const beat = await gateway.waitFor("a heartbeat after the failed load", () =>
      gateway.node("broken-load-node").heartbeats.findLast((h) => h.status === "idle" && h.loadedCheckpoint !== null),
    );
    expect(beat.loadedCheckpoint).toBe("good");
    // The next task on the good checkpoint still runs on its weights.
    const next = await txt2img(gateway, "good");
    expect(next.status).toBe("succeeded");
    expect(modelHashOf(next)).toBe(shortHash(gateway, "good"));
  });

  it("gives sd-webui's own words for a failed load when the agent started sd-webui", async () => {
    const dataDir = await tempDir("checks-spawn");
    const gateway = await TestGateway.start();
    cleanups.push(() => gateway.close());
    gateways.push(gateway);
    gateway.addModel({ name: "good", bytes: modelBytes(32 * 1024, 81) });
    gateway.addModel({ name: "not-a-checkpoint", bytes: safetensorsBytes("lora", 82) });
    const agent = agentFor(gateway, {
      nodeId: "spawned-broken-node",
      ...supervisedEmulator({ stepMs: 5, loadMs: 10 }),
      dataDir,
    });
    cleanups.push(() => agent.stop({ drain: false }));
    await agent.start();
    expect((await txt2img(gateway, "good")).status).toBe("succeeded");

    const task = await txt2img(gateway, "not-a-checkpoint");
    expect(task.status).toBe("failed");
    expect(task.failures[0]?.modelFailure?.reason).toMatch(/^Failed to load checkpoint, restoring previous: RuntimeError: /);
    expect(path.isAbsolute(dataDir)).toBe(true);
  });
});
