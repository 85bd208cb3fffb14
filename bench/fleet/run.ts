// bench/fleet: what the Fleet and queue Durable Objects cost as the fleet and the backlog grow
// (issue 17). The real Worker runs in workerd on local D1/R2/Durable Objects (scripts/local-stack.ts);
// simulated nodes speak the node protocol over HTTP, with no agent or sd-webui behind them. Three
// runs, measured alternately in --rounds rounds so a busy moment of the shared machine falls on
// all of them alike (after an uncounted warm-up):
//
//   base      1 idle node long-polling, 10 tasks waiting
//   idle      the same queue with --idle-nodes (1,000) idle nodes long-polling /nodes/claim
//   backlog   1 idle node, --backlog (10,000) tasks waiting on a checkpoint of its own
//
// Idle nodes report a GPU class the benchmark's pools do not take, so they wait for work they can
// never get (as nodes of other pools do) and never take the benchmark's tasks. Every node, idle or
// serving, heartbeats as an agent does, at the interval Fleet's last answer told it (Fleet lengthens
// it as the fleet grows), and idle nodes long-poll for as long as the Worker's CLAIM_WAIT_MS (its
// defaults, as deployed); the idle run's extra nodes register before it and deregister after it. Each run measures:
//   submit: --submits async txt2img submissions, --concurrency at a time: submits/s and latency p50
//           (then cancelled, untimed, so each run's backlog stays where it was)
//   claim:  --claims claims by one node that serves the pool (each claimed task is failed at
//           once, and a new one submitted untimed, so the backlog stays where it was): latency p50
// and the idle and backlog runs print their ratios to base. Figures only; nothing is asserted.
// Everything listens on 127.0.0.1; the Worker's process group is stopped at the end.
// Usage:
//   npm run bench:fleet -- [--idle-nodes 1000] [--backlog 10000] [--submits 1000] [--claims 100] [--concurrency 8] [--rounds 5] [--state-dir DIR]
import { setMaxListeners } from "node:events";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { createKey, DEV_ADMIN_TOKEN, registerModels, startGateway } from "../../scripts/local-stack.ts";
import { percentile } from "../placement/metrics.ts";

const { values: args } = parseArgs({
  options: {
    "idle-nodes": { type: "string", default: "1000" },
    backlog: { type: "string", default: "10000" },
    submits: { type: "string", default: "1000" },
    claims: { type: "string", default: "100" },
    concurrency: { type: "string", default: "8" },
    rounds: { type: "string", default: "5" },
    "state-dir": { type: "string", default: existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir() },
  },
});
const IDLE_NODES = Number(args["idle-nodes"]);
const BACKLOG = Number(args.backlog);
const SUBMITS = Number(args.submits);
const CLAIMS = Number(args.claims);
const CONCURRENCY = Number(args.concurrency);
/** Runs alternate in rounds, so a busy moment of the machine falls on all of them alike. */
const ROUNDS = Number(args.rounds);
/** How long the idle nodes get to park their claims (each a placement decision) before a measurement. */
const SETTLE_MS = 10_000;
/** Tasks waiting in the base and idle runs. */
const BASE_WAITING = 10;
/** The GPU class of the nodes that serve the benchmark's pools; idle nodes report another. */
const SERVING_CLASS = "bench-gpu";
/** The agent's longest long poll (gpu-node/agent.ts). */
const MAX_CLAIM_WAIT_MS = 60_000;

const p50 = (values: readonly number[]) =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  );

const stateRoot = mkdtempSync(path.join(args["state-dir"], "sdgate-bench-fleet-"));
const gateway = await startGateway({
  persistDir: path.join(stateRoot, "gateway"),
  // The benchmark's one user key submits far beyond a tenant's default limits (10,000 waiting, hundreds a minute).
  vars: {
    LEASE_MS: "60000",
    DEFAULT_REQUESTS_PER_MINUTE: "1000000",
    DEFAULT_MAX_WAITING_TASKS: "1000000",
  },
  logLevel: "error",
});
/** Ends every idle node's long poll when the benchmark is done. */
const stopPolling = new AbortController();
// Every long poll listens on it (fetch lets go of its listener only when collected).
setMaxListeners(0, stopPolling.signal);

