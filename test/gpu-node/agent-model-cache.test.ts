// The checkpoint cache as a node operator sees it: downloaded once and verified, resumed from a
// .part file, refused on a checksum mismatch, and kept under a disk budget (least recently used
// out first, never the loaded one).
import fs from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { startEmulator } from "../../emulator/server.ts";
import type { GpuNodeAgent } from "../../gpu-node/agent.ts";
import { checkpointPath } from "../../gpu-node/model-paths.ts";
import { agentFor, agentTestTeardown, checkpointsDirOf, exists, fileSha256, GB, modelBytes, sha256, tempDir } from "./support/fixtures.ts";
import { TestGateway } from "./support/test-gateway.ts";

const KB = 1024;

interface Setup {
  gateway: TestGateway;
  modelsDir: string;
  emulatorUrl: string;
  emulatorLoads: () => number;
  agent: GpuNodeAgent;
}

const { cleanups, gateways } = agentTestTeardown();

async function setup(options: { cacheBudgetBytes?: number; prepare?: (gateway: TestGateway, modelsDir: string) => Promise<void> | void } = {}): Promise<Setup> {
  const dataDir = await tempDir("cache-data");
  const modelsDir = checkpointsDirOf(dataDir);
  const emulator = await startEmulator({ port: 0, modelsDir, stepMs: 5, loadMs: 10 });
  cleanups.push(() => emulator.close());
  const gateway = await TestGateway.start();
  cleanups.push(() => gateway.close());
  gateways.push(gateway);
  await options.prepare?.(gateway, modelsDir);
  const agent = agentFor(gateway, {
    nodeId: "cache-node",
    webuiUrl: emulator.url,
    dataDir,
    ...(options.cacheBudgetBytes ? { cacheBudgetGb: options.cacheBudgetBytes / GB } : {}),
  });
  cleanups.push(() => agent.stop({ drain: false }));
  await agent.start();
  return { gateway, modelsDir, emulatorUrl: emulator.url, emulatorLoads: () => emulator.stats().loads, agent };
}

const PART = ".part";

/** Where the agent keeps the gateway's model `name`: a folder per file version, named by its short hash. */
function onDisk(gateway: TestGateway, modelsDir: string, name: string, suffix = ""): string {
  const model = gateway.models.get(name)!;
  return checkpointPath(modelsDir, model) + suffix;
}

function txt2img(gateway: TestGateway, model: string): Promise<ReturnType<TestGateway["task"]>> {
  return gateway.waitForEnd(gateway.enqueue({ kind: "txt2img", model, payload: { prompt: `on ${model}`, steps: 2, width: 64, height: 64 } }));
}

/** sd-webui's sd_model_checkpoint ("" when none is loaded). */
async function loadedCheckpoint(emulatorUrl: string): Promise<string> {
  const res = await fetch(`${emulatorUrl}/sdapi/v1/options`);
  return ((await res.json()) as { sd_model_checkpoint: string | null }).sd_model_checkpoint ?? "";
}

