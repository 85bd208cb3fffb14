// `npm start`: the whole system on this machine — the Worker on local D1/R2/Durable Objects,
// one gpu-node agent supervising an sd-webui emulator, two demo checkpoints registered, and a
// development admin key and user key printed with a curl that makes an image. Ctrl-C stops
// everything it started (a second Ctrl-C stops at once).
//
// `npm start -- --autoscale` (or SDGATE_AUTOSCALE=1) starts with no node: the local scaler
// (scripts/local-scaler.ts) reads GET /autoscale as KEDA would and starts agents when work
// comes; the fleet lets them go once idle (SDGATE_IDLE_SECONDS, 30 by default here).
import { mkdirSync } from "node:fs";
import path from "node:path";
import { LOCAL_GROUP, startLocalScaler } from "./local-scaler.ts";
import { createKey, DEMO_MODELS, DEV_ADMIN_TOKEN, portIsFree, ROOT, type RunningAgent, registerModels, startAgent, startGateway } from "./local-stack.ts";

const autoscale = process.argv.includes("--autoscale") || process.env.SDGATE_AUTOSCALE === "1";
/** Idle time before the local fleet lets a node go: short, so the shrinking is seen. */
const LOCAL_IDLE_SECONDS = Number(process.env.SDGATE_IDLE_SECONDS ?? 30);

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
const agent: RunningAgent | null = autoscale
  ? null
  : startAgent({
      gateway: gateway.url,
      token: nodeKey,
      nodeId: "local-node-1",
      workDir: path.join(stateDir, "node-1"),
      stdio: "inherit",
      controlnet: true,
    });
const scaler = autoscale
  ? await startLocalScaler({
      gateway: gateway.url,
      scalerKey: await createKey(gateway.url, "scaler", "npm start scaler"),
      nodeKey,
      group: { idleSeconds: LOCAL_IDLE_SECONDS, targetWaitSeconds: 10, bootSeconds: 5 },
      stdio: "inherit",
      onChange: ({ kind, nodeId, nodes }) =>
        console.log(
          `sdgate: ${kind === "started" ? `work waits: starting ${nodeId}` : `${nodeId} left (idle ${LOCAL_IDLE_SECONDS} s)`} — ${nodes} node${nodes === 1 ? "" : "s"}`,
        ),
    })
  : null;
const fleetLine = autoscale
  ? `served by an autoscaled fleet: 0 nodes now, one starts when work waits (GET /autoscale, group ${LOCAL_GROUP})`
  : "served by one gpu-node on the sd-webui emulator";

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
   models    : ${DEMO_MODELS.map((m) => m.name).join(", ")} (${fleetLine})

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
    await Promise.all(agents().map((a) => a.kill()));
    process.exit(130);
  }
  stopping = true;
  firstSignalAt = Date.now();
  console.log("\nsdgate: stopping (Ctrl-C again to stop at once)…");
  await (scaler ? scaler.stop() : agent?.stop());
  await gateway.stop();
  process.exit(0);
}
const agents = () => (scaler ? scaler.agents() : agent ? [agent] : []);
// The agents and their sd-webui run in process groups of their own: never leave them behind,
// however this process ends.
process.on("exit", () => {
  for (const a of agents()) if (a.process.exitCode === null && a.process.signalCode === null) a.killNow();
});
process.on("SIGINT", () => void shutdown());
process.on("SIGTERM", () => void shutdown());
agent?.exited.then((code) => {
  if (!stopping) {
    console.error(`sdgate: the gpu-node agent exited (code ${code}); stopping`);
    void shutdown();
  }
});
