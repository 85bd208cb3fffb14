// Fleet through the Worker: placement by what a node says it has loaded, heartbeats that lag a
// switch, lost nodes whose leases are released, and pools' node limits.
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { Fleet } from "../../src/fleet/fleet";
import { HOLDER_GRACE_MS, SPARE_IDLE_MS } from "../../src/fleet/placement";
import type { FleetClaim } from "../../src/fleet/types";
import type { PoolSettings } from "../../src/pools/settings";
import { type ClaimResponse, registerRequestSchema } from "../../src/protocol/node";
import { ADMIN, call, claim, createKey, createModel, finishTask, json, queueOf, registerNode, submit } from "./helpers";

const fleet = () => env.FLEET.get(env.FLEET.idFromName("fleet"));
const nodes = async () => json<Array<{ nodeId: string; status: string; loadedCheckpoint: string | null }>>(await call("/nodes", { token: ADMIN }), 200);
const beat = (loadedCheckpoint: string | null, currentTaskId: string | null) => ({
  status: "busy",
  currentTaskId,
  loadedCheckpoint,
  cachedCheckpoints: [],
  gpuClass: "test-gpu",
  gpuMemoryMb: 24000,
});

// First in the file: no other test's work is left waiting for these nodes to take.
describe("waking parked claims", () => {
  it("wakes only as many parked claims as new work could use: one task, one claim; five tasks, five", async () => {
    await createModel("fl-wake");
    const user = await createKey("user");
    const node = await createKey("node");
    const ids = Array.from({ length: 20 }, (_, i) => `fl-wake-${i}`);
    for (const id of ids) await registerNode(node, id, "fl-wake");
    // Nodes idle for a while: spare already, so a parked claim does not decide again when its node turns spare (SPARE_IDLE_MS).
    await runInDurableObject(fleet(), (f: Fleet) => {
      const nodes = (f as unknown as { nodes: Map<string, { idleSince?: number | null }> }).nodes;
      for (const id of ids) nodes.get(id)!.idleSince = Date.now() - 10 * SPARE_IDLE_MS;
    });
    // Placement views built: one per claim that wakes and decides.
    await runInDurableObject(fleet(), (f: Fleet) => {
      const fleetWithView = f as unknown as { placementView: (...args: unknown[]) => unknown; viewsBuilt: number };
      const build = fleetWithView.placementView;
      fleetWithView.viewsBuilt = 0;
      fleetWithView.placementView = function (this: Fleet, ...args: unknown[]) {
        fleetWithView.viewsBuilt += 1;
        return build.apply(this, args);
      };
    });
    const viewsBuilt = () => runInDurableObject(fleet(), (f: Fleet) => (f as unknown as { viewsBuilt: number }).viewsBuilt);
    const parkedNodes = () => runInDurableObject(fleet(), (f: Fleet) => [...(f as unknown as { wakeClaims: Map<unknown, string> }).wakeClaims.values()]);
    // Long polls that outlast the test: they end when their nodes are removed.
    const answers = new Map<string, ClaimResponse>();
    const claims = ids.map(async (id) => {
      const res = await call(`/nodes/${id}/claim`, { token: node, body: { waitMs: 30_000 } });
      if (res.status === 200) answers.set(id, await json<ClaimResponse>(res));
      else await res.body?.cancel();
    });
    await vi.waitFor(async () => expect((await parkedNodes()).length).toBe(20), { timeout: 2000, interval: 20 });
    const viewsWhileParked = await viewsBuilt();

    await json(await submit(user, { stable_diffusion_model: "fl-wake" }), 202);
    await vi.waitFor(() => expect(answers.size).toBe(1), { timeout: 2000, interval: 20 });
    expect([...answers.values()][0]!.task.model.name).toBe("fl-wake");
    expect(await viewsBuilt()).toBe(viewsWhileParked + 1);
    expect(await parkedNodes()).toHaveLength(19);

    for (let i = 0; i < 5; i++) await json(await submit(user, { stable_diffusion_model: "fl-wake" }), 202);
    await vi.waitFor(() => expect(answers.size).toBe(6), { timeout: 2000, interval: 20 });
    expect([...answers.values()].every((answer) => answer.task.model.name === "fl-wake")).toBe(true);
    expect(await viewsBuilt()).toBe(viewsWhileParked + 6);
    expect(await parkedNodes()).toHaveLength(14);

    for (const answer of answers.values()) await finishTask(node, answer);
    for (const id of ids) await json(await call(`/nodes/${id}`, { method: "DELETE", token: ADMIN }), 200);
    await Promise.all(claims);
    expect(answers.size).toBe(6);
  });

  it("wakes the next parked claim when the one woken first does not take the work", async () => {
    await createModel("fl-pass");
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "fl-pass-frozen", "fl-pass");
    await registerNode(node, "fl-pass-live", "fl-pass");
    const parked = (nodeId: string) =>
      vi.waitFor(
        () =>
          runInDurableObject(fleet(), (f: Fleet) => {
            expect([...(f as unknown as { wakeClaims: Map<unknown, string> }).wakeClaims.values()]).toContain(nodeId);
          }),
        { timeout: 2000, interval: 20 },
      );
    const frozen = claim(node, "fl-pass-frozen", 2000);
    await parked("fl-pass-frozen");
    // The node with the checkpoint loaded, woken first, has since gone silent: it declines.
    await runInDurableObject(fleet(), (f: Fleet) => {
      const base = f.clock;
      f.clock = () => base() + 15_000;
    });
    try {
      const live = claim(node, "fl-pass-live", 2000);
      await parked("fl-pass-live");
      await json(await submit(user, { stable_diffusion_model: "fl-pass" }), 202);
      expect(await frozen).toBeNull();
      const taken = (await live)!;
      expect(taken.task.model.name).toBe("fl-pass");
      await finishTask(node, taken);
    } finally {
      await runInDurableObject(fleet(), (f: Fleet) => {
        f.clock = () => Date.now();
      });
    }
  });

  describe("by GPU kind", () => {
    /**
     * Registers nodes of `gpuClass`, spare already (see the first test), and parks a claim for
     * each straight on Fleet: a long poll far beyond the Worker's cap in these tests
     * (CLAIM_WAIT_MS), so only new work or the node's removal ends it within the test.
     */
    const parkNodes = async (token: string, ids: readonly string[], gpuClass: string) => {
      for (const nodeId of ids)
        await json(
          await call("/nodes/register", { token, body: { nodeId, loadedCheckpoint: null, cachedCheckpoints: [], gpuClass, gpuMemoryMb: 24_000 } }),
          200,
        );
      const keyIds = await runInDurableObject(fleet(), (f: Fleet) => {
        const internals = f as unknown as { nodes: Map<string, { idleSince?: number | null }>; nodeKeys: Map<string, string> };
        for (const id of ids) internals.nodes.get(id)!.idleSince = Date.now() - 10 * SPARE_IDLE_MS;
        return ids.map((id) => internals.nodeKeys.get(id)!);
      });
      const answers = ids.map((nodeId, i) => fleet().claim(nodeId, 30_000, {}, keyIds[i]!));
      await vi.waitFor(
        () =>
          runInDurableObject(fleet(), (f: Fleet) => {
            const parked = [...(f as unknown as { wakeClaims: Map<unknown, string> }).wakeClaims.values()];
            expect(ids.filter((id) => !parked.includes(id))).toEqual([]);
          }),
        { timeout: 2000, interval: 20 },
      );
      return answers;
    };
    const remove = (ids: readonly string[]) => Promise.all(ids.map(async (id) => json(await call(`/nodes/${id}`, { method: "DELETE", token: ADMIN }), 200)));
    const claimedTask = (answer: FleetClaim) => {
      if (answer.outcome !== "claimed") throw new Error(`the claim answered ${answer.outcome}`);
      return answer;
    };

    it("new work looks only at the parked claims of nodes whose GPU may run its pool", async () => {
      await createModel("fl-kind");
      await json(await call("/batch_update_sd_resource", { token: ADMIN, body: { models: ["fl-kind"], instanceType: "fl-kind-gpu" } }), 200);
      const user = await createKey("user");
      const node = await createKey("node");
      const others = Array.from({ length: 30 }, (_, i) => `fl-kind-other-${i}`);
      const otherAnswers = await parkNodes(node, others, "fl-kind-other-gpu");
      const [serving] = await parkNodes(node, ["fl-kind-serving"], "fl-kind-gpu");
      // Counts the lookups of the other nodes' records from now on.
      await runInDurableObject(fleet(), (f: Fleet) => {
        const withCount = f as unknown as { nodes: Map<string, unknown>; otherLookups: number };
        const get = withCount.nodes.get;
        withCount.otherLookups = 0;
        withCount.nodes.get = function (this: Map<string, unknown>, id: string) {
          if (others.includes(id)) withCount.otherLookups += 1;
          return get.call(this, id);
        };
      });

      await json(await submit(user, { stable_diffusion_model: "fl-kind" }), 202);
      const taken = claimedTask(await serving!);
      expect(taken.task.model.name).toBe("fl-kind");
      const otherLookups = await runInDurableObject(fleet(), (f: Fleet) => {
        const withCount = f as unknown as { nodes: Map<string, unknown>; otherLookups: number };
        delete (withCount.nodes as { get?: unknown }).get;
        return withCount.otherLookups;
      });
      expect(otherLookups).toBe(0);

      await finishTask(node, taken);
      await remove([...others, "fl-kind-serving"]);
      expect(await Promise.all(otherAnswers)).toEqual(others.map(() => ({ outcome: "unknown_node" })));
    });

    it("a parked node whose heartbeat reports another GPU is woken by new work its new GPU may run", async () => {
      await createModel("fl-regpu");
      await json(await call("/batch_update_sd_resource", { token: ADMIN, body: { models: ["fl-regpu"], instanceType: "fl-regpu-gpu" } }), 200);
      const user = await createKey("user");
      const node = await createKey("node");
      const [parked] = await parkNodes(node, ["fl-regpu-1"], "fl-regpu-old-gpu");
      let answer: FleetClaim | undefined;
      void parked!.then((a) => {
        answer = a;
      });
      const beat = { status: "idle", currentTaskId: null, loadedCheckpoint: null, cachedCheckpoints: [], gpuClass: "fl-regpu-gpu", gpuMemoryMb: 24_000 };
      await json(await call("/nodes/fl-regpu-1/heartbeat", { token: node, body: beat }), 200);
      await json(await submit(user, { stable_diffusion_model: "fl-regpu" }), 202);
      // Within the test, not at the end of its 30 s long poll.
      await vi.waitFor(() => expect(answer).toMatchObject({ outcome: "claimed", task: { model: { name: "fl-regpu" } } }), { timeout: 2000, interval: 20 });
      await finishTask(node, claimedTask(answer!));
      await remove(["fl-regpu-1"]);
    });
  });
});