describe("gpu-node model cache", () => {
  it("downloads a checkpoint once, verifies it, loads it, and serves the next task from the cache", async () => {
    const bytes = modelBytes(300 * KB, 7);
    const { gateway, modelsDir, emulatorUrl, emulatorLoads } = await setup({ prepare: (g) => void g.addModel({ name: "alpha", bytes }) });

    const first = await txt2img(gateway, "alpha");
    expect(first.status).toBe("succeeded");
    expect(gateway.downloadsOf("alpha")).toHaveLength(1);
    expect(await fileSha256(onDisk(gateway, modelsDir, "alpha"))).toBe(sha256(bytes));
    expect(await loadedCheckpoint(emulatorUrl)).toMatch(/^[0-9a-f]{10}[\\/]alpha\.safetensors/);
    const loads = emulatorLoads();

    const second = await txt2img(gateway, "alpha");
    expect(second.status).toBe("succeeded");
    expect(gateway.downloadsOf("alpha")).toHaveLength(1);
    expect(emulatorLoads()).toBe(loads); // already loaded: not loaded again
    // The Worker learns what is on disk and loaded.
    const beat = await gateway.waitFor("a heartbeat naming the checkpoint", () =>
      gateway.node("cache-node").heartbeats.findLast((h) => h.loadedCheckpoint === "alpha"),
    );
    expect(beat.cachedCheckpoints).toEqual(["alpha"]);
  });

  it("takes over the checkpoints an older agent kept flat in the folder, without downloading them again", async () => {
    const bytes = modelBytes(100 * KB, 9);
    const { gateway, modelsDir } = await setup({
      prepare: async (g, dir) => {
        const model = g.addModel({ name: "kept", bytes });
        await fs.mkdir(dir, { recursive: true });
        await fs.writeFile(path.join(dir, model.fileName), bytes);
        const entries = [{ name: "kept", fileName: model.fileName, sha256: model.sha256, sizeBytes: bytes.length, lastUsedAt: 1 }];
        await fs.writeFile(path.join(dir, ".sdgate-cache.json"), JSON.stringify({ version: 1, entries }));
      },
    });

    expect((await txt2img(gateway, "kept")).status).toBe("succeeded");
    expect(gateway.downloadsOf("kept")).toHaveLength(0);
    expect(await fileSha256(onDisk(gateway, modelsDir, "kept"))).toBe(sha256(bytes));
    expect(await exists(path.join(modelsDir, "kept.safetensors"))).toBe(false);
  });

  it("resumes a download from the .part file with a Range request", async () => {
    const bytes = modelBytes(400 * KB, 11);
    const { gateway, modelsDir } = await setup({
      prepare: async (g, dir) => {
        g.addModel({ name: "beta", bytes });
        await fs.mkdir(path.dirname(onDisk(g, dir, "beta")), { recursive: true });
        await fs.writeFile(onDisk(g, dir, "beta", PART), bytes.subarray(0, 150 * KB));
      },
    });

    const task = await txt2img(gateway, "beta");
    expect(task.status).toBe("succeeded");
    expect(gateway.downloadsOf("beta")).toEqual([{ name: "beta", range: `bytes=${150 * KB}-`, status: 206 }]);
    expect(await fileSha256(onDisk(gateway, modelsDir, "beta"))).toBe(sha256(bytes));
    expect(await exists(onDisk(gateway, modelsDir, "beta", PART))).toBe(false);
  });

  it("picks up where a dropped download stopped", async () => {
    const bytes = modelBytes(2 * 1024 * KB, 12);
    const { gateway, modelsDir } = await setup({ prepare: (g) => void g.addModel({ name: "gamma", bytes }) });
    gateway.cutNextModelDownloadAfterBytes = 700 * KB;

    const task = await txt2img(gateway, "gamma");
    expect(task.status).toBe("succeeded");
    const requests = gateway.downloadsOf("gamma");
    expect(requests.length).toBeGreaterThanOrEqual(2);
    expect(requests[0]).toMatchObject({ range: null, status: 200 });
    expect(requests[1]?.status).toBe(206);
    expect(Number(/^bytes=(\d+)-$/.exec(requests[1]?.range ?? "")?.[1])).toBeGreaterThan(0);
    expect(await fileSha256(onDisk(gateway, modelsDir, "gamma"))).toBe(sha256(bytes));
  });

  it("refuses a file whose sha256 does not match: not loaded, task failed", async () => {
    const bytes = modelBytes(200 * KB, 13);
    const { gateway, modelsDir, emulatorUrl } = await setup({
      prepare: (g) => void g.addModel({ name: "corrupt", bytes, sha256: sha256(Buffer.from("something else")) }),
    });

    const task = await txt2img(gateway, "corrupt");
    expect(task.status).toBe("failed");
    expect(task.failures[0]?.error).toMatch(/checksum mismatch/);
    expect(task.failures[0]?.retryable).toBe(false);
    expect(await exists(onDisk(gateway, modelsDir, "corrupt"))).toBe(false);
    expect(await exists(onDisk(gateway, modelsDir, "corrupt", PART))).toBe(false);
    expect(await loadedCheckpoint(emulatorUrl)).not.toMatch(/corrupt/);
  });

  it("evicts the least recently used checkpoint to stay under the disk budget", async () => {
    const size = 100 * KB;
    const { gateway, modelsDir } = await setup({
      cacheBudgetBytes: 250 * KB, // room for two
      prepare: (g) => {
        for (const [index, name] of ["m-a", "m-b", "m-c"].entries()) g.addModel({ name, bytes: modelBytes(size, 20 + index) });
      },
    });

    for (const name of ["m-a", "m-b", "m-a", "m-c"]) expect((await txt2img(gateway, name)).status).toBe("succeeded");

    // m-b was used least recently when m-c needed room.
    expect(await exists(onDisk(gateway, modelsDir, "m-a"))).toBe(true);
    expect(await exists(onDisk(gateway, modelsDir, "m-b"))).toBe(false);
    expect(await exists(onDisk(gateway, modelsDir, "m-c"))).toBe(true);
    const beat = await gateway.waitFor("a heartbeat after the eviction", () =>
      gateway.node("cache-node").heartbeats.findLast((h) => h.loadedCheckpoint === "m-c"),
    );
    expect(beat.cachedCheckpoints).toEqual(["m-a", "m-c"]);
    // m-a is still served from the cache.
    expect((await txt2img(gateway, "m-a")).status).toBe("succeeded");
    expect(gateway.downloadsOf("m-a")).toHaveLength(1);
  });

  it("never evicts the loaded checkpoint, even when it is the least recently used", async () => {
    const size = 100 * KB;
    const { gateway, modelsDir } = await setup({
      cacheBudgetBytes: 150 * KB, // room for one
      prepare: (g) => {
        for (const [index, name] of ["n-a", "n-b", "n-c"].entries()) g.addModel({ name, bytes: modelBytes(size, 30 + index) });
      },
    });

    expect((await txt2img(gateway, "n-a")).status).toBe("succeeded");
    expect((await txt2img(gateway, "n-b")).status).toBe("succeeded");
    // n-a was loaded while n-b downloaded: kept, although over budget.
    expect(await exists(onDisk(gateway, modelsDir, "n-a"))).toBe(true);
    expect(await exists(onDisk(gateway, modelsDir, "n-b"))).toBe(true);

    expect((await txt2img(gateway, "n-c")).status).toBe("succeeded");
    expect(await exists(onDisk(gateway, modelsDir, "n-a"))).toBe(false);
    expect(await exists(onDisk(gateway, modelsDir, "n-b"))).toBe(true);
    expect(await exists(onDisk(gateway, modelsDir, "n-c"))).toBe(true);
  });
});