try {
  const userKey = await createKey(gateway.url, "user", "bench fleet user");
  const nodeKey = await createKey(gateway.url, "node", "bench fleet nodes");
  const request = async (
    token: string,
    method: string,
    route: string,
    body?: unknown,
    headers: Record<string, string> = {},
    signal?: AbortSignal,
  ): Promise<Response> =>
    fetch(`${gateway.url}${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  const ok = async <T>(res: Response, what: string): Promise<T> => {
    const text = await res.text();
    if (!res.ok) throw new Error(`${what} answered ${res.status}: ${text.slice(0, 300)}`);
    return (text ? JSON.parse(text) : null) as T;
  };

  /** Runs `count` jobs, `concurrency` at a time; answers each job's latency (ms) and the wall time. */
  const timed = async (count: number, concurrency: number, job: (i: number) => Promise<unknown>) => {
    const latencies: number[] = [];
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count) {
          const i = next++;
          const t = performance.now();
          await job(i);
          latencies.push(performance.now() - t);
        }
      }),
    );
    return { latencies, wallMs: performance.now() - started };
  };

  const submit = (checkpoint: string, i: number) =>
    request(
      userKey,
      "POST",
      "/txt2img",
      { stable_diffusion_model: checkpoint, prompt: `bench ${i}`, steps: 1, width: 64, height: 64 },
      { "request-type": "async" },
    ).then((res) => ok<{ taskId: string }>(res, "submit"));

  const register = (nodeId: string, gpuClass: string, loadedCheckpoint: string | null) =>
    request(nodeKey, "POST", "/nodes/register", {
      nodeId,
      loadedCheckpoint,
      cachedCheckpoints: loadedCheckpoint ? [loadedCheckpoint] : [],
      gpuClass,
      gpuMemoryMb: 24_000,
    }).then((res) => ok<{ heartbeatIntervalMs: number; claimWaitMs: number }>(res, `register ${nodeId}`));

  /**
   * A node as an agent runs it until `signal` aborts: registered, heartbeating at the interval each
   * answer tells it (the first beat at a random point of the first interval, as agents start at
   * different times), and, if `longPolls`, long-polling for work (idle nodes never get any). On
   * abort it deregisters. Without heartbeats Fleet would count a serving node lost, and the tasks
   * left on its checkpoint would become work nobody serves, which placement rightly sends another
   * node to.
   */
  const runNode = async (nodeId: string, gpuClass: string, loadedCheckpoint: string | null, longPolls: boolean, signal: AbortSignal) => {
    const registered = await register(nodeId, gpuClass, loadedCheckpoint);
    const beat = {
      status: "idle",
      currentTaskId: null,
      loadedCheckpoint,
      cachedCheckpoints: loadedCheckpoint ? [loadedCheckpoint] : [],
      gpuClass,
      gpuMemoryMb: 24_000,
    };
    const sleep = (ms: number) =>
      new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          resolve();
        };
        const timer = setTimeout(done, ms);
        signal.addEventListener("abort", done);
      });
    const heartbeats = (async () => {
      await sleep(Math.random() * registered.heartbeatIntervalMs);
      while (!signal.aborted) {
        const res = await request(nodeKey, "POST", `/nodes/${nodeId}/heartbeat`, beat, {}, signal).catch(() => null);
        if (!res) return;
        const answer = await ok<{ heartbeatIntervalMs: number }>(res, `heartbeat ${nodeId}`);
        await sleep(answer.heartbeatIntervalMs);
      }
    })();
    const polls = (async () => {
      const waitMs = Math.min(registered.claimWaitMs, MAX_CLAIM_WAIT_MS);
      while (longPolls && !signal.aborted) {
        const res = await request(nodeKey, "POST", `/nodes/${nodeId}/claim`, { waitMs }, {}, signal).catch(() => null);
        if (!res) return;
        await res.body?.cancel();
        if (res.status !== 204) throw new Error(`idle node ${nodeId} was answered ${res.status}`);
      }
    })();
    const deregister = () => request(nodeKey, "DELETE", `/nodes/${nodeId}`).then((res) => ok(res, `deregister ${nodeId}`));
    return { stopped: Promise.all([heartbeats, polls]).then(deregister) };
  };

  /** Idle nodes (a GPU class no pool takes) until `signal` aborts; answers once all are registered. */
  const startIdleNodes = async (nodeIds: readonly string[], signal: AbortSignal) => {
    const started: Awaited<ReturnType<typeof runNode>>[] = [];
    for (let first = 0; first < nodeIds.length; first += 50)
      started.push(...(await Promise.all(nodeIds.slice(first, first + 50).map((id) => runNode(id, "idle-gpu", null, true, signal)))));
    return { stopped: Promise.all(started.map((n) => n.stopped)) };
  };

  /** A checkpoint whose pool only SERVING_CLASS nodes serve, `waiting` tasks queued, and a node that serves it. */
  const prepare = async (checkpoint: string, waiting: number) => {
    await registerModels(gateway.url, [{ name: checkpoint, sizeBytes: 1024, loadSeconds: 5, inferenceSeconds: 2 }]);
    await ok(
      await request(DEV_ADMIN_TOKEN, "POST", "/batch_update_sd_resource", { models: [checkpoint], instanceType: SERVING_CLASS, concurrencyCap: 10_000 }),
      "pool",
    );
    const seeding = await timed(waiting, 16, (i) => submit(checkpoint, i));
    console.log(`${checkpoint}: ${waiting} tasks queued in ${(seeding.wallMs / 1000).toFixed(1)} s`);
    // It stops with the benchmark, as the Worker does: its deregistration may not get through.
    (await runNode(`worker-${checkpoint}`, SERVING_CLASS, checkpoint, false, stopPolling.signal)).stopped.catch(() => {});
  };

  interface Measured {
    claimLatencies: number[];
    submitLatencies: number[];
    submitWallMs: number;
  }
  const measured = (): Measured => ({ claimLatencies: [], submitLatencies: [], submitWallMs: 0 });

  /** `claims` claims (each task ended and replaced, untimed, so the backlog stays) and `submits` submissions on `checkpoint`. */
  const measure = async (into: Measured, checkpoint: string, claims: number, submits: number) => {
    const worker = `worker-${checkpoint}`;
    for (let i = 0; i < claims; i++) {
      const started = performance.now();
      const res = await request(nodeKey, "POST", `/nodes/${worker}/claim`, { waitMs: 0, loadedCheckpoint: checkpoint, cachedCheckpoints: [checkpoint] });
      const claimed = await ok<{ task: { id: string; model: { name: string } }; lease: { id: string } } | null>(res, "claim");
      into.claimLatencies.push(performance.now() - started);
      if (claimed?.task.model.name !== checkpoint)
        throw new Error(`${worker} got no task of ${checkpoint} (answered ${res.status}: ${claimed ? `a task of ${claimed.task.model.name}` : "none"})`);
      await ok(await request(nodeKey, "POST", `/nodes/tasks/${claimed.task.id}/fail`, { leaseId: claimed.lease.id, error: "bench" }), "fail");
      await submit(checkpoint, -i);
    }
    const taskIds: string[] = [];
    const timing = await timed(submits, CONCURRENCY, async (i) => taskIds.push((await submit(checkpoint, i)).taskId));
    into.submitLatencies.push(...timing.latencies);
    into.submitWallMs += timing.wallMs;
    // Untimed: the measured submissions leave the queue, so each run keeps its backlog.
    await timed(taskIds.length, CONCURRENCY, (i) => request(userKey, "POST", `/tasks/${taskIds[i]}/cancellation`).then((res) => ok(res, "cancel")));
  };

  const figures = (m: Measured) => ({
    submitsPerS: m.submitLatencies.length / (m.submitWallMs / 1000),
    submitP50Ms: p50(m.submitLatencies),
    claimP50Ms: p50(m.claimLatencies),
  });

  const idleIds = Array.from({ length: IDLE_NODES }, (_, i) => `idle-${i}`);
  // One idle node polls throughout: the base runs have 1 node.
  (await startIdleNodes(idleIds.slice(0, 1), stopPolling.signal)).stopped.catch(() => {});
  await prepare("bench-warm-up", BASE_WAITING);
  // The Worker's code is cold at first: a round that is not counted warms it.
  await measure(measured(), "bench-warm-up", CLAIMS / ROUNDS, SUBMITS / ROUNDS);
  await prepare("bench-base", BASE_WAITING);
  await prepare("bench-backlog", BACKLOG);

  const base = measured();
  const backlog = measured();
  const idle = measured();
  const idleRun = async () => {
    const idlePolls = new AbortController();
    setMaxListeners(0, idlePolls.signal);
    const nodes = await startIdleNodes(idleIds.slice(1), idlePolls.signal);
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    await measure(idle, "bench-base", CLAIMS / ROUNDS, SUBMITS / ROUNDS);
    idlePolls.abort();
    // Deregistered, their parked claims end too.
    await nodes.stopped;
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  };
  const runs = [
    () => measure(base, "bench-base", CLAIMS / ROUNDS, SUBMITS / ROUNDS),
    () => measure(backlog, "bench-backlog", CLAIMS / ROUNDS, SUBMITS / ROUNDS),
    idleRun,
  ];
  for (let round = 0; round < ROUNDS; round++) {
    // Each round starts with another run, so none is always first.
    for (let i = 0; i < runs.length; i++) await runs[(round + i) % runs.length]!();
    console.log(`round ${round + 1} of ${ROUNDS} done`);
  }

  const show = (name: string, m: Measured) => {
    const f = figures(m);
    console.log(
      `${name.padEnd(40)} submit ${f.submitsPerS.toFixed(0)}/s, p50 ${f.submitP50Ms.toFixed(1)} ms; claim p50 ${f.claimP50Ms.toFixed(1)} ms (${m.claimLatencies.length} claims, ${m.submitLatencies.length} submits)`,
    );
    return f;
  };
  console.log("");
  const b = show(`base: 1 idle node, ${BASE_WAITING} waiting`, base);
  const i = show(`idle: ${IDLE_NODES} idle nodes, ${BASE_WAITING} waiting`, idle);
  const l = show(`backlog: 1 idle node, ${BACKLOG} waiting`, backlog);
  const ratio = (x: number, y: number) => (x / y).toFixed(2);
  console.log(`\n== ratios to base (targets: idle submit throughput ≥ 0.9×; backlog submit and claim p50 ≤ 1.2×)`);
  console.log(
    `idle:    submit throughput ${ratio(i.submitsPerS, b.submitsPerS)}×, submit p50 ${ratio(i.submitP50Ms, b.submitP50Ms)}×, claim p50 ${ratio(i.claimP50Ms, b.claimP50Ms)}×`,
  );
  console.log(
    `backlog: submit throughput ${ratio(l.submitsPerS, b.submitsPerS)}×, submit p50 ${ratio(l.submitP50Ms, b.submitP50Ms)}×, claim p50 ${ratio(l.claimP50Ms, b.claimP50Ms)}×`,
  );
} finally {
  stopPolling.abort();
  await gateway.stop();
  rmSync(stateRoot, { recursive: true, force: true });
}
