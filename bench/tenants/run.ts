// bench/tenants: many keys sharing one fleet, on the real local stack (the Worker in workerd on
// local D1/R2/Durable Objects, gpu-node agents supervising sd-webui emulators; 127.0.0.1 only).
//
// Key A floods one checkpoint with thousands of async tasks (an admin raised A's limits so the
// flood is admitted); then key B sends one sync request to the same checkpoint and key C one to
// another checkpoint. It prints B's and C's waits against one task's time and one checkpoint
// switch, and A's throughput meanwhile. Fair sharing aims at B within two task times plus one
// switch, C within one switch plus a bounded delay. Each wait is capped (--max-wait-s); at the
// end A's key is revoked, which cancels its remaining tasks (and shows how fast that is).
//
// It prints figures and asserts nothing. Usage:
//   npm run bench:tenants -- [--nodes 1] [--flood 2000] [--steps 10] [--step-ms 100] [--load-ms 5000] [--max-wait-s 150] [--state-dir DIR]
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { DEV_ADMIN_TOKEN, type RunningAgent, registerModels, startAgent, startGateway } from "../../scripts/local-stack.ts";

const { values: args } = parseArgs({
  options: {
    nodes: { type: "string", default: "1" },
    flood: { type: "string", default: "2000" },
    steps: { type: "string", default: "10" },
    "step-ms": { type: "string", default: "100" },
    "load-ms": { type: "string", default: "5000" },
    "max-wait-s": { type: "string", default: "150" },
    submitters: { type: "string", default: "16" },
    "state-dir": { type: "string", default: existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir() },
  },
});
const nodeCount = Number(args.nodes);
const floodCount = Number(args.flood);
const maxWaitMs = Number(args["max-wait-s"]) * 1000;
// What placement is told one task takes: the emulator's sampling time, as an admin would register it.
const inferenceEstimateS = Math.max(0.05, (Number(args.steps) * Number(args["step-ms"])) / 1000);
const FLOODED = "tenants-flooded";
const OTHER = "tenants-other";
const body = (checkpoint: string, prompt: string) => ({ stable_diffusion_model: checkpoint, prompt, steps: Number(args.steps), width: 64, height: 64 });
const fmt = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Result {
  taskId: string;
  status: string;
  timings: Record<string, number>;
}

const stateRoot = mkdtempSync(path.join(args["state-dir"], "sdgate-bench-tenants-"));
const gateway = await startGateway({ persistDir: path.join(stateRoot, "gateway"), vars: { HEARTBEAT_INTERVAL_MS: "2000" }, logLevel: "error" });
const agents: RunningAgent[] = [];