/**
 * A checkpoint on a GPU kind of its own (no other test's node takes its work, nor these nodes
 * another's), a node holding its file, a spare node without it, and one task waiting: the spare
 * node, which would download the file, leaves the work to the holder for a while.
 */
async function taskLeftToHolder(checkpoint: string) {
  await createModel(checkpoint);
  const gpuClass = `${checkpoint}-gpu`;
  await json(await call("/batch_update_sd_resource", { token: ADMIN, body: { models: [checkpoint], instanceType: gpuClass } }), 200);
  const user = await createKey("user");
  const node = await createKey("node");
  const register = (nodeId: string, cachedCheckpoints: string[]) =>
    call("/nodes/register", { token: node, body: { nodeId, loadedCheckpoint: null, cachedCheckpoints, gpuClass, gpuMemoryMb: 24_000 } });
  const holder = `${checkpoint}-holder`;
  const asker = `${checkpoint}-asker`;
  await json(await register(holder, [checkpoint]), 200);
  await json(await register(asker, []), 200);
  // Idle a while already (spare): nothing but the file it lacks keeps it from the work.
  const keyId = await runInDurableObject(fleet(), (f: Fleet) => {
    const internals = f as unknown as { nodes: Map<string, { idleSince?: number | null }>; nodeKeys: Map<string, string> };
    internals.nodes.get(asker)!.idleSince = Date.now() - 10 * SPARE_IDLE_MS;
    return internals.nodeKeys.get(asker)!;
  });
  const { taskId } = await json<{ taskId: string }>(await submit(user, { stable_diffusion_model: checkpoint }), 202);
  return { node, asker, gpuClass, taskId, nodeIds: [holder, asker], keyId };
}

