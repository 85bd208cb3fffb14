// bench/e2e: the real stack — the Worker in workerd on local D1/R2/Durable Objects, gpu-node
// agents as processes, each supervising an sd-webui emulator — measured two ways:
//
//  1. trace: a placement trace (bench/placement/traces) replayed with time scaled down, printing
//     the simulator's figures for the real system: makespan, efficiency, switches, waits; then
//     where each side's node time went (./gap.ts), live from the task rows and the agents' logs.
//  2. overhead: the fleet idle, one node with the checkpoint loaded, sequential sync txt2img
//     requests. The gateway's overhead per task is what the client waited minus what sd-webui
//     worked (the node's reported webuiMs); pickup is how long the waiting node took to get
//     newly enqueued work (submitted → claimed).
//
// Local D1, R2 and Durable Objects are SQLite files and blobs that workerd syncs to disk on every
// write; on a virtual machine's disk that costs milliseconds that vary from run to run and that
// the hosted services do not have. The run's state (theirs, and the agents' model caches) goes
// to memory (/dev/shm) unless --state-dir says otherwise.
//
// It prints figures and asserts nothing; SDGATE_BENCH_LOGS=DIR keeps each agent's log there. Usage:
//   npm run bench:e2e -- [--trace zipf] [--nodes 3] [--tasks 120] [--scale 0.1] [--requests 200] [--step-ms 5] [--state-dir DIR]
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { createKey, DEV_ADMIN_TOKEN, type RunningAgent, registerModels, startAgent, startGateway } from "../../scripts/local-stack.ts";
import { SPARE_IDLE_MS } from "../../src/fleet/placement.ts";
import { figures, lowerBound, percentile } from "../placement/metrics.ts";
import { makePolicy, POLICY_NAMES } from "../placement/policies.ts";
import { simulate } from "../placement/simulator.ts";
import { loadTrace, type Trace } from "../placement/trace.ts";
import { accountNodeTime, HANDOFF_MAX_MS, type NodeTimeAccount, type ReplayedTask } from "./gap.ts";

const { values: args } = parseArgs({
  options: {
    trace: { type: "string", default: "zipf" },
    nodes: { type: "string", default: "3" },
    tasks: { type: "string", default: "120" },
    scale: { type: "string", default: "0.1" },
    requests: { type: "string", default: "200" },
    "step-ms": { type: "string", default: "5" },
    "state-dir": { type: "string", default: existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir() },
  },
});
const nodeCount = Number(args.nodes);
const taskCount = Number(args.tasks);
const scale = Number(args.scale);
const stepMs = Number(args["step-ms"]);

/** Nearest-rank percentile of unsorted values (the placement bench's, after sorting). */
const percentileOf = (values: readonly number[], p: number) =>
  percentile(
    [...values].sort((a, b) => a - b),
    p,
  );
