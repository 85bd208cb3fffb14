// `npm start`: the whole system on this machine — the Worker on local D1/R2/Durable Objects,
// one gpu-node agent supervising an sd-webui emulator, two demo checkpoints registered, and a
// development admin key and user key printed with a curl that makes an image. Ctrl-C stops
// everything it started (a second Ctrl-C stops at once).
import { mkdirSync } from "node:fs";
import path from "node:path";
import { createKey, DEMO_MODELS, DEV_ADMIN_TOKEN, portIsFree, ROOT, registerModels, startAgent, startGateway } from "./local-stack.ts";

const port = Number(process.env.SDGATE_PORT ?? 8787);
if (!(await portIsFree(port))) {
  console.error(`sdgate: port ${port} is in use; set SDGATE_PORT (e.g. SDGATE_PORT=8788 npm start)`);
  process.exit(1);
}
const stateDir = path.join(ROOT, ".sdgate");
const persistDir = path.join(stateDir, "state");
mkdirSync(persistDir, { recursive: true });

console.log("sdgate: applying migrations and starting the Worker…");
const gateway = await startGateway({ port, persistDir, logLevel: "warn" });
console.log(`sdgate: Worker on ${gateway.url}; registering demo checkpoints…`);
await registerModels(gateway.url, DEMO_MODELS);
const userKey = await createKey(gateway.url, "user", "npm start user");
const nodeKey = await createKey(gateway.url, "node", "npm start node");
const agent = startAgent({
  gateway: gateway.url,
  token: nodeKey,
  nodeId: "local-node-1",
  workDir: path.join(stateDir, "node-1"),
  stdio: "inherit",
  controlnet: true,
});

const curl = [
  `curl -s ${gateway.url}/txt2img -H "Authorization: Bearer ${userKey}" -H "Content-Type: application/json" \\`,
  `  -d '{"stable_diffusion_model":"demo-v1","prompt":"a lighthouse at dusk","steps":20,"seed":42}' \\`,
  `  | sed -E 's/.*"ossUrl":\\["([^"]+)".*/\\1/' | xargs curl -s -o lighthouse.png && file lighthouse.png`,
].join("\n");
console.log(`
──────────────────────────────────────────────────────────────────────────────
 sdgate is running on ${gateway.url}

   console   : ${gateway.url}/   (sign in with a key below)
   API docs  : ${gateway.url}/docs

   admin key : ${DEV_ADMIN_TOKEN}      (development only)
   user key  : ${userKey}
   models    : ${DEMO_MODELS.map((m) => m.name).join(", ")} (served by one gpu-node on the sd-webui emulator)

 Make an image:

${curl}

 Ctrl-C stops everything.
──────────────────────────────────────────────────────────────────────────────
`);

/** One Ctrl-C reaches us twice (from the terminal and relayed by npm/tsx) within this window. */
const DUPLICATE_SIGNAL_MS = 500;
let stopping = false;
let firstSignalAt = 0;
async function shutdown(): Promise<void> {
  if (stopping) {
    if (Date.now() - firstSignalAt < DUPLICATE_SIGNAL_MS) return;
    await agent.kill();
    process.exit(130);
  }
  stopping = true;
  firstSignalAt = Date.now();
  console.log("\nsdgate: stopping (Ctrl-C again to stop at once)…");
  await agent.stop();
  await gateway.stop();
  process.exit(0);
}
// The agent and its sd-webui run in process groups of their own: never leave them behind,
// however this process ends.
process.on("exit", () => {
  if (agent.process.exitCode === null && agent.process.signalCode === null) agent.killNow();
});
process.on("SIGINT", () => void shutdown());
process.on("SIGTERM", () => void shutdown());
agent.exited.then((code) => {
  if (!stopping) {
    console.error(`sdgate: the gpu-node agent exited (code ${code}); stopping`);
    void shutdown();
  }
});
