// One agent attached to an in-process emulator, driven through the test gateway: what a client
// of sdgate sees of a task — images, info, progress with previews, cancel, errors, timeouts.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startEmulator } from "../../emulator/server.ts";
import type { GpuNodeAgent } from "../../gpu-node/agent.ts";
import { agentFor, decodePng, imageBytes, modelBytes, removeTempDirs, solidPng, tempDir } from "./support/fixtures.ts";
import { TestGateway } from "./support/test-gateway.ts";

let gateway: TestGateway;
let emulator: Awaited<ReturnType<typeof startEmulator>>;
let agent: GpuNodeAgent;

beforeAll(async () => {
  const dataDir = await tempDir("tasks-data");
  // --nowebui, as the agent starts sd-webui by default: no /internal/progress, progress comes from /sdapi/v1/progress.
  emulator = await startEmulator({ port: 0, dataDir, apiOnly: true, stepMs: 15, loadMs: 20 });
  gateway = await TestGateway.start();
  gateway.addModel({ name: "demo-v1", bytes: modelBytes(64 * 1024, 1) });
  agent = agentFor(gateway, { nodeId: "tasks-node", webuiUrl: emulator.url, dataDir });
  await agent.start();
});

afterAll(async () => {
  await agent?.stop({ drain: false });
  await emulator?.close();
  await gateway?.close();
  await removeTempDirs();
});

afterEach(() => {
  expect(gateway.protocolErrors).toEqual([]);
});