describe("gpu-node prefetch", () => {
  it("fetches a checkpoint a heartbeat answer names while idle, then reports it cached and serves from it", async () => {
    const bytes = modelBytes(300 * KB, 40);
    const { gateway, modelsDir } = await setup({ prepare: (g) => void g.addModel({ name: "sdxl", bytes }) });

    gateway.requestPrefetch("cache-node", ["sdxl"]);
    const node = gateway.node("cache-node");
    await gateway.waitFor("a heartbeat naming the prefetched checkpoint", () => node.heartbeats.findLast((h) => h.cachedCheckpoints.includes("sdxl")));
    await gateway.waitFor("a claim naming the prefetched checkpoint", () => node.lastClaim?.cachedCheckpoints?.includes("sdxl"));
    expect(await fileSha256(onDisk(gateway, modelsDir, "sdxl"))).toBe(sha256(bytes));
    expect(node.heartbeats.at(-1)?.loadedCheckpoint).not.toBe("sdxl");
    expect(node.heartbeats.at(-1)?.fetchingCheckpoint ?? null).toBeNull();

    expect((await txt2img(gateway, "sdxl")).status).toBe("succeeded");
    expect(gateway.downloadsOf("sdxl")).toHaveLength(1);
  });

  it("serves a task for the checkpoint being prefetched with that one download", async () => {
    const bytes = modelBytes(400 * KB, 41);
    const { gateway, modelsDir } = await setup({ prepare: (g) => void g.addModel({ name: "sdxl", bytes }) });
    const release = gateway.holdNextModelDownload(100 * KB);

    gateway.requestPrefetch("cache-node", ["sdxl"]);
    await gateway.waitFor("the prefetch download", () => gateway.downloadsOf("sdxl").length === 1);
    // Its heartbeats say what it fetches, so the Worker asks other nodes for other files.
    await gateway.waitFor("a heartbeat reporting the fetch", () => gateway.node("cache-node").heartbeats.findLast((h) => h.fetchingCheckpoint === "sdxl"));
    const id = gateway.enqueue({ kind: "txt2img", model: "sdxl", payload: { prompt: "on sdxl", steps: 2, width: 64, height: 64 } });
    // Two progress reports in, the task has been asking the cache for its checkpoint a while (or it fetched it again).
    await gateway.waitFor(
      "the task to wait for its checkpoint",
      () => gateway.task(id).progress.filter((p) => p.textinfo === "checking sdxl").length >= 2 || gateway.downloadsOf("sdxl").length > 1,
    );
    release();

    const task = await gateway.waitForEnd(id);
    expect(task.status).toBe("succeeded");
    expect(gateway.downloadsOf("sdxl")).toEqual([{ name: "sdxl", range: null, status: 200 }]);
    expect(await fileSha256(onDisk(gateway, modelsDir, "sdxl"))).toBe(sha256(bytes));
  });

  it("skips a checkpoint that would need an eviction, and evicts nothing", async () => {
    const size = 100 * KB;
    const { gateway, modelsDir } = await setup({
      cacheBudgetBytes: 250 * KB, // room for two and a small one
      prepare: (g) => {
        for (const [index, name] of ["p-a", "p-b", "p-big"].entries()) g.addModel({ name, bytes: modelBytes(size, 50 + index) });
        g.addModel({ name: "p-small", bytes: modelBytes(40 * KB, 53) });
      },
    });
    for (const name of ["p-a", "p-b"]) expect((await txt2img(gateway, name)).status).toBe("succeeded");

    gateway.requestPrefetch("cache-node", ["p-big", "p-small"]);
    const node = gateway.node("cache-node");
    await gateway.waitFor("the small checkpoint prefetched", () => node.heartbeats.findLast((h) => h.cachedCheckpoints.includes("p-small")));
    // A few more answers naming p-big: still no room for it.
    const beats = node.heartbeats.length;
    await gateway.waitFor("three more heartbeats", () => node.heartbeats.length >= beats + 3);

    expect(gateway.downloadsOf("p-big")).toEqual([]);
    for (const name of ["p-a", "p-b", "p-small"]) expect(await exists(onDisk(gateway, modelsDir, name))).toBe(true);
    expect(node.heartbeats.at(-1)?.cachedCheckpoints).toEqual(["p-a", "p-b", "p-small"]);
  });
});
