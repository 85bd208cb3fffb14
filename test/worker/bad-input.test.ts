// Bad input gets a 4xx problem+json that says what is wrong, and leaves nothing behind.
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import app from "../../src/index";
import { call, createKey, createModel, json, largePngBase64 } from "./helpers";

interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance: string;
  errors?: Array<{ path: string; message: string }>;
}

let user: string;
beforeAll(async () => {
  await createModel("bad-model");
  user = await createKey("user");
});

async function nothingStored(): Promise<void> {
  const rows = await env.DB.prepare("SELECT COUNT(*) AS n FROM tasks").first<{ n: number }>();
  expect(rows!.n).toBe(0);
  const inputs = await env.BUCKET.list({ prefix: "inputs/" });
  expect(inputs.objects).toEqual([]);
}

describe("bad submissions", () => {
  it("names each wrongly typed field", async () => {
    const res = await call("/txt2img", { token: user, body: { stable_diffusion_model: "bad-model", steps: "twenty", width: 12.5, prompt: 3 } });
    const body = await json<Problem>(res, 422);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(body.code).toBe("validation_failed");
    expect(body.errors!.map((e) => e.path).sort()).toEqual(["prompt", "steps", "width"]);
    await nothingStored();
  });

  it("answers 404 for an unknown model even with inline images, storing none of them", async () => {
    const body = await json<Problem>(
      await call("/img2img", { token: user, body: { stable_diffusion_model: "no-such-model", init_images: [largePngBase64()] } }),
      404,
    );
    expect(body.code).toBe("model_not_found");
    expect(body.detail).toContain("no-such-model");
    await nothingStored();
  });

  it("requires init images for img2img and an image for extras", async () => {
    const img = await json<Problem>(await call("/img2img", { token: user, body: { stable_diffusion_model: "bad-model" } }), 422);
    expect(img.errors![0]!.path).toBe("init_images");
    const extras = await json<Problem>(await call("/extra_images", { token: user, body: { stable_diffusion_model: "bad-model" } }), 422);
    expect(extras.errors![0]!.path).toBe("image");
    await nothingStored();
  });

  it("refuses malformed JSON, a non-object body, and an undecodable image", async () => {
    const malformed = await call("/txt2img", { token: user, body: "{not json", headers: { "content-type": "application/json" } });
    expect((await json<Problem>(malformed, 400)).code).toBe("malformed_json");
    expect((await call("/txt2img", { token: user, body: [1, 2] })).status).toBe(422);
    const broken = `iVBORw0KGgo${"!".repeat(6000)}`;
    const res = await json<Problem>(await call("/img2img", { token: user, body: { stable_diffusion_model: "bad-model", init_images: [broken] } }), 422);
    expect(res.detail).toContain("base64");
    await nothingStored();
  });

  it("refuses a webhook URL that is not http(s), on both APIs", async () => {
    const headers = { "request-type": "async", "webhook-url": "ftp://example.com/hook" };
    const body = await json<Problem>(await call("/txt2img", { token: user, body: { stable_diffusion_model: "bad-model" }, headers }), 422);
    expect(body.errors!.map((e) => e.path)).toEqual(["webhook-url"]);
    const sdapi = await json<{ detail: Array<{ loc: string[] }> }>(
      await call("/sdapi/v1/txt2img", { token: user, body: { stable_diffusion_model: "bad-model" }, headers }),
      422,
    );
    expect(sdapi.detail[0]!.loc).toEqual(["header", "webhook-url"]);
    await nothingStored();
  });

  it("refuses webhooks to loopback, private, link-local and metadata addresses outside local development", async () => {
    const production = { ...env, ENVIRONMENT: "staging", ADMIN_TOKEN: "a-real-staging-admin-token-12345", SIGNING_SECRET: "a-real-staging-signing-secret-123" };
    const submitTo = async (webhookUrl: string, path = "/txt2img", environment: Env = production) =>
      app.fetch(
        new Request(`http://sdgate.test${path}`, {
          method: "POST",
          headers: { authorization: `Bearer ${user}`, "content-type": "application/json", "request-type": "async", "webhook-url": webhookUrl },
          body: JSON.stringify({ stable_diffusion_model: "bad-model" }),
        }),
        environment,
        createExecutionContext(),
      );
    for (const url of [
      "http://169.254.169.254/latest/meta-data/",
      "http://127.0.0.1:8788/hook",
      "http://0x7f.1/",
      "http://[::ffff:10.0.0.1]/",
      "http://localhost/",
    ]) {
      const body = await json<Problem>(await submitTo(url), 422);
      expect(body.errors!.map((e) => e.path)).toEqual(["webhook-url"]);
      expect(body.detail).toContain("webhook-url");
      expect((await submitTo(url, "/sdapi/v1/txt2img")).status).toBe(422);
    }
    // In local development a receiver on this machine is fine; the metadata address never is.
    expect((await json<Problem>(await submitTo("http://169.254.169.254/", "/txt2img", env), 422)).errors![0]!.path).toBe("webhook-url");
    await nothingStored();
  });

  it("names a missing upload key", async () => {
    const res = await json<Problem>(
      await call("/img2img", { token: user, body: { stable_diffusion_model: "bad-model", init_images: ["inputs/someone/missing.png"] } }),
      422,
    );
    expect(res.code).toBe("validation_failed");
    expect(res.errors![0]).toMatchObject({ path: "init_images.0", message: expect.stringContaining("inputs/someone/missing.png") });
    await nothingStored();
  });

  it("refuses a wrong Request-Type and unknown routes", async () => {
    const res = await json<Problem>(
      await call("/txt2img", { token: user, body: { stable_diffusion_model: "bad-model" }, headers: { "request-type": "later" } }),
      422,
    );
    expect(res.errors![0]!.path).toBe("request-type");
    const missing = await json<Problem>(await call("/no/such/route", { token: user }), 404);
    expect(missing.code).toBe("not_found");
    await nothingStored();
  });

  it("refuses an oversized submission", async () => {
    const res = await call("/txt2img", { token: user, body: { stable_diffusion_model: "bad-model", prompt: "x".repeat(33 * 1024 * 1024) } });
    expect((await json<Problem>(res, 413)).code).toBe("payload_too_large");
    const long = await call("/txt2img", { token: user, body: { stable_diffusion_model: "bad-model", prompt: "x".repeat(600 * 1024) } });
    expect((await json<Problem>(long, 413)).code).toBe("payload_too_large");
    await nothingStored();
  });

  it("refuses oversized uploads and non-images", async () => {
    const huge = new Uint8Array(21 * 1024 * 1024);
    const big = await call("/uploads", { token: user, body: huge, headers: { "content-type": "image/png" } });
    expect(big.status).toBe(413);
    const text = await call("/uploads", { token: user, body: new TextEncoder().encode("hello"), headers: { "content-type": "image/png" } });
    expect((await json<Problem>(text, 415)).code).toBe("unsupported_media_type");
    await nothingStored();
  });
});