/** The node's claim (30 s), once Fleet has parked it unanswered. */
async function parkedClaim(nodeId: string, keyId: string) {
  let answer: Awaited<ReturnType<ReturnType<typeof fleet>["claim"]>> | null = null;
  const claiming = fleet()
    .claim(nodeId, 30_000, {}, keyId)
    .then((a) => (answer = a));
  const parked = () => runInDurableObject(fleet(), (f: Fleet) => [...(f as unknown as { wakeClaims: Map<unknown, string> }).wakeClaims.values()]);
  await vi.waitFor(async () => expect(await parked()).toContain(nodeId), { timeout: 2000, interval: 20 });
  expect(answer).toBeNull();
  return { answer: () => answer, claiming };
}

/** The parked claim gets `taskId` soon, with no other event; then the task ends and the nodes leave. */
async function expectClaimedSoon(setup: Awaited<ReturnType<typeof taskLeftToHolder>>, claim: Awaited<ReturnType<typeof parkedClaim>>) {
  await vi.waitFor(() => expect(claim.answer()).not.toBeNull(), { timeout: 5000, interval: 50 });
  expect(claim.answer()).toMatchObject({ outcome: "claimed", task: { id: setup.taskId } });
  await claim.claiming;
  await finishTask(setup.node, claim.answer() as unknown as ClaimResponse);
  for (const id of setup.nodeIds) await json(await call(`/nodes/${id}`, { method: "DELETE", token: ADMIN }), 200);
}

describe("a parked claim as waiting work ages", () => {
  it("asks placement again when waiting work becomes due: it reaches a parked node with no other event", async () => {
    const setup = await taskLeftToHolder("fl-age");
    // The task has waited a second less than the holder's grace (and the download it would need).
    await vi.waitFor(() =>
      runInDurableObject(fleet(), (f: Fleet) => expect((f as unknown as { queues: Map<string, unknown> }).queues.has("fl-age")).toBe(true)),
    );
    await runInDurableObject(fleet(), (f: Fleet) => {
      const internals = f as unknown as {
        nodes: Map<string, unknown>;
        queues: Map<string, { oldestWaitingAt: number | null }>;
        placementView(node: unknown): { queues: { checkpoint: string; downloadMs: number }[] };
      };
      const { downloadMs } = internals.placementView(internals.nodes.get(setup.asker)).queues.find((q) => q.checkpoint === "fl-age")!;
      internals.queues.get("fl-age")!.oldestWaitingAt = Date.now() - (downloadMs + HOLDER_GRACE_MS - 1000);
    });
    const claim = await parkedClaim(setup.asker, setup.keyId);
    // A second on, the grace is over; no report, no new work: the claim's 30 s are far off.
    await expectClaimedSoon(setup, claim);
  });
});

describe("a parked node whose own files change", () => {
  it("asks placement again when its heartbeat reports a file it lacked (a prefetch landed)", async () => {
    const setup = await taskLeftToHolder("fl-landed");
    const claim = await parkedClaim(setup.asker, setup.keyId);
    const beat = {
      status: "idle",
      currentTaskId: null,
      loadedCheckpoint: null,
      cachedCheckpoints: ["fl-landed"],
      gpuClass: setup.gpuClass,
      gpuMemoryMb: 24_000,
    };
    await json(await call(`/nodes/${setup.asker}/heartbeat`, { token: setup.node, body: beat }), 200);
    await expectClaimedSoon(setup, claim);
  });
});

