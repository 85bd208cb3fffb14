// `npm run screenshots`: the console's pictures in docs/ (shown in the README), taken in headless
// Chromium on a fresh local stack — the playground after making an image, the gallery, and the
// admin pages for models and nodes.
import { rmSync } from "node:fs";
import path from "node:path";
import { generateInPlayground, openLocalBrowser, signIn } from "./browser.ts";
// @ts-expect-error: a plain .mjs script, shared with scripts/test.mjs
import { ensureChromium } from "./ensure-chromium.mjs";
import { createKey, DEMO_MODELS, DEV_ADMIN_TOKEN, ROOT, registerModels, startAgent, startGateway } from "./local-stack.ts";

const NODE_READY_TIMEOUT_MS = 60_000;

async function waitForIdleNode(gateway: string): Promise<void> {
  const deadline = Date.now() + NODE_READY_TIMEOUT_MS;
  for (;;) {
    const res = await fetch(`${gateway}/nodes`, { headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}` } });
    if (((await res.json()) as Array<{ status: string }>).some((n) => n.status === "idle")) return;
    if (Date.now() > deadline) throw new Error("the node did not register");
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

if (!ensureChromium()) process.exit(1);
const gateway = await startGateway({ logLevel: "error" });
try {
  await registerModels(gateway.url, DEMO_MODELS);
  const agent = startAgent({
    gateway: gateway.url,
    token: await createKey(gateway.url, "node", "screenshots node"),
    nodeId: "local-node-1",
    stepMs: 60,
    stdio: "ignore",
  });
  try {
    await waitForIdleNode(gateway.url);
    const browser = await openLocalBrowser();
    try {
      const { page } = browser;
      const shot = (name: string) => page.screenshot({ path: path.join(ROOT, "docs", name) });
      await signIn(page, gateway.url, DEV_ADMIN_TOKEN);
      for (const prompt of ["a harbour at dawn", "a forest in fog", "a lighthouse at dusk, oil painting"]) await generateInPlayground(page, "demo-v1", prompt);
      await shot("console-playground.png");
      await page.getByRole("link", { name: "My tasks" }).click();
      await page.getByTestId("task-card").nth(2).locator("img").waitFor();
      await page.waitForFunction(() =>
        Array.from(document.querySelectorAll<HTMLImageElement>(".thumb img")).every((img) => img.complete && img.naturalWidth > 0),
      );
      await shot("console-tasks.png");
      await page.getByRole("link", { name: "Admin" }).click();
      await page.getByTestId("model-row").first().waitFor();
      await shot("console-admin-models.png");
      await page.getByRole("link", { name: "nodes" }).click();
      await page.locator("td", { hasText: "local-node-1" }).waitFor();
      await shot("console-admin-nodes.png");
      if (browser.refused.length > 0) throw new Error(`requests left the machine: ${browser.refused.join(", ")}`);
    } finally {
      await browser.close();
    }
  } finally {
    await agent.kill();
  }
} finally {
  await gateway.stop();
  rmSync(gateway.persistDir, { recursive: true, force: true });
}
console.log("Wrote docs/console-playground.png, console-tasks.png, console-admin-models.png and console-admin-nodes.png");
