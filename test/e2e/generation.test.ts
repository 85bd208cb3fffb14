// End to end: a real Worker in workerd, real gpu-node agents, each supervising an sd-webui
// emulator. What a client sees: images that decode, progress that moves, tasks that end.
import { createHmac, timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { PNG } from "pngjs";
import { beforeAll, describe, expect, it } from "vitest";
import { callApi, fetchPng, type Stack, useStack, waitFor } from "./support.ts";

interface Submitted {
  taskId: string;
  status: string;
  ossUrl: string[];
}
interface Result {
  taskId: string;
  status: string;
  ossUrl: string[];
  info: Record<string, unknown>;
  parameters: Record<string, unknown>;
  attempts: number;
  timings: Record<string, number>;
}
interface Progress {
  status: string;
  progress: number;
  currentImage: string | null;
  queuePosition?: number;
}

const stackOf = useStack(1);
let stack: Stack;
beforeAll(() => {
  stack = stackOf();
});

function solidPng(width: number, height: number, rgb: [number, number, number]): string {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) png.data.set([...rgb, 255], i * 4);
  return PNG.sync.write(png).toString("base64");
}

async function resultOf(taskId: string): Promise<Result> {
  return (await callApi<Result>(stack, `/tasks/${taskId}/result`)).body;
}