describe("fleet", () => {
  it("keeps a node on the checkpoint it has loaded while that has work (affinity)", async () => {
    await createModel("fl-a");
    await createModel("fl-b");
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "fl-node-1", null);
    await submit(user, { stable_diffusion_model: "fl-a" });
    await submit(user, { stable_diffusion_model: "fl-b" });
    await submit(user, { stable_diffusion_model: "fl-b" });
    // The node says, as it asks, that it has fl-b loaded: it gets fl-b's work first.
    const first = await json<{ task: { model: { name: string } } }>(
      await call("/nodes/fl-node-1/claim", { token: node, body: { waitMs: 500, loadedCheckpoint: "fl-b", cachedCheckpoints: ["fl-b"] } }),
      200,
    );
    expect(first.task.model.name).toBe("fl-b");
    await finishTask(node, first as never);
    const second = await json<{ task: { model: { name: string } } }>(
      await call("/nodes/fl-node-1/claim", { token: node, body: { waitMs: 500, loadedCheckpoint: "fl-b", cachedCheckpoints: ["fl-b"] } }),
      200,
    );
    expect(second.task.model.name).toBe("fl-b");
    await finishTask(node, second as never);
    const third = await claim(node, "fl-node-1");
    expect(third!.task.model.name).toBe("fl-a");
    await finishTask(node, third!);
  });

  it("does not let a heartbeat sent mid-switch undo where the node was placed", async () => {
    await createModel("fl-c");
    await createModel("fl-d");
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "fl-node-2", "fl-c");
    await submit(user, { stable_diffusion_model: "fl-d" });
    const claimed = (await claim(node, "fl-node-2"))!;
    expect(claimed.task.model.name).toBe("fl-d");
    // Still loading fl-d, the agent reports its old checkpoint with the new task.
    await json(await call("/nodes/fl-node-2/heartbeat", { token: node, body: beat("fl-c", claimed.task.id) }), 200);
    expect((await nodes()).find((n) => n.nodeId === "fl-node-2")!.loadedCheckpoint).toBe("fl-d");
    await finishTask(node, claimed);
  });

  it("marks a silent node lost after two heartbeat intervals and re-queues its task at once", async () => {
    await createModel("fl-e");
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "fl-node-3", "fl-e");
    const { taskId } = await json<{ taskId: string }>(await submit(user, { stable_diffusion_model: "fl-e" }), 202);
    await claim(node, "fl-node-3");
    await runInDurableObject(fleet(), (f: Fleet) => {
      const base = f.clock;
      f.clock = () => base() + 60_000;
    });
    await runDurableObjectAlarm(fleet());
    expect((await nodes()).find((n) => n.nodeId === "fl-node-3")!.status).toBe("lost");
    const result = await json<{ status: string; attempts: number }>(await call(`/tasks/${taskId}/result`, { token: user }), 200);
    expect(result).toMatchObject({ status: "waiting", attempts: 1 });
    expect((await call("/nodes/fl-node-3/claim", { token: node, body: { waitMs: 0 } })).status).toBe(404);
    await call(`/tasks/${taskId}/cancellation`, { token: user, method: "POST" });
    await runInDurableObject(fleet(), (f: Fleet) => {
      f.clock = () => Date.now();
    });
  });

  it("gives nodes two heartbeat intervals after Fleet starts before it counts them lost (heartbeats during an outage were never heard)", async () => {
    const node = await createKey("node");
    await registerNode(node, "fl-outage");
    const heartbeatIntervalMs = 5000; // wrangler.toml
    const statusAfterRestart = await runInDurableObject(fleet(), async (_f: Fleet, state) => {
      // Last heard a minute ago, just before the Worker went down.
      const stored = state.storage.sql.exec<{ data: string }>("SELECT data FROM nodes WHERE node_id = 'fl-outage'").one();
      const record = { ...JSON.parse(stored.data), lastSeenAt: Date.now() - 60_000 };
      state.storage.sql.exec("UPDATE nodes SET data = ? WHERE node_id = 'fl-outage'", JSON.stringify(record));
      const restarted = new Fleet(state, env);
      await restarted.alarm();
      const justStarted = (await restarted.listNodes()).find((n) => n.nodeId === "fl-outage")!.status;
      restarted.clock = () => Date.now() + 2 * heartbeatIntervalMs + 1000;
      await restarted.alarm();
      const later = (await restarted.listNodes()).find((n) => n.nodeId === "fl-outage")!.status;
      return { justStarted, later };
    });
    expect(statusAfterRestart).toEqual({ justStarted: "idle", later: "lost" });
  });

  it("tells nodes a longer heartbeat interval as the fleet grows, and counts a node lost only after two of the intervals it was told", async () => {
    const node = await createKey("node");
    const ids = Array.from({ length: 120 }, (_, i) => `fl-many-${i}`);
    await registerNode(node, ids[0]!);
    // The rest straight through Fleet: 119 requests through the Worker take this suite seconds.
    await runInDurableObject(fleet(), async (f: Fleet) => {
      for (const nodeId of ids.slice(1)) {
        const registered = await f.register(
          registerRequestSchema.parse({ nodeId, loadedCheckpoint: null, cachedCheckpoints: [], gpuClass: "test-gpu", gpuMemoryMb: 24_000 }),
          "fl-many-key",
        );
        expect(registered.outcome).toBe("registered");
      }
    });
    const beat = { status: "idle", currentTaskId: null, loadedCheckpoint: null, cachedCheckpoints: [], gpuClass: "test-gpu", gpuMemoryMb: 24_000 };
    const answer = await json<{ heartbeatIntervalMs: number }>(await call("/nodes/fl-many-0/heartbeat", { token: node, body: beat }), 200);
    const configuredMs = 5000; // wrangler.toml
    // 120 nodes and more: at 5 s they would beat over 20 times a second.
    expect(answer.heartbeatIntervalMs).toBeGreaterThan(configuredMs);
    const statusAfter = (silentMs: number) =>
      runInDurableObject(fleet(), async (f: Fleet) => {
        const base = f.clock;
        f.clock = () => base() + silentMs;
        await f.alarm();
        f.clock = base;
        return (await f.listNodes()).find((n) => n.nodeId === "fl-many-0")!.status;
      });
    expect(await statusAfter(2 * configuredMs + 1000)).toBe("idle");
    expect(await statusAfter(2 * answer.heartbeatIntervalMs + 1000)).toBe("lost");
    await runInDurableObject(fleet(), async (f: Fleet) => {
      for (const nodeId of ids) await f.remove(nodeId);
    });
  });

  it("ends a deregistered node's parked claim at once, not at its timeout", async () => {
    const outcome = await runInDurableObject(fleet(), async (f: Fleet) => {
      const body = registerRequestSchema.parse({
        nodeId: "fl-dereg",
        loadedCheckpoint: null,
        cachedCheckpoints: [],
        gpuClass: "fl-dereg-gpu",
        gpuMemoryMb: 24_000,
      });
      await f.register(body, "fl-dereg-key");
      // A minute's long poll (the Worker caps it at CLAIM_WAIT_MS; this test's cap is shorter).
      const parked = f.claim("fl-dereg", 60_000, {}, "fl-dereg-key");
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await f.deregister("fl-dereg", "fl-dereg-key")).toBe("gone");
      return (await parked).outcome;
    });
    expect(outcome).toBe("unknown_node");
  });

  it("does not hand work to a node that froze while its claim waited; a live node gets it", async () => {
    await createModel("fl-frozen");
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "fl-frozen-1", "fl-frozen");
    const frozen = call("/nodes/fl-frozen-1/claim", { token: node, body: { waitMs: 1000 } });
    await vi.waitFor(() =>
      runInDurableObject(fleet(), (f: Fleet) => {
        const parked = (f as unknown as { wakeClaims: Map<unknown, string> }).wakeClaims;
        if (![...parked.values()].includes("fl-frozen-1")) throw new Error("the claim is not parked yet");
      }),
    );
    // Three heartbeat intervals pass without a word from the node while its claim stays open.
    await runInDurableObject(fleet(), (f: Fleet) => {
      const base = f.clock;
      f.clock = () => base() + 15_000;
    });
    const { taskId } = await json<{ taskId: string }>(await submit(user, { stable_diffusion_model: "fl-frozen" }), 202);
    try {
      expect((await frozen).status).toBe(204);
      await registerNode(node, "fl-frozen-2", "fl-frozen");
      const live = (await claim(node, "fl-frozen-2"))!;
      await finishTask(node, live);
      expect((await json<{ status: string }>(await call(`/tasks/${taskId}/result`, { token: user }), 200)).status).toBe("succeeded");
    } finally {
      await runInDurableObject(fleet(), (f: Fleet) => {
        f.clock = () => Date.now();
      });
    }
  });

  it("stores a node's record again only when its claim says something new, not at every long poll of an idle node", async () => {
    const node = await createKey("node");
    await registerNode(node, "fl-quiet", null);
    const keyId = await runInDurableObject(fleet(), (f: Fleet) => (f as unknown as { nodeKeys: Map<string, string> }).nodeKeys.get("fl-quiet")!);
    // Counts the statements that write Fleet's storage from now on.
    const writes = () =>
      runInDurableObject(fleet(), (f: Fleet) => {
        const metered = f as unknown as { ctx: DurableObjectState; writes?: number };
        const sql = metered.ctx.storage.sql;
        if (metered.writes === undefined) {
          const exec = sql.exec;
          sql.exec = ((query: string, ...bindings: unknown[]) => {
            if (/^\s*(INSERT|UPDATE|DELETE)/i.test(query)) metered.writes! += 1;
            return exec.call(sql, query, ...bindings);
          }) as typeof sql.exec;
        }
        const counted = metered.writes ?? 0;
        metered.writes = 0;
        return counted;
      });
    const lastSeenAt = async () =>
      Date.parse(
        (await json<Array<{ nodeId: string; lastSeenAt: string }>>(await call("/nodes", { token: ADMIN }), 200)).find((n) => n.nodeId === "fl-quiet")!
          .lastSeenAt,
      );
    await writes();
    expect(await fleet().claim("fl-quiet", 0, {}, keyId)).toEqual({ outcome: "none" });
    expect(await writes()).toBeGreaterThan(0); // its first claim: it has booted
    const firstSeen = await lastSeenAt();

    await runInDurableObject(fleet(), (f: Fleet) => {
      const base = f.clock;
      f.clock = () => base() + 5_000;
    });
    try {
      expect(await fleet().claim("fl-quiet", 0, {}, keyId)).toEqual({ outcome: "none" });
      expect(await writes()).toBe(0);
      expect(await lastSeenAt()).toBeGreaterThanOrEqual(firstSeen + 5_000);
      expect(await fleet().claim("fl-quiet", 0, { loadedCheckpoint: "fl-quiet-cp", cachedCheckpoints: ["fl-quiet-cp"] }, keyId)).toEqual({ outcome: "none" });
      expect(await writes()).toBeGreaterThan(0);
    } finally {
      await runInDurableObject(fleet(), (f: Fleet) => {
        f.clock = () => Date.now();
        const metered = f as unknown as { ctx: DurableObjectState; writes?: number };
        delete (metered.ctx.storage.sql as { exec?: unknown }).exec;
        delete metered.writes;
      });
    }
    // A Fleet started afresh on the same storage has the checkpoint the node last said it has.
    const afterRestart = await runInDurableObject(fleet(), async (_f: Fleet, state) =>
      (await new Fleet(state, env).listNodes()).find((n) => n.nodeId === "fl-quiet"),
    );
    expect(afterRestart?.loadedCheckpoint).toBe("fl-quiet-cp");
    await json(await call("/nodes/fl-quiet", { method: "DELETE", token: ADMIN }), 200);
  });

  it("takes a claim without a body (defaults apply)", async () => {
    const node = await createKey("node");
    await registerNode(node, "fl-nobody", null);
    const res = await exports.default.fetch("http://sdgate.test/nodes/fl-nobody/claim", { method: "POST", headers: { authorization: `Bearer ${node}` } });
    expect(res.status).toBe(204);
  });

  it("never puts more nodes on a pool than its maximum", async () => {
    await createModel("fl-max");
    await json(await call("/batch_update_sd_resource", { token: ADMIN, body: { models: ["fl-max"], maxNodes: 1 } }), 200);
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "fl-max-1", null);
    await registerNode(node, "fl-max-2", null);
    for (let i = 0; i < 4; i++) await submit(user, { stable_diffusion_model: "fl-max" });
    const first = (await claim(node, "fl-max-1"))!;
    expect(first.task.model.name).toBe("fl-max");
    expect(await claim(node, "fl-max-2", 300)).toBeNull();
    const list = await json<{ functions: Array<{ model: string; nodes: string[] }> }>(await call("/list/sdapi/functions", { token: ADMIN }), 200);
    expect(list.functions.find((f) => f.model === "fl-max")!.nodes).toEqual(["fl-max-1"]);
  });

  it("fences out an agent process once another registers under its node id", async () => {
    await createModel("fl-twin");
    const user = await createKey("user");
    const node = await createKey("node");
    const register = (instanceId: string) =>
      call("/nodes/register", {
        token: node,
        body: { nodeId: "fl-twin-1", instanceId, loadedCheckpoint: null, cachedCheckpoints: [], gpuClass: "test-gpu", gpuMemoryMb: 24_000 },
      });
    await json(await register("first-process"), 200);
    // The first process is waiting for work when the second registers: its claim ends at once.
    const waiting = call("/nodes/fl-twin-1/claim", { token: node, body: { waitMs: 5000, instanceId: "first-process" } });
    await json(await register("second-process"), 200);
    const fenced = await waiting;
    expect(fenced.status).toBe(409);
    expect(fenced.headers.get("content-type")).toContain("application/problem+json");
    expect((await json<{ code: string }>(fenced)).code).toBe("node_replaced");
    const heartbeat = (instanceId: string) => call("/nodes/fl-twin-1/heartbeat", { token: node, body: { ...beat(null, null), status: "idle", instanceId } });
    expect((await json<{ code: string }>(await heartbeat("first-process"), 409)).code).toBe("node_replaced");
    // The first process leaving does not take the second's registration with it.
    expect((await json<{ code: string }>(await call("/nodes/fl-twin-1?instanceId=first-process", { method: "DELETE", token: node }), 409)).code).toBe(
      "node_replaced",
    );
    await json(await heartbeat("second-process"), 200);
    await submit(user, { stable_diffusion_model: "fl-twin" });
    const claimed = await json<{ task: { model: { name: string } } }>(
      await call("/nodes/fl-twin-1/claim", { token: node, body: { waitMs: 1000, instanceId: "second-process" } }),
      200,
    );
    expect(claimed.task.model.name).toBe("fl-twin");
    await finishTask(node, claimed as never);
    // An agent that does not say which process it is keeps working as before.
    await json(await call("/nodes/fl-twin-1/heartbeat", { token: node, body: { ...beat(null, null), status: "idle" } }), 200);
    await json(await call("/nodes/fl-twin-1?instanceId=second-process", { method: "DELETE", token: node }), 200);
    expect((await nodes()).some((n) => n.nodeId === "fl-twin-1")).toBe(false);
  });

  it("leaves a download to the node that has the file, and stops counting that node once it drops the file or leaves", async () => {
    await createModel("fl-held");
    const user = await createKey("user");
    const node = await createKey("node");
    const register = (nodeId: string, cachedCheckpoints: string[]) =>
      call("/nodes/register", { token: node, body: { nodeId, loadedCheckpoint: null, cachedCheckpoints, gpuClass: "test-gpu", gpuMemoryMb: 24_000 } });
    await json(await register("fl-holder", ["fl-held"]), 200);
    await json(await register("fl-other", []), 200);
    await submit(user, { stable_diffusion_model: "fl-held" });
    // fl-other would download the file that fl-holder has: it waits for fl-holder to come.
    expect(await claim(node, "fl-other", 300)).toBeNull();
    // fl-holder reports that it evicted the file: nobody has it, so fl-other takes the work.
    await json(await call("/nodes/fl-holder/heartbeat", { token: node, body: { ...beat(null, null), status: "idle" } }), 200);
    const first = (await claim(node, "fl-other", 300))!;
    expect(first.task.model.name).toBe("fl-held");
    await finishTask(node, first);
    // fl-other serves fl-held now: a third node does not join it for one task, until fl-other leaves.
    await json(await call("/nodes/fl-holder", { method: "DELETE", token: node }), 200);
    await json(await register("fl-third", []), 200);
    await submit(user, { stable_diffusion_model: "fl-held" });
    expect(await claim(node, "fl-third", 300)).toBeNull();
    await json(await call("/nodes/fl-other", { method: "DELETE", token: node }), 200);
    const second = (await claim(node, "fl-third", 300))!;
    expect(second.task.model.name).toBe("fl-held");
    await finishTask(node, second);
  });

  it("keeps the add-ons each node reports (register, heartbeat, claim) and lists them", async () => {
    const node = await createKey("node");
    const addonsOf = async () =>
      (await json<Array<{ nodeId: string; cachedAddons: string[] }>>(await call("/nodes", { token: ADMIN }), 200)).find((n) => n.nodeId === "fl-addons")!
        .cachedAddons;
    await json(
      await call("/nodes/register", {
        token: node,
        body: { nodeId: "fl-addons", loadedCheckpoint: null, cachedCheckpoints: [], cachedAddons: ["lora-a"], gpuClass: "test-gpu", gpuMemoryMb: 24_000 },
      }),
      200,
    );
    expect(await addonsOf()).toEqual(["lora-a"]);
    await json(
      await call("/nodes/fl-addons/heartbeat", { token: node, body: { ...beat(null, null), status: "idle", cachedAddons: ["lora-a", "vae-b"] } }),
      200,
    );
    expect(await addonsOf()).toEqual(["lora-a", "vae-b"]);
    expect((await call("/nodes/fl-addons/claim", { token: node, body: { waitMs: 0, cachedAddons: ["cn-c"] } })).status).toBe(204);
    expect(await addonsOf()).toEqual(["cn-c"]);
  });

  it("wakes the waiting node that holds the next task's add-ons before one that would download them", async () => {
    await createModel("fl-lora");
    const node = await createKey("node");
    await registerNode(node, "fl-lora-plain", "fl-lora");
    await json(
      await call("/nodes/register", {
        token: node,
        body: {
          nodeId: "fl-lora-holder",
          loadedCheckpoint: "fl-lora",
          cachedCheckpoints: ["fl-lora"],
          cachedAddons: ["lora-x"],
          gpuClass: "test-gpu",
          gpuMemoryMb: 24_000,
        },
      }),
      200,
    );
    // Both wait for work, the one without the LoRA first.
    const asking = (nodeId: string) => call(`/nodes/${nodeId}/claim`, { token: node, body: { waitMs: 3000 } });
    const parked = async (count: number) => {
      for (;;) {
        const n = await runInDurableObject(fleet(), (f: Fleet) => (f as unknown as { wakeClaims: Map<unknown, string> }).wakeClaims.size);
        if (n >= count) return;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };
    const plain = asking("fl-lora-plain");
    await parked(1);
    const holder = asking("fl-lora-holder");
    await parked(2);
    const pool: PoolSettings = {
      checkpoint: "fl-lora",
      concurrencyCap: 10,
      timeoutSeconds: 600,
      extraArgs: "",
      minGpuMemoryMb: 0,
      gpuClass: null,
      minNodes: 0,
      maxNodes: 0,
      loadMs: 5000,
      downloadMs: 30_000,
      inferenceMs: 2000,
    };
    const lora = { name: "lora-x", fileName: "lora-x.safetensors", sha256: "a".repeat(64), sizeBytes: 10, type: "lora" as const, folder: "models/Lora" };
    const model = { name: "fl-lora", fileName: "fl-lora.safetensors", sha256: "b".repeat(64), sizeBytes: 10 };
    await queueOf("fl-lora").enqueue(
      {
        uid: "t_fl_lora_1",
        taskId: "t_fl_lora_1",
        owner: "fl-owner",
        priority: 0,
        claim: {
          id: "t_fl_lora_1",
          kind: "txt2img",
          model,
          vae: null,
          addons: [lora],
          payload: {},
          inputs: [],
          passthrough: null,
          timeoutSeconds: 600,
          keepInterruptedImages: false,
        },
        row: null,
        webhook: null,
      },
      pool,
    );
    const holderAnswer = await json<ClaimResponse>(await holder, 200);
    expect(holderAnswer.task.id).toBe("t_fl_lora_1");
    expect(holderAnswer.task.addons.map((a) => a.name)).toEqual(["lora-x"]);
    expect((await plain).status).toBe(204);
  });

  it("never offers a checkpoint to a node it failed on until its failures are cleared, and remembers them across restarts", async () => {
    await createModel("fl-bad");
    await json(await call("/batch_update_sd_resource", { token: ADMIN, body: { models: ["fl-bad"], instanceType: "fl-bad-gpu" } }), 200);
    const user = await createKey("user");
    const node = await createKey("node");
    const register = (nodeId: string, gpuClass: string) =>
      call("/nodes/register", { token: node, body: { nodeId, loadedCheckpoint: "fl-bad", cachedCheckpoints: ["fl-bad"], gpuClass, gpuMemoryMb: 24_000 } });
    await json(await register("fl-bad-1", "fl-bad-gpu"), 200);
    await json(await register("fl-bad-2", "fl-bad-gpu"), 200);
    await json(await register("fl-bad-other-class", "other-gpu"), 200);

    expect(await fleet().recordModelFailure("fl-bad-1", "fl-bad")).toEqual({ failedNodes: 1, eligibleNodes: 2 });
    expect(await fleet().recordModelFailure("fl-bad-1", "fl-bad")).toEqual({ failedNodes: 1, eligibleNodes: 2 });
    await submit(user, { stable_diffusion_model: "fl-bad" });
    expect(await claim(node, "fl-bad-1", 300)).toBeNull();
    const second = (await claim(node, "fl-bad-2"))!;
    expect(second.task.model.name).toBe("fl-bad");
    await finishTask(node, second);

    // A Fleet started afresh on the same storage still knows fl-bad failed on fl-bad-1.
    const afterRestart = await runInDurableObject(fleet(), (_f: Fleet, state) => new Fleet(state, env).recordModelFailure("fl-bad-2", "fl-bad"));
    expect(afterRestart).toEqual({ failedNodes: 2, eligibleNodes: 2 });

    await fleet().clearModelFailures("fl-bad");
    await submit(user, { stable_diffusion_model: "fl-bad" });
    const again = (await claim(node, "fl-bad-1"))!;
    expect(again.task.model.name).toBe("fl-bad");
    await finishTask(node, again);
    expect(await fleet().recordModelFailure("fl-bad-1", "fl-bad")).toEqual({ failedNodes: 1, eligibleNodes: 2 });
    await fleet().clearModelFailures("fl-bad");
  });
});

