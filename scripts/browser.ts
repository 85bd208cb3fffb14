// Headless Chromium (Debian's, see ensure-chromium.mjs) driven by playwright-core, for the browser
// tests and `npm run screenshots`: launched with no network of its own, every request routed
// through a check that it stays on 127.0.0.1, and the console's common steps.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
// @ts-expect-error: a plain .mjs script, shared with scripts/test.mjs
import { CHROMIUM_PATH } from "./ensure-chromium.mjs";

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface LocalBrowser {
  context: BrowserContext;
  page: Page;
  /** Requests that tried to leave 127.0.0.1 (refused). */
  refused: string[];
  close(): Promise<void>;
}

/**
 * Chromium on a new empty profile (its --user-data-dir, removed on close), whose requests may
 * only reach 127.0.0.1: any other is refused and listed.
 */
export async function openLocalBrowser(): Promise<LocalBrowser> {
  const profile = mkdtempSync(path.join(os.tmpdir(), "sdgate-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH as string,
    args: CHROMIUM_ARGS,
    headless: true,
    viewport: { width: 1280, height: 860 },
  });
  const refused: string[] = [];
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === "127.0.0.1") return route.continue();
    refused.push(url.href);
    return route.abort("blockedbyclient");
  });
  return {
    context,
    page: context.pages()[0] ?? (await context.newPage()),
    refused,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export async function signIn(page: Page, origin: string, key: string): Promise<void> {
  await page.goto(`${origin}/`);
  await page.getByLabel("API key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("link", { name: "Playground" }).waitFor();
}

/** Makes an image in the playground; answers whether the live progress bar was seen meanwhile. */
export async function generateInPlayground(page: Page, checkpoint: string, prompt: string): Promise<{ sawProgress: boolean; sawPreview: boolean }> {
  await page.getByLabel("Checkpoint").selectOption(checkpoint);
  await page.getByLabel("Prompt", { exact: true }).fill(prompt);
  await page.getByLabel("Seed (-1: random)").fill("1234");
  await page.getByRole("button", { name: "Generate" }).click();
  const progress = page.getByRole("progressbar", { name: "Generating" });
  const sawProgress = await progress.waitFor({ timeout: 20_000 }).then(
    () => true,
    () => false,
  );
  const sawPreview = await page
    .getByTestId("preview")
    .waitFor({ timeout: 10_000 })
    .then(
      () => true,
      () => false,
    );
  await page.getByTestId("result-image").first().waitFor({ timeout: 30_000 });
  await page.waitForFunction(() => Array.from(document.querySelectorAll<HTMLImageElement>("[data-testid=result-image]")).every((img) => img.naturalWidth > 0));
  return { sawProgress, sawPreview };
}