async function api<T>(
  token: string,
  method: string,
  route: string,
  payload?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${gateway.url}${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers },
    body: payload === undefined ? undefined : JSON.stringify(payload),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

async function ok<T>(token: string, method: string, route: string, payload?: unknown, headers: Record<string, string> = {}): Promise<T> {
  const res = await api<T>(token, method, route, payload, headers);
  if (res.status >= 300) throw new Error(`${method} ${route} answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

async function newKey(role: "user" | "node", name: string): Promise<{ id: string; token: string }> {
  return ok<{ id: string; token: string }>(DEV_ADMIN_TOKEN, "POST", "/keys", { name, role });
}

/** A sync request's wait, or null when it had not ended within --max-wait-s (it is then cancelled). */
async function timedSync(token: string, checkpoint: string, prompt: string): Promise<{ waitedMs: number | null; result: Result | null }> {
  const started = performance.now();
  const submitted = await ok<{ taskId: string }>(token, "POST", "/txt2img", body(checkpoint, prompt), { "request-type": "async" });
  for (;;) {
    const result = await ok<Result>(token, "GET", `/tasks/${submitted.taskId}/result`);
    if (result.status !== "waiting" && result.status !== "running") return { waitedMs: performance.now() - started, result };
    if (performance.now() - started > maxWaitMs) {
      const progress = await ok<{ queuePosition?: number }>(token, "GET", `/tasks/${submitted.taskId}/progress`);
      console.log(`  ${prompt}: not done after ${fmt(maxWaitMs)} (queue position ${progress.queuePosition ?? "running"}); cancelled`);
      await api(token, "POST", `/tasks/${submitted.taskId}/cancellation`);
      return { waitedMs: null, result: null };
    }
    await sleep(100);
  }
}

try {
  const [a, b, c, nodeKey] = [
    await newKey("user", "tenant A"),
    await newKey("user", "tenant B"),
    await newKey("user", "tenant C"),
    await newKey("node", "bench node"),
  ];
  await ok(DEV_ADMIN_TOKEN, "PUT", `/keys/${a.id}/limits`, { requestsPerMinute: 1_000_000, maxWaiting: 1_000_000 });
  await registerModels(gateway.url, [
    { name: FLOODED, sizeBytes: 64 * 1024, loadSeconds: Number(args["load-ms"]) / 1000, inferenceSeconds: inferenceEstimateS },
    { name: OTHER, sizeBytes: 64 * 1024, loadSeconds: Number(args["load-ms"]) / 1000, inferenceSeconds: inferenceEstimateS },
  ]);
  for (let i = 0; i < nodeCount; i++) {
    const nodeId = `tenants-${i + 1}`;
    agents.push(
      startAgent({
        gateway: gateway.url,
        token: nodeKey.token,
        nodeId,
        workDir: path.join(stateRoot, nodeId),
        stepMs: Number(args["step-ms"]),
        loadMs: Number(args["load-ms"]),
        logLevel: "warn",
        stdio: "pipe",
      }),
    );
  }
  for (const deadline = Date.now() + 60_000; ; await sleep(200)) {
    const nodes = await ok<Array<{ status: string }>>(DEV_ADMIN_TOKEN, "GET", "/nodes");
    if (nodes.filter((n) => n.status === "idle").length >= nodeCount) break;
    if (Date.now() > deadline) throw new Error("agents did not become idle");
  }

  // One task's time and one switch: C's checkpoint first (a load), then A's (a switch), then warm.
  const switchTask = (await timedSync(c.token, OTHER, "measure switch")).result!;
  await timedSync(a.token, FLOODED, "load the flooded checkpoint");
  const warm: number[] = [];
  for (let i = 0; i < 5; i++) warm.push((await timedSync(a.token, FLOODED, `warm ${i}`)).waitedMs!);
  const taskMs = [...warm].sort((x, y) => x - y)[2]!;
  const switchMs = switchTask.timings.modelMs ?? Number(args["load-ms"]);
  console.log(`\n${nodeCount} node(s), sd-webui emulator ${args.steps} steps × ${args["step-ms"]} ms, checkpoint load ${args["load-ms"]} ms`);
  console.log(`one task (sync, warm, end to end): ${fmt(taskMs)}; one checkpoint switch (node's model time): ${fmt(switchMs)}`);

  // A floods its checkpoint.
  const floodStarted = performance.now();
  let next = 0;
  let refused = 0;
  await Promise.all(
    Array.from({ length: Number(args.submitters) }, async () => {
      while (next < floodCount) {
        next++;
        const res = await api(a.token, "POST", "/txt2img", body(FLOODED, "flood"), { "request-type": "async" });
        if (res.status !== 202) refused++;
      }
    }),
  );
  const floodMs = performance.now() - floodStarted;
  const usageOfA = async () =>
    (await ok<{ usage: Array<{ tasks: number }> }>(DEV_ADMIN_TOKEN, "GET", `/usage?key=${a.id}&from=2000-01-01`)).usage[0]?.tasks ?? 0;
  const doneBefore = await usageOfA();
  const measureFrom = performance.now();
  console.log(`A submitted ${floodCount} async tasks in ${fmt(floodMs)} (${(floodCount / (floodMs / 1000)).toFixed(0)}/s, ${refused} refused)`);

  // B (same checkpoint) and C (another checkpoint) each send one request while A's backlog waits.
  const [bWait, cWait] = await Promise.all([timedSync(b.token, FLOODED, "B on A's checkpoint"), timedSync(c.token, OTHER, "C on another checkpoint")]);
  const doneAfter = await usageOfA();
  const elapsedS = (performance.now() - measureFrom) / 1000;
  const show = (w: number | null) => (w === null ? `> ${fmt(maxWaitMs)}` : fmt(w));
  console.log(`B waited ${show(bWait.waitedMs)}  (target: two task times + one switch = ${fmt(2 * taskMs + switchMs)})`);
  console.log(`C waited ${show(cWait.waitedMs)}  (target: one switch + a bounded delay; one switch = ${fmt(switchMs)})`);
  console.log(
    `A's throughput meanwhile: ${((doneAfter - doneBefore) / elapsedS).toFixed(1)} tasks/s (${doneAfter - doneBefore} tasks in ${elapsedS.toFixed(1)} s)`,
  );

  const revokeStarted = performance.now();
  const revoked = await ok<{ tasks: { cancelled: number; cancelling: number } }>(DEV_ADMIN_TOKEN, "DELETE", `/keys/${a.id}`);
  console.log(
    `revoking A cancelled ${revoked.tasks.cancelled} waiting tasks and stopped ${revoked.tasks.cancelling} running in ${fmt(performance.now() - revokeStarted)}`,
  );
} finally {
  await Promise.all(agents.map((agent) => agent.kill()));
  await gateway.stop();
  rmSync(stateRoot, { recursive: true, force: true });
}