describe("node ids belong to the node key that first registered them", () => {
  const registerAs = (token: string, nodeId: string) =>
    call("/nodes/register", { token, body: { nodeId, loadedCheckpoint: null, cachedCheckpoints: [], gpuClass: "test-gpu", gpuMemoryMb: 24_000 } });

  it("another node key can neither register nor deregister the id; after an admin removes the node, any key may take it", async () => {
    const owner = await createKey("node");
    const intruder = await createKey("node");
    await json(await registerAs(owner, "fl-bound-1"), 200);

    const taken = await json<{ code: string; detail: string }>(await registerAs(intruder, "fl-bound-1"), 409);
    expect(taken.code).toBe("node_id_taken");
    expect(taken.detail).toContain("DELETE /nodes/fl-bound-1");
    expect((await json<{ code: string }>(await call("/nodes/fl-bound-1", { method: "DELETE", token: intruder }), 409)).code).toBe("node_id_taken");
    // Nor can it speak for the node: its heartbeats and claims are refused too.
    const intruderBeat = await call("/nodes/fl-bound-1/heartbeat", { token: intruder, body: { ...beat(null, null), status: "idle" } });
    expect((await json<{ code: string }>(intruderBeat, 409)).code).toBe("node_id_taken");
    const intruderClaim = await call("/nodes/fl-bound-1/claim", { token: intruder, body: { waitMs: 0 } });
    expect((await json<{ code: string }>(intruderClaim, 409)).code).toBe("node_id_taken");
    // The owner's agent was not knocked out: its heartbeats still land.
    await json(await call("/nodes/fl-bound-1/heartbeat", { token: owner, body: { ...beat(null, null), status: "idle" } }), 200);
    expect((await nodes()).some((n) => n.nodeId === "fl-bound-1")).toBe(true);

    // The binding outlives the owner leaving, and a restart of Fleet.
    await json(await call("/nodes/fl-bound-1", { method: "DELETE", token: owner }), 200);
    await runInDurableObject(fleet(), async (_f: Fleet, state) => {
      expect((await new Fleet(state, env).register({ nodeId: "fl-bound-1" } as never, "some-other-key")).outcome).toBe("node_id_taken");
    });
    expect((await json<{ code: string }>(await registerAs(intruder, "fl-bound-1"), 409)).code).toBe("node_id_taken");
    await json(await registerAs(owner, "fl-bound-1"), 200);

    await json(await call("/nodes/fl-bound-1", { method: "DELETE", token: ADMIN }), 200);
    expect((await nodes()).some((n) => n.nodeId === "fl-bound-1")).toBe(false);
    await json(await registerAs(intruder, "fl-bound-1"), 200);
    expect((await json<{ code: string }>(await registerAs(owner, "fl-bound-1"), 409)).code).toBe("node_id_taken");
  });

  it("user keys see models without node ids or storage paths; admins see both", async () => {
    await createModel("fl-private");
    const node = await createKey("node");
    await registerNode(node, "fl-private-node", "fl-private");
    const user = await createKey("user");
    for (const seen of [
      await json<Record<string, unknown>>(await call("/models/fl-private", { token: user }), 200),
      (await json<Array<Record<string, unknown>>>(await call("/models", { token: user }), 200)).find((m) => m.name === "fl-private")!,
    ]) {
      expect(seen).toMatchObject({ name: "fl-private", status: "loaded" });
      expect(seen).not.toHaveProperty("nodes");
      expect(seen).not.toHaveProperty("ossPath");
    }
    const admin = await json<{ nodes: string[]; ossPath: string }>(await call("/models/fl-private", { token: ADMIN }), 200);
    expect(admin.nodes).toEqual(["fl-private-node"]);
    expect(admin.ossPath).toContain("fl-private");
  });
});