const fmt = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(1)} ms`);

interface Result {
  status: string;
  timings: Record<string, number>;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  attempts: number;
}

const stateRoot = mkdtempSync(path.join(args["state-dir"], "sdgate-bench-"));
console.log(`state (local D1, R2, Durable Objects; the agents' model caches) in ${stateRoot}`);
const gateway = await startGateway({
  persistDir: path.join(stateRoot, "gateway"),
  // One user key sends every request: its per-minute limit must not pace the measurement.
  vars: { LEASE_MS: "30000", HEARTBEAT_INTERVAL_MS: "2000", CLAIM_WAIT_MS: "20000", DEFAULT_REQUESTS_PER_MINUTE: "1000000" },
  logLevel: "error",
});
const agents: RunningAgent[] = [];
try {
  const userKey = await createKey(gateway.url, "user", "bench user");
  const nodeKey = await createKey(gateway.url, "node", "bench node");
  const call = async <T>(route: string, init: { body?: unknown; headers?: Record<string, string> } = {}): Promise<T> => {
    const res = await fetch(`${gateway.url}${route}`, {
      method: init.body === undefined ? "GET" : "POST",
      headers: { authorization: `Bearer ${userKey}`, "content-type": "application/json", ...(init.headers ?? {}) },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
    if (!res.ok) throw new Error(`${route} answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as T;
  };

  const trace = await loadTrace(path.join(import.meta.dirname, "..", "placement", "traces", `${args.trace}.json`));
  const used = trace.checkpoints.filter((c) => trace.arrivals.slice(0, taskCount).some((a) => a.checkpoint === c.name));
  // Checkpoint files are small stand-ins; inference estimates are the trace's, scaled. Every
  // emulator loads in the trace's mean load time, scaled, and placement is told that same cost
  // (as the simulator below is), so both decide on the loads the emulators actually take.
  const meanLoadMs = (used.reduce((sum, c) => sum + c.loadMs, 0) / used.length) * scale;
  await registerModels(
    gateway.url,
    used.map((c) => ({ name: c.name, sizeBytes: 64 * 1024, loadSeconds: meanLoadMs / 1000, inferenceSeconds: (c.inferenceMs * scale) / 1000 })),
  );
  const startNodes = async (count: number) => {
    for (let added = 0; added < count; added++) {
      const nodeId = `bench-${agents.length + 1}`;
      agents.push(
        startAgent({
          gateway: gateway.url,
          token: nodeKey,
          nodeId,
          workDir: path.join(stateRoot, nodeId),
          stepMs,
          loadMs: Math.round(meanLoadMs),
          logLevel: "info",
          stdio: "pipe",
          extraArgs: ["--progress-interval-ms", "200"],
        }),
      );
    }
    // Until every agent has asked for work (registered is not enough: its work loop starts after
    // sd-webui is up), and then SPARE_IDLE_MS more, as the simulator's nodes start idle and spare.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const nodes = await fetch(`${gateway.url}/nodes`, { headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}` } }).then(
        (r) => r.json() as Promise<Array<{ status: string; firstClaimAt?: number | null }>>,
      );
      if (nodes.filter((n) => n.status === "idle" && n.firstClaimAt != null).length >= agents.length) break;
      if (Date.now() > deadline) throw new Error("agents did not start asking for work");
      await new Promise((r) => setTimeout(r, 200));
    }
    await new Promise((r) => setTimeout(r, SPARE_IDLE_MS));
  };

  // ---- bench-1 holds the first checkpoint; the trace comes before the overhead run, whose
  // 200 requests on it would read to Fleet as that checkpoint's demand and keep bench-1 there
  // (the simulator replays the trace with no such history).
  await startNodes(1);
  const first = used[0]!.name;
  const body = { stable_diffusion_model: first, prompt: "overhead", steps: 4, width: 64, height: 64 };
  for (let i = 0; i < 3; i++) await call("/txt2img", { body }); // download, load, warm

  // ---- 1. trace replay ----------------------------------------------------------------------
  await startNodes(nodeCount - 1);
  const arrivals = trace.arrivals.slice(0, taskCount);
  const specs = new Map(trace.checkpoints.map((c) => [c.name, c]));
  const t0 = Date.now();
  const baseAt = arrivals[0]!.atMs;
  const submitted: Array<{ taskId: string; index: number }> = [];
  const loadsBefore = agents.map((a) => a.output().split("loading checkpoint").length - 1);
  await Promise.all(
    arrivals.map(async (arrival, index) => {
      const dueMs = (arrival.atMs - baseAt) * scale;
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + dueMs - Date.now())));
      const inferenceMs = (arrival.inferenceMs ?? specs.get(arrival.checkpoint)!.inferenceMs) * scale;
      const steps = Math.max(1, Math.round(inferenceMs / stepMs));
      const answer = await call<{ taskId: string }>("/txt2img", {
        body: { stable_diffusion_model: arrival.checkpoint, prompt: "trace", steps, width: 64, height: 64 },
        headers: { "request-type": "async" },
      });
      submitted.push({ taskId: answer.taskId, index });
    }),
  );
  submitted.sort((a, b) => a.index - b.index);
  const results: Result[] = [];
  for (const { taskId } of submitted) {
    for (;;) {
      const result = await call<Result>(`/tasks/${taskId}/result`);
      if (result.status !== "waiting" && result.status !== "running") {
        results.push(result);
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const makespanMs = Math.max(...results.map((r) => Date.parse(r.finishedAt!))) - t0;
  const waits = results.map((r) => r.timings.queuedMs ?? 0);
  const switches = agents.reduce((sum, a, i) => sum + (a.output().split("loading checkpoint").length - 1 - (loadsBefore[i] ?? 0)), 0);
  const scaledTrace: Trace = {
    ...trace,
    // As live: the first node still has the overhead run's checkpoint loaded, the others are cold.
    nodes: trace.nodes.slice(0, nodeCount).map((n, i) => ({ ...n, loaded: i === 0 ? first : null, cached: i === 0 ? [first] : [] })),
    checkpoints: trace.checkpoints.map((c) => ({ ...c, inferenceMs: c.inferenceMs * scale, loadMs: meanLoadMs, downloadMs: 0 })),
    arrivals: arrivals.map((a) => ({ ...a, atMs: (a.atMs - baseAt) * scale, inferenceMs: a.inferenceMs === undefined ? undefined : a.inferenceMs * scale })),
  };
  const bound = lowerBound(scaledTrace).boundMs;
  const failed = results.filter((r) => r.status !== "succeeded").length;
  console.log(
    `\n== trace ${trace.name}: first ${arrivals.length} arrivals on ${nodeCount} nodes, time × ${scale} (caches cold but ${first} on bench-1; emulator load ${fmt(meanLoadMs)})`,
  );
  console.log(
    `makespan ${fmt(makespanMs)}, lower bound ${fmt(bound)}, efficiency ${(bound / makespanMs).toFixed(2)}, throughput ${(results.length / (makespanMs / 1000)).toFixed(1)} tasks/s`,
  );
  console.log(`switches (checkpoint loads) ${switches}, wait p50 ${fmt(percentileOf(waits, 50))}, p95 ${fmt(percentileOf(waits, 95))}, failed ${failed}`);
  console.log(`the same scaled trace in the simulator (no gateway or agent overheads), for comparison:`);
  for (const policy of POLICY_NAMES) {
    const sim = figures(scaledTrace, simulate(scaledTrace, makePolicy(policy, scaledTrace)));
    console.log(
      `  ${policy.padEnd(8)} makespan ${fmt(sim.makespanMs)}, efficiency ${sim.efficiency.toFixed(2)}, switches ${sim.switches}, wait p50 ${fmt(sim.p50WaitMs)}, p95 ${fmt(sim.p95WaitMs)}`,
    );
  }

  // Where the makespan gap to the simulator's sdgate goes: each side's node time, term by term.
  const nodeOfTask = new Map<string, string>();
  const loadedFor = new Set<string>();
  for (const agent of agents) {
    for (const [, taskId] of agent.output().matchAll(/\/task ([^\]]+)\] running/g)) nodeOfTask.set(taskId!, agent.nodeId);
    for (const [, taskId] of agent.output().matchAll(/\/task ([^\]]+)\] loading checkpoint/g)) loadedFor.add(taskId!);
  }
  const live: ReplayedTask[] = results.map((r, i) => ({
    nodeId: nodeOfTask.get(submitted[i]!.taskId) ?? "?",
    arrivalMs: Date.parse(r.createdAt) - t0,
    claimMs: Date.parse(r.startedAt!) - t0,
    endMs: Date.parse(r.finishedAt!) - t0,
    // Without a load, modelMs is the agent's check that the checkpoint is in place: overhead.
    loadMs: loadedFor.has(submitted[i]!.taskId) ? (r.timings.modelMs ?? 0) : 0,
    inferenceMs: r.timings.webuiMs ?? 0,
  }));
  const simRun = simulate(scaledTrace, makePolicy("sdgate", scaledTrace));
  const simulated: ReplayedTask[] = simRun.tasks.map((t) => ({
    nodeId: t.nodeId!,
    arrivalMs: t.arrivalMs,
    claimMs: t.claimMs!,
    endMs: t.endMs!,
    loadMs: t.startMs! - t.claimMs!,
    inferenceMs: t.inferenceMs,
  }));
  const nodeIds = (tasks: readonly ReplayedTask[]) => [...new Set(tasks.map((t) => t.nodeId))];
  const liveAccount = accountNodeTime(
    live,
    agents.map((a) => a.nodeId),
  );
  const simAccount = accountNodeTime(
    simulated,
    scaledTrace.nodes.map((n) => n.id),
  );
  const rows: Array<[string, (a: NodeTimeAccount) => number]> = [
    ["sd-webui inference", (a) => a.inferenceMs],
    ["checkpoint loads (download + load)", (a) => a.loadMs],
    ["per-task overhead (claim → end − load − inference)", (a) => a.overheadMs],
    [`idle while a task waited: handoffs (≤ ${HANDOFF_MAX_MS} ms)`, (a) => a.handoffMs],
    ["idle while a task waited: holds (longer)", (a) => a.idleWhileWaitingMs - a.handoffMs],
    ["idle with nothing waiting", (a) => a.idleNothingWaitingMs],
  ];
  const s = (ms: number) => `${(ms / 1000).toFixed(2).replace(/^-(0\.00)$/, "$1")} s`.padStart(9);
  const gapMs = liveAccount.makespanMs - simAccount.makespanMs;
  console.log(
    `\nwhere the gap to the simulator's sdgate goes: ${nodeCount} nodes × makespan gap ${fmt(gapMs)} = ${s(nodeCount * gapMs).trim()} of node time (live on ${nodeIds(live).length} nodes)`,
  );
  console.log(`  ${"".padEnd(52)}     live       sim         Δ`);
  for (const [label, term] of rows) {
    console.log(`  ${label.padEnd(52)}${s(term(liveAccount))} ${s(term(simAccount))} ${s(term(liveAccount) - term(simAccount))}`);
  }
  const holds = (a: NodeTimeAccount) => `${a.holdSpellsMs.length} (p50 ${fmt(percentileOf(a.holdSpellsMs, 50))})`;
  const perLoad = (a: NodeTimeAccount) => (a.loads > 0 ? fmt(a.loadMs / a.loads) : "-");
  const overheads = live.map((t) => t.endMs - t.claimMs - t.loadMs - t.inferenceMs);
  const stretch = live.map((t, i) => t.inferenceMs - simulated[i]!.inferenceMs);
  console.log(
    `  loads: live ${liveAccount.loads} × ${perLoad(liveAccount)}, sim ${simAccount.loads} × ${perLoad(simAccount)} (sim switches ${simRun.switches}); handoffs live ${liveAccount.handoffs}, sim ${simAccount.handoffs}; holds live ${holds(liveAccount)}, sim ${holds(simAccount)}; per task, live overhead p50 ${fmt(percentileOf(overheads, 50))}, p95 ${fmt(percentileOf(overheads, 95))}; sd-webui time − trace's inference p50 ${fmt(percentileOf(stretch, 50))}, p95 ${fmt(percentileOf(stretch, 95))}`,
  );
  // ---- 2. overhead ------------------------------------------------------------------------
  const overhead: number[] = [];
  const pickup: number[] = [];
  const webui: number[] = [];
  const phases: Record<string, number[]> = { modelMs: [], runMs: [] };
  for (let i = 0; i < Number(args.requests); i++) {
    const started = performance.now();
    const answer = await call<{ taskId: string }>("/txt2img", { body: { ...body, seed: i } });
    const waited = performance.now() - started;
    const result = await call<Result>(`/tasks/${answer.taskId}/result`);
    overhead.push(waited - result.timings.webuiMs!);
    pickup.push(result.timings.queuedMs!);
    webui.push(result.timings.webuiMs!);
    for (const [phase, list] of Object.entries(phases)) list.push(result.timings[phase] ?? NaN);
  }
  console.log(
    `\n== overhead: ${overhead.length} sequential sync txt2img, the fleet idle (one node with the checkpoint loaded), sd-webui emulator ~${fmt(percentileOf(webui, 50))} per image`,
  );
  console.log(`gateway overhead per task (client wait − sd-webui time): p50 ${fmt(percentileOf(overhead, 50))}, p95 ${fmt(percentileOf(overhead, 95))}`);
  console.log(
    `  where it goes (p50): on the node before sd-webui ${fmt(percentileOf(phases.modelMs!, 50))}, claim → complete ${fmt(percentileOf(phases.runMs!, 50))}`,
  );
  console.log(`waiting node picks up new work (submitted → claimed):   p50 ${fmt(percentileOf(pickup, 50))}, p95 ${fmt(percentileOf(pickup, 95))}`);
} finally {
  if (process.env.SDGATE_BENCH_LOGS) for (const a of agents) writeFileSync(path.join(process.env.SDGATE_BENCH_LOGS, `${a.nodeId}.log`), a.output());
  await Promise.all(agents.map((a) => a.kill()));
  await gateway.stop();
  rmSync(stateRoot, { recursive: true, force: true });
}