describe("generation through the whole stack", () => {
  it("sync txt2img answers with a signed URL to a PNG of the requested size", async () => {
    const { status, body } = await callApi<Submitted>(stack, "/txt2img", {
      body: { stable_diffusion_model: "e2e-a", prompt: "a red fox", seed: 7, steps: 8, width: 256, height: 192 },
    });
    expect(status).toBe(200);
    expect(body.status).toBe("succeeded");
    const png = await fetchPng(body.ossUrl[0]!);
    expect([png.width, png.height]).toEqual([256, 192]);
    const result = await resultOf(body.taskId);
    expect(result.info).toMatchObject({ seed: 7, prompt: "a red fox" });
    expect(Object.keys(result.timings).sort()).toEqual(["modelMs", "queuedMs", "runMs", "webuiMs"]);
    expect(result.timings.webuiMs).toBeGreaterThanOrEqual(8 * 30);
  });

  it("async txt2img returns at once and finishes in the background; the same seed gives the same image", async () => {
    const first = await callApi<Submitted>(stack, "/txt2img", {
      body: { stable_diffusion_model: "e2e-a", prompt: "a red fox", seed: 7, steps: 8, width: 256, height: 192 },
      headers: { "request-type": "async" },
    });
    expect(first.status).toBe(202);
    await waitFor(async () => (await resultOf(first.body.taskId)).status === "succeeded", 30_000, "the async task");
    const again = await callApi<Submitted>(stack, "/txt2img", {
      body: { stable_diffusion_model: "e2e-a", prompt: "a red fox", seed: 8, steps: 8, width: 256, height: 192 },
    });
    const [a, b] = await Promise.all([fetchPng((await resultOf(first.body.taskId)).ossUrl[0]!), fetchPng(again.body.ossUrl[0]!)]);
    expect(Buffer.compare(a.data, b.data)).not.toBe(0);
    const sync = await callApi<Submitted>(stack, "/txt2img", {
      body: { stable_diffusion_model: "e2e-a", prompt: "a red fox", seed: 7, steps: 8, width: 256, height: 192 },
    });
    const c = await fetchPng(sync.body.ossUrl[0]!);
    expect(Buffer.compare(a.data, c.data)).toBe(0);
  });

  it("img2img with an uploaded init image derives from it", async () => {
    const upload = await callApi<{ key: string }>(stack, "/uploads", { body: { image: solidPng(128, 128, [230, 20, 20]) } });
    expect(upload.status).toBe(201);
    const { body } = await callApi<Submitted>(stack, "/img2img", {
      body: { stable_diffusion_model: "e2e-a", init_images: [upload.body.key], denoising_strength: 0.3, steps: 6, width: 128, height: 128, seed: 3 },
    });
    expect(body.status).toBe("succeeded");
    const png = await fetchPng(body.ossUrl[0]!);
    let red = 0;
    let blue = 0;
    for (let i = 0; i < png.data.length; i += 4) {
      red += png.data[i]!;
      blue += png.data[i + 2]!;
    }
    expect(red).toBeGreaterThan(blue * 1.5);
  });

  it("extra_images upscales the image", async () => {
    const { body } = await callApi<Submitted>(stack, "/extra_images", {
      body: { stable_diffusion_model: "e2e-a", image: solidPng(64, 48, [10, 200, 10]), upscaling_resize: 2, upscaler_1: "Lanczos" },
    });
    expect(body.status).toBe("succeeded");
    const png = await fetchPng(body.ossUrl[0]!);
    expect([png.width, png.height]).toEqual([128, 96]);
  });

  it("reports progress that moves, with a live preview, while a task runs", async () => {
    const { body } = await callApi<Submitted>(stack, "/txt2img", {
      body: { stable_diffusion_model: "e2e-a", prompt: "slow", steps: 120, width: 128, height: 128 },
      headers: { "request-type": "async" },
    });
    const seen: number[] = [];
    let preview = false;
    await waitFor(
      async () => {
        const p = (await callApi<Progress>(stack, `/tasks/${body.taskId}/progress`)).body;
        if (p.status === "running" && p.progress > 0) seen.push(p.progress);
        preview ||= typeof p.currentImage === "string" && p.currentImage.length > 100;
        return p.status === "succeeded";
      },
      30_000,
      "the slow task",
    );
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(seen[seen.length - 1]!).toBeGreaterThan(seen[0]!);
    expect(preview).toBe(true);
  });

  it("cancels a running task: the node interrupts sd-webui and the task ends cancelled", async () => {
    const { body } = await callApi<Submitted>(stack, "/txt2img", {
      body: { stable_diffusion_model: "e2e-a", prompt: "cancel me", steps: 400, width: 128, height: 128 },
      headers: { "request-type": "async" },
    });
    await waitFor(async () => (await callApi<Progress>(stack, `/tasks/${body.taskId}/progress`)).body.progress > 0, 30_000, "the task to start");
    const cancel = await callApi(stack, `/tasks/${body.taskId}/cancellation`, { method: "POST" });
    expect(cancel.status).toBe(202);
    const started = Date.now();
    await waitFor(async () => (await resultOf(body.taskId)).status === "cancelled", 10_000, "the task to be cancelled", stack.agents[0]);
    expect(Date.now() - started).toBeLessThan(400 * 30);
  });

  it("posts a signed task.ended event to the task's webhook, retrying until the receiver takes it", async () => {
    const received: Array<{ headers: http.IncomingHttpHeaders; body: string; answered: number }> = [];
    const receiver = http.createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        const answered = received.length === 0 ? 503 : 204; // the first delivery fails
        received.push({ headers: req.headers, body, answered });
        res.writeHead(answered).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/sd`;
      const { status, body } = await callApi<Submitted>(stack, "/txt2img", {
        body: { stable_diffusion_model: "e2e-a", prompt: "hooked", steps: 4, width: 64, height: 64 },
        headers: { "request-type": "async", "webhook-url": url },
      });
      expect(status).toBe(202);
      await waitFor(async () => received.some((r) => r.answered === 204), 30_000, "the webhook's second delivery", stack.agents[0]);
      expect(received.map((r) => r.answered)).toEqual([503, 204]);
      const { secret } = (await callApi<{ secret: string }>(stack, "/webhooks/secret")).body;
      for (const { headers, body: raw } of received) {
        // Verified as a Standard Webhooks receiver does: HMAC-SHA256("<id>.<timestamp>.<body>") under the secret's bytes.
        const expected = createHmac("sha256", Buffer.from(secret.slice("whsec_".length), "base64"))
          .update(`${headers["webhook-id"]}.${headers["webhook-timestamp"]}.${raw}`)
          .digest();
        const [version, signature] = String(headers["webhook-signature"]).split(",");
        expect(version).toBe("v1");
        expect(timingSafeEqual(Buffer.from(signature!, "base64"), expected)).toBe(true);
        expect(Math.abs(Date.now() / 1000 - Number(headers["webhook-timestamp"]))).toBeLessThan(60);
      }
      expect(received[0]!.headers["webhook-id"]).toBe(received[1]!.headers["webhook-id"]);
      const event = JSON.parse(received[1]!.body) as { type: string; taskId: string; status: string; ossUrl: string[] };
      expect(event).toMatchObject({ type: "task.ended", taskId: body.taskId, status: "succeeded" });
      expect((await fetchPng(event.ossUrl[0]!)).width).toBe(64);
    } finally {
      receiver.close();
    }
  });
});