describe("checkpoints held in RAM", () => {
  it("keeps what a node says sd-webui holds in RAM at register, heartbeat and claim, and lists it", async () => {
    const node = await createKey("node");
    const held = async (nodeId: string) =>
      (await json<Array<{ nodeId: string; ramCheckpoints: string[] }>>(await call("/nodes", { token: ADMIN }), 200)).find((n) => n.nodeId === nodeId)!
        .ramCheckpoints;
    const state = { loadedCheckpoint: "fl-ram-a", cachedCheckpoints: ["fl-ram-a", "fl-ram-b", "fl-ram-c"], gpuClass: "test-gpu", gpuMemoryMb: 24_000 };
    await json(await call("/nodes/register", { token: node, body: { nodeId: "fl-ram", ...state, ramCheckpoints: ["fl-ram-b"] } }), 200);
    expect(await held("fl-ram")).toEqual(["fl-ram-b"]);
    await json(
      await call("/nodes/fl-ram/heartbeat", { token: node, body: { status: "idle", currentTaskId: null, ...state, ramCheckpoints: ["fl-ram-c", "fl-ram-b"] } }),
      200,
    );
    expect(await held("fl-ram")).toEqual(["fl-ram-c", "fl-ram-b"]);
    expect((await call("/nodes/fl-ram/claim", { token: node, body: { waitMs: 0, loadedCheckpoint: "fl-ram-b", ramCheckpoints: ["fl-ram-a"] } })).status).toBe(
      204,
    );
    expect(await held("fl-ram")).toEqual(["fl-ram-a"]);
    // A claim that does not say keeps what the node said last.
    expect((await call("/nodes/fl-ram/claim", { token: node, body: { waitMs: 0 } })).status).toBe(204);
    expect(await held("fl-ram")).toEqual(["fl-ram-a"]);
    // An agent that does not report them holds none.
    await registerNode(node, "fl-ram-old", "fl-ram-a");
    expect(await held("fl-ram-old")).toEqual([]);
  });
});

