// The console and the API reference in a real browser (Debian's Chromium via playwright-core) on
// the real local stack: a user makes an image and finds it in the gallery; an admin uploads models
// and creates a key; /docs shows every route. No request may leave 127.0.0.1.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import type { Page } from "playwright-core";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { generateInPlayground, type LocalBrowser, openLocalBrowser, signIn } from "../../scripts/browser.ts";
import { DEV_ADMIN_TOKEN } from "../../scripts/local-stack.ts";
import { useStack } from "../e2e/support.ts";

if (!existsSync("/usr/bin/chromium")) throw new Error("The browser tests need Debian's chromium: run `node scripts/ensure-chromium.mjs` (npm test does)");

const stack = useStack(0);
/** What a user would wait for at most on this stack. */
const POLL = { timeout: 20_000 };
let browser: LocalBrowser | undefined;

beforeAll(async () => {
  // Slow enough steps that the task is seen running: 20 steps of 100 ms.
  await stack().addAgent("browser-node", { stepMs: 100 });
}, 60_000);

/** A new browser with an empty profile for each test. */
async function freshPage(): Promise<Page> {
  browser = await openLocalBrowser();
  return browser.page;
}

afterEach(async () => {
  const refused = browser?.refused ?? [];
  await browser?.close();
  browser = undefined;
  expect(refused).toEqual([]);
});

async function adminGet<T>(route: string): Promise<T> {
  const res = await fetch(`${stack().gateway.url}${route}`, { headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}` } });
  return (await res.json()) as T;
}

describe("console in a browser", () => {
  it("signs in, makes an image with live progress and preview, reuses it for img2img and upscale, and opens it from the gallery", async () => {
    const page = await freshPage();
    await signIn(page, stack().gateway.url, stack().userKey);
    const seen = await generateInPlayground(page, "e2e-a", "a lighthouse at dusk");
    expect(seen).toEqual({ sawProgress: true, sawPreview: true });
    const taskId = (await page.locator("a[href^='#/tasks/']").textContent())!;

    // The picture becomes the init image of an img2img task, then is upscaled twice over.
    const taskLink = page.locator("a[href^='#/tasks/']");
    const resultImage = page.getByTestId("result-image");
    await page.getByRole("button", { name: "use as init image" }).click();
    expect(await page.getByRole("tab", { name: "img2img" }).getAttribute("aria-selected")).toBe("true");
    await page.getByRole("img", { name: "Init image" }).waitFor();
    await page.getByRole("button", { name: "Generate" }).click();
    await expect.poll(() => taskLink.textContent(), POLL).not.toBe(taskId);
    const img2imgTaskId = await taskLink.textContent();
    await resultImage.waitFor();
    expect(await page.getByTestId("result").locator(".status").textContent()).toBe("succeeded");

    await page.getByRole("tab", { name: "upscale" }).click();
    await page.getByLabel("Scale", { exact: true }).fill("2");
    await page.getByRole("button", { name: "Generate" }).click();
    await expect.poll(() => taskLink.textContent(), POLL).not.toBe(img2imgTaskId);
    await resultImage.waitFor();
    expect(await page.getByTestId("result").locator(".status").textContent()).toBe("succeeded");
    await expect.poll(() => resultImage.evaluate((img: HTMLImageElement) => img.naturalWidth), POLL).toBe(1024);

    await page.getByRole("link", { name: "My tasks" }).click();
    const card = page.getByTestId("task-card").filter({ has: page.locator(`a[href='#/tasks/${taskId}']`) });
    await expect.poll(() => card.locator(".status").textContent(), POLL).toBe("succeeded");
    await card.locator("a.thumb").click();
    await page.getByTestId("result-image").waitFor();
    expect(await page.getByTestId("result-image").evaluate((img: HTMLImageElement) => img.naturalWidth)).toBe(512);
  });

  it("lets an admin upload models with a progress bar (one request and multipart) and create a key shown once", async () => {
    const page = await freshPage();
    await signIn(page, stack().gateway.url, DEV_ADMIN_TOKEN);
    await page.getByRole("link", { name: "Admin" }).click();
    const upload = page.getByRole("form", { name: "Upload a model" });

    const files = [
      { name: "browser-lora", type: "lora", bytes: Buffer.alloc(64 * 1024, 7), multipart: false },
      { name: "browser-ckpt", type: "checkpoint", bytes: Buffer.alloc(1024 * 1024, 3), multipart: true },
    ];
    for (const file of files) {
      await upload.getByLabel("File").setInputFiles({ name: `${file.name}.safetensors`, mimeType: "application/octet-stream", buffer: file.bytes });
      await upload.getByLabel("Name").fill(file.name);
      await upload.getByLabel("Type").selectOption(file.type);
      if (file.multipart) await upload.getByLabel("multipart").check();
      await upload.getByRole("button", { name: "Upload" }).click();
      await expect.poll(() => page.getByTestId("upload-done").textContent(), POLL).toContain(`Uploaded ${file.name}`);
      expect(await upload.getByRole("progressbar").getAttribute("aria-valuenow")).toBe("100");
      const model = await adminGet<{ sha256: string; sizeBytes: number; type: string }>(`/models/${file.name}`);
      expect(model).toMatchObject({ sha256: createHash("sha256").update(file.bytes).digest("hex"), sizeBytes: file.bytes.length, type: file.type });
      await page.getByTestId("model-row").filter({ hasText: file.name }).waitFor();
    }

    await page.getByRole("link", { name: "keys" }).click();
    const create = page.getByRole("form", { name: "Create a key" });
    await create.getByLabel("Name").fill("browser-made key");
    await create.getByRole("button", { name: "Create key" }).click();
    const token = (await page.getByTestId("new-token").locator("code").textContent())!;
    const works = await fetch(`${stack().gateway.url}/tasks?limit=1`, { headers: { authorization: `Bearer ${token}` } });
    expect(works.status).toBe(200);
    await page.getByTestId("key-row").filter({ hasText: "browser-made key" }).waitFor();
    await page.reload();
    await page.getByTestId("key-row").filter({ hasText: "browser-made key" }).waitFor();
    expect(await page.content()).not.toContain(token);
  });

  it("renders every route of /openapi.json in the API reference at /docs", async () => {
    const doc = await adminGet<{ paths: Record<string, Record<string, unknown>> }>("/openapi.json");
    const documented = Object.entries(doc.paths)
      .flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`))
      .sort();
    const page = await freshPage();
    await page.goto(`${stack().gateway.url}/docs`);
    await page.locator(".opblock").first().waitFor();
    const rendered = await page
      .locator(".opblock-summary")
      .evaluateAll((blocks) =>
        blocks.map((b) => `${b.querySelector(".opblock-summary-method")?.textContent} ${b.querySelector(".opblock-summary-path")?.getAttribute("data-path")}`),
      );
    expect([...new Set(rendered)].sort()).toEqual(documented);
  });
});