describe("gpu-node agent runs tasks", () => {
  it("completes a txt2img task with decodable PNGs and sd-webui's info parsed", async () => {
    const id = gateway.enqueue({
      kind: "txt2img",
      model: "demo-v1",
      payload: { prompt: "a red fox in snow", steps: 4, width: 64, height: 96, seed: 42, batch_size: 2 },
    });
    const task = await gateway.waitForEnd(id);

    expect(task.status).toBe("succeeded");
    expect(task.complete?.imageCount).toBe(2);
    expect(task.images.size).toBe(2);
    for (const image of task.images.values()) {
      expect(image.contentType).toBe("image/png");
      expect(decodePng(image.bytes)).toEqual({ width: 64, height: 96 });
    }
    const info = task.complete?.info as { seed?: unknown; prompt?: unknown; all_seeds?: unknown[] };
    expect(typeof info).toBe("object");
    expect(info.seed).toBe(42);
    expect(info.prompt).toBe("a red fox in snow");
    expect(task.complete?.parameters.prompt).toBe("a red fox in snow");
    expect(task.complete?.passthroughResult).toBeNull();
  });

  it("resolves an img2img input key to the image's base64 before calling sd-webui", async () => {
    const input = solidPng(64, 64, [200, 30, 30]);
    gateway.addInput("inputs/owner-1/red.png", input);
    const id = gateway.enqueue({
      kind: "img2img",
      model: "demo-v1",
      payload: {
        prompt: "a red square, painted",
        init_images: ["inputs/owner-1/red.png"],
        include_init_images: true,
        denoising_strength: 0.5,
        steps: 4,
        width: 64,
        height: 64,
      },
      inputs: [{ pointer: "/init_images/0", key: "inputs/owner-1/red.png" }],
    });
    const task = await gateway.waitForEnd(id);

    expect(task.status).toBe("succeeded");
    expect(task.images.size).toBe(1);
    expect(decodePng(task.images.get(0)!.bytes)).toEqual({ width: 64, height: 64 });
    // sd-webui echoes the init image it received: the input's bytes, not its key.
    const echoed = (task.complete?.parameters.init_images as string[] | null)?.[0];
    expect(echoed && imageBytes(echoed).equals(input)).toBe(true);
  });

  it("reports progress that moves and carries a live preview (sd-webui without /internal/progress)", async () => {
    expect((await fetch(`${emulator.url}/internal/progress`, { method: "POST", body: "{}" })).status).toBe(404);
    const id = gateway.enqueue({
      kind: "txt2img",
      model: "demo-v1",
      payload: { prompt: "a lighthouse at dusk", steps: 60, width: 64, height: 64 },
    });
    const task = await gateway.waitForEnd(id);

    expect(task.status).toBe("succeeded");
    const running = task.progress.filter((report) => report.progress > 0 && report.progress < 1);
    expect(running.length).toBeGreaterThanOrEqual(2);
    const values = running.map((report) => report.progress);
    expect(new Set(values).size).toBeGreaterThan(1);
    expect(values).toEqual([...values].sort((a, b) => a - b));
    const withPreview = task.progress.filter((report) => report.currentImage);
    expect(withPreview.length).toBeGreaterThan(0);
    expect(decodePng(imageBytes(withPreview.at(-1)!.currentImage!))).toEqual({ width: 64, height: 64 });
    expect(running.some((report) => typeof report.state.sampling_step === "number")).toBe(true);
  });

  /** A generation of about a minute if nobody interrupts it, cancelled once it makes progress. */
  async function cancelledLongRender(keepInterruptedImages: boolean) {
    const id = gateway.enqueue({
      kind: "txt2img",
      model: "demo-v1",
      payload: { prompt: "a very long render", steps: 4000, width: 64, height: 64 },
      keepInterruptedImages,
    });
    await gateway.waitFor("the task to make progress", () => gateway.task(id).progress.some((report) => report.progress > 0));
    gateway.cancel(id);
    return gateway.waitForEnd(id, 15_000);
  }

  async function expectWebuiFreeAgain() {
    // sd-webui was interrupted, not abandoned: it is free again and the next task runs.
    const next = await gateway.waitForEnd(
      gateway.enqueue({ kind: "txt2img", model: "demo-v1", payload: { prompt: "after", steps: 2, width: 64, height: 64 } }),
    );
    expect(next.status).toBe("succeeded");
  }

  it("on a cancel of a task that keeps interrupted images, interrupts sd-webui and completes with the partial picture it answered", async () => {
    const task = await cancelledLongRender(true);

    // As sd-webui does after an interrupt, the run answers 200 with what it had: an A1111 client gets it.
    expect(task.status).toBe("succeeded");
    expect(task.images.size).toBe(1);
    expect(decodePng(task.images.get(0)!.bytes)).toMatchObject({ width: 64, height: 64 });
    await expectWebuiFreeAgain();
  });

  it("on a cancel of any other task, interrupts sd-webui and ends it cancelled with no image", async () => {
    const task = await cancelledLongRender(false);

    expect(task.status).toBe("cancelled");
    expect(task.images.size).toBe(0);
    expect(task.complete).toBeNull();
    expect(task.failures.map((failure) => failure.error)).toEqual(["cancelled"]);
    await expectWebuiFreeAgain();
  });

  it("fails a task with sd-webui's own message when sd-webui refuses it", async () => {
    const id = gateway.enqueue({
      kind: "txt2img",
      model: "demo-v1",
      payload: { prompt: "anything", script_name: "No Such Script", steps: 2, width: 64, height: 64 },
    });
    const task = await gateway.waitForEnd(id);

    expect(task.status).toBe("failed");
    expect(task.failures).toHaveLength(1);
    const failure = task.failures[0]!;
    expect(failure.error).toMatch(/Script 'No Such Script' not found/);
    expect(failure.error).not.toMatch(/\n\s+at /); // no stack trace
    expect(failure.retryable).toBe(false);
    expect(failure.webuiError?.status).toBeGreaterThanOrEqual(400);
    expect(task.attempts).toBe(1);
  });

  it("fails a run that exceeds the pool's timeout, after interrupting it", async () => {
    const id = gateway.enqueue({
      kind: "txt2img",
      model: "demo-v1",
      payload: { prompt: "too slow", steps: 4000, width: 64, height: 64 },
      timeoutSeconds: 1,
    });
    const task = await gateway.waitForEnd(id, 15_000);

    expect(task.status).toBe("failed");
    expect(task.failures[0]?.error).toBe("timed out after 1 s");
    expect(task.failures[0]?.retryable).toBe(false);
  });

  it("runs an extras task on the input image and uploads the one result", async () => {
    gateway.addInput("inputs/owner-1/small.png", solidPng(32, 32, [10, 120, 240]));
    const id = gateway.enqueue({
      kind: "extras",
      model: "demo-v1",
      payload: { image: "inputs/owner-1/small.png", upscaling_resize: 2, upscaler_1: "Lanczos" },
      inputs: [{ pointer: "/image", key: "inputs/owner-1/small.png" }],
    });
    const task = await gateway.waitForEnd(id);

    expect(task.status).toBe("succeeded");
    expect(task.complete?.imageCount).toBe(1);
    expect(decodePng(task.images.get(0)!.bytes)).toEqual({ width: 64, height: 64 });
  });

  it("sets the task's VAE, and puts sd-webui's own choice back for a task that names none", async () => {
    const sdVae = async () => ((await (await fetch(`${emulator.url}/sdapi/v1/options`)).json()) as { sd_vae: string }).sd_vae;
    const withVae = await gateway.waitForEnd(
      gateway.enqueue({ kind: "txt2img", model: "demo-v1", vae: "kl-f8-anime.safetensors", payload: { prompt: "vae", steps: 2, width: 64, height: 64 } }),
    );
    expect(withVae.status).toBe("succeeded");
    expect(await sdVae()).toBe("kl-f8-anime.safetensors");

    const without = await gateway.waitForEnd(
      gateway.enqueue({ kind: "txt2img", model: "demo-v1", payload: { prompt: "no vae", steps: 2, width: 64, height: 64 } }),
    );
    expect(without.status).toBe("succeeded");
    expect(await sdVae()).toBe("Automatic");
  });

  it("runs an extras batch on every input image", async () => {
    gateway.addInput("inputs/owner-1/b0.png", solidPng(16, 16, [255, 0, 0]));
    gateway.addInput("inputs/owner-1/b1.png", solidPng(16, 16, [0, 255, 0]));
    const id = gateway.enqueue({
      kind: "extras_batch",
      model: "demo-v1",
      payload: {
        imageList: [
          { data: "inputs/owner-1/b0.png", name: "b0.png" },
          { data: "inputs/owner-1/b1.png", name: "b1.png" },
        ],
        upscaling_resize: 2,
        upscaler_1: "Lanczos",
      },
      inputs: [
        { pointer: "/imageList/0/data", key: "inputs/owner-1/b0.png" },
        { pointer: "/imageList/1/data", key: "inputs/owner-1/b1.png" },
      ],
    });
    const task = await gateway.waitForEnd(id);

    expect(task.status).toBe("succeeded");
    expect(task.complete?.imageCount).toBe(2);
    for (const image of task.images.values()) expect(decodePng(image.bytes)).toEqual({ width: 32, height: 32 });
  });

  it("drops a task whose lease went stale without a word, and takes it again when offered", async () => {
    const id = gateway.enqueue({ kind: "txt2img", model: "demo-v1", payload: { prompt: "stale", steps: 150, width: 64, height: 64 } });
    await gateway.waitFor("the task to make progress", () => gateway.task(id).progress.some((report) => report.progress > 0));
    gateway.expireLease(id);
    const task = await gateway.waitForEnd(id, 20_000);

    // The first attempt neither completed nor failed the task: only the expiry is on record.
    expect(task.failures.map((failure) => failure.error)).toEqual(["lease expired"]);
    expect(task.status).toBe("succeeded");
    expect(task.attempts).toBe(2);
    expect(task.claimedBy).toEqual(["tasks-node", "tasks-node"]);
  });

  it("answers passthrough tasks with sd-webui's status and body, errors included", async () => {
    const ok = await gateway.waitForEnd(gateway.enqueue({ kind: "passthrough", model: "demo-v1", passthrough: { method: "GET", path: "/sdapi/v1/samplers" } }));
    expect(ok.status).toBe("succeeded");
    expect(ok.complete?.passthroughResult?.status).toBe(200);
    expect(Array.isArray(ok.complete?.passthroughResult?.body)).toBe(true);
    expect(ok.images.size).toBe(0);

    const notFound = await gateway.waitForEnd(
      gateway.enqueue({ kind: "passthrough", model: "demo-v1", passthrough: { method: "GET", path: "/sdapi/v1/no-such-route" } }),
    );
    expect(notFound.status).toBe("succeeded");
    expect(notFound.complete?.passthroughResult?.status).toBe(404);
  });
});