describe("lost nodes", () => {
  it("an admin removes a lost node; lost nodes drop out of the registry a day after they were last seen", async () => {
    const node = await createKey("node");
    await registerNode(node, "fl-lost-1");
    await registerNode(node, "fl-lost-2");
    await runInDurableObject(fleet(), (f: Fleet) => {
      const base = f.clock;
      f.clock = () => base() + 60_000;
    });
    await runDurableObjectAlarm(fleet());
    expect((await nodes()).filter((n) => n.nodeId.startsWith("fl-lost-")).map((n) => n.status)).toEqual(["lost", "lost"]);

    await json(await call("/nodes/fl-lost-1", { method: "DELETE", token: ADMIN }), 200);
    expect((await nodes()).map((n) => n.nodeId)).not.toContain("fl-lost-1");
    expect((await json<{ code: string }>(await call("/nodes/fl-lost-1", { method: "DELETE", token: ADMIN }), 404)).code).toBe("node_unknown");

    await runInDurableObject(fleet(), (f: Fleet) => {
      f.clock = () => Date.now() + 86_400_000 + 60_000;
    });
    expect((await nodes()).map((n) => n.nodeId)).not.toContain("fl-lost-2");
    await runInDurableObject(fleet(), (f: Fleet) => {
      f.clock = () => Date.now();
    });
    // Its id is still its key's: the agent comes back under it.
    await registerNode(node, "fl-lost-2");
    expect((await nodes()).find((n) => n.nodeId === "fl-lost-2")!.status).toBe("idle");
  });
});

describe("prefetch in the heartbeat's answer", () => {
  it("names files of work with demand that the node lacks, work only nodes like it may run first, and never work it may not run", async () => {
    const xl = await createModel("fl-pre-xl");
    await createModel("fl-pre-any");
    await json(await call("/batch_update_sd_resource", { token: ADMIN, body: { models: ["fl-pre-xl"], instanceType: "fl-pre-big" } }), 200);
    const user = await createKey("user");
    const node = await createKey("node");
    const register = (nodeId: string, gpuClass: string) =>
      call("/nodes/register", { token: node, body: { nodeId, loadedCheckpoint: null, cachedCheckpoints: [], gpuClass, gpuMemoryMb: 24_000 } });
    await json(await register("fl-pre-big", "fl-pre-big"), 200);
    await json(await register("fl-pre-small", "fl-pre-small"), 200);
    const prefetched = async (nodeId: string, cachedCheckpoints: string[]) => {
      const body = { status: "busy", currentTaskId: null, loadedCheckpoint: null, cachedCheckpoints, gpuClass: nodeId, gpuMemoryMb: 24_000 };
      const answer = await json<{ prefetch: Array<{ name: string; sha256: string }> }>(await call(`/nodes/${nodeId}/heartbeat`, { token: node, body }), 200);
      return answer.prefetch.map((f) => [f.name, f.sha256]);
    };
    // Work for both checkpoints: any node may run fl-pre-any, only the big one fl-pre-xl.
    const tasks = [];
    for (const model of ["fl-pre-any", "fl-pre-xl"]) {
      tasks.push((await json<{ taskId: string }>(await submit(user, { stable_diffusion_model: model }), 202)).taskId);
    }
    await vi.waitFor(async () => expect(await prefetched("fl-pre-big", [])).toEqual([["fl-pre-xl", xl.sha256]]), { timeout: 2000, interval: 20 });
    expect((await prefetched("fl-pre-small", [])).map(([name]) => name)).not.toContain("fl-pre-xl");
    // A node still without the file (fetching it, or no room) is not asked for it at every heartbeat.
    expect(await prefetched("fl-pre-big", [])).toEqual([]);
    // Once the file is on its disk the node is not asked for it again, and goes on to work any node may run.
    const next = await prefetched("fl-pre-big", ["fl-pre-xl"]);
    expect(next.map(([name]) => name)).not.toContain("fl-pre-xl");
    expect(next).toHaveLength(1);

    for (const taskId of tasks) await json(await call(`/tasks/${taskId}/cancellation`, { token: user, method: "POST" }), 200);
    for (const id of ["fl-pre-big", "fl-pre-small"]) await json(await call(`/nodes/${id}`, { method: "DELETE", token: ADMIN }), 200);
  });

  it("asks a second node for another file while the first fetches one that no node had", async () => {
    await createModel("fl-spread-a");
    await createModel("fl-spread-b");
    const user = await createKey("user");
    const node = await createKey("node");
    const ids = ["fl-spread-1", "fl-spread-2"];
    for (const nodeId of ids) {
      await json(
        await call("/nodes/register", {
          token: node,
          body: { nodeId, loadedCheckpoint: null, cachedCheckpoints: [], gpuClass: "fl-spread", gpuMemoryMb: 24_000 },
        }),
        200,
      );
    }
    const prefetched = async (nodeId: string, fetchingCheckpoint?: string) => {
      const body = {
        status: "busy",
        currentTaskId: null,
        loadedCheckpoint: null,
        cachedCheckpoints: [],
        gpuClass: "fl-spread",
        gpuMemoryMb: 24_000,
        fetchingCheckpoint,
      };
      const answer = await json<{ prefetch: Array<{ name: string }> }>(await call(`/nodes/${nodeId}/heartbeat`, { token: node, body }), 200);
      return answer.prefetch.map((f) => f.name);
    };
    const tasks = [];
    for (const model of ["fl-spread-a", "fl-spread-b"]) {
      tasks.push((await json<{ taskId: string }>(await submit(user, { stable_diffusion_model: model }), 202)).taskId);
    }
    // Once both queues are known, the second node is not sent after the file the first one fetches.
    let first: string[] = [];
    await vi.waitFor(
      async () => {
        first = await prefetched(ids[0]!);
        const second = await prefetched(ids[1]!);
        expect(first).toHaveLength(1);
        expect(second).toHaveLength(1);
        expect(second).not.toEqual(first);
      },
      { timeout: 5000, interval: 20 },
    );
    // The same while the first node reports the fetch itself.
    await prefetched(ids[0]!, first[0]);
    expect(await prefetched(ids[1]!)).not.toEqual(first);

    for (const taskId of tasks) await json(await call(`/tasks/${taskId}/cancellation`, { token: user, method: "POST" }), 200);
    for (const id of ids) await json(await call(`/nodes/${id}`, { method: "DELETE", token: ADMIN }), 200);
  });
});
