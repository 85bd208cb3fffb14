// Fair share inside a checkpoint queue (issue 14): a key's backlog does not hold up other keys,
// weights split the work, Task-Priority orders only a key's own tasks, higher classes go first,
// an idle key banks no credit, and running limits hold in one queue and across queues.
import { describe, expect, it } from "vitest";
import { UNCONFIGURED_POOL } from "../../src/pools/settings";
import type { CheckpointQueueRpc, QueuedTask, TenantShare } from "../../src/queue/types";
import { call, claim, createKey, createModel, finishTask, json, queuedTask, queueOf, registerNode, submit } from "./helpers";

// No checkpoint: the queue does not report to Fleet, so no node of another test is sent here.
const POOL = { ...UNCONFIGURED_POOL, concurrencyCap: 1000 };
const SHA256 = "0".repeat(64);

let made = 0;
function task(owner: string, options: { priority?: number; tenant?: TenantShare; checkpoint?: string; sha256?: string } = {}): QueuedTask {
  made += 1;
  return queuedTask(`fs-${made}`, owner, { checkpoint: "fs", sha256: SHA256, ...options, payload: { prompt: owner } });
}

const share = (overrides: Partial<TenantShare>): TenantShare => ({ weight: 1, priorityClass: 0, maxRunning: null, ...overrides });

// Typed by its RPC interface, as src/fleet/stub.ts does: the generated stub types lose the payloads.
const rpc = (checkpoint: string) => queueOf(checkpoint) as unknown as CheckpointQueueRpc;

/** A queue driven over RPC, remembering whose each task is. */
function queue(name: string) {
  const stub = rpc(name);
  const ownerOf = new Map<string, string>();
  const leases = new Map<string, string>();
  return {
    stub,
    async enqueue(owner: string, count = 1, options: Parameters<typeof task>[1] = {}): Promise<{ uid: string; queuePosition: number }[]> {
      const out = [];
      for (let i = 0; i < count; i++) {
        const t = task(owner, options);
        ownerOf.set(t.uid, owner);
        out.push({ uid: t.uid, ...(await stub.enqueue(t, POOL)) });
      }
      return out;
    },
    /** Claims `count` tasks and answers their uids in order. */
    async claim(count: number, excludeOwners?: string[]): Promise<string[]> {
      const uids = [];
      for (let i = 0; i < count; i++) {
        const outcome = await stub.claim(`${name}-node`, { excludeOwners });
        if (outcome.outcome !== "claimed") break;
        leases.set(outcome.task.id, outcome.lease.id);
        uids.push(outcome.task.id);
      }
      return uids;
    },
    owners: (uids: string[]) => uids.map((uid) => ownerOf.get(uid)),
    async finish(uid: string): Promise<void> {
      expect(await stub.fail(uid, leases.get(uid)!, { error: "done here", retryable: false })).toEqual({ ok: true, status: "failed" });
    },
  };
}

const countOf = (owners: (string | undefined)[], owner: string) => owners.filter((o) => o === owner).length;

describe("fair share in a checkpoint queue", () => {
  it("serves a key with one task within a round of another key's backlog, and says so in its queue position", async () => {
    const q = queue("fs-backlog");
    await q.enqueue("A", 50);
    const [b] = await q.enqueue("B");
    const [c] = await q.enqueue("C");
    // Active owners when each arrived: A and B, then A, B and C.
    expect(b!.queuePosition).toBeLessThanOrEqual(2);
    expect(c!.queuePosition).toBeLessThanOrEqual(3);
    expect(await q.stub.status(b!.uid)).toMatchObject({ state: "waiting", queuePosition: b!.queuePosition });
    const next = await q.claim(3);
    expect(next).toContain(b!.uid);
    expect(next).toContain(c!.uid);
  });

  it("splits claims by weight (3:1)", async () => {
    const q = queue("fs-weights");
    await q.enqueue("heavy", 40, { tenant: share({ weight: 3 }) });
    await q.enqueue("light", 40, { tenant: share({ weight: 1 }) });
    const owners = q.owners(await q.claim(20));
    expect(countOf(owners, "heavy")).toBeGreaterThanOrEqual(14);
    expect(countOf(owners, "heavy")).toBeLessThanOrEqual(16);
  });

  it("lets Task-Priority reorder only the key's own tasks", async () => {
    const q = queue("fs-priority");
    const [b] = await q.enqueue("B");
    await q.enqueue("A", 5);
    const [urgent] = await q.enqueue("A", 1, { priority: 10 });
    expect(await q.claim(2)).toEqual([b!.uid, urgent!.uid]);
  });

  it("serves a higher priority class before any lower one", async () => {
    const q = queue("fs-class");
    await q.enqueue("low", 3);
    await q.enqueue("high", 2, { tenant: share({ priorityClass: 1 }) });
    expect(q.owners(await q.claim(5))).toEqual(["high", "high", "low", "low", "low"]);
  });

  it("gives a key that was idle its share again, not a burst for the time it was away", async () => {
    const q = queue("fs-idle");
    await q.enqueue("A", 1);
    const [b] = await q.enqueue("B", 1);
    await q.claim(2);
    await q.finish(b!.uid);
    // B is away while A is served alone.
    await q.enqueue("A", 20);
    await q.claim(10);
    await q.enqueue("B", 5);
    const next = q.owners(await q.claim(6));
    expect(countOf(next, "B")).toBeGreaterThanOrEqual(2);
    expect(countOf(next, "B")).toBeLessThanOrEqual(4);
  });

  it("holds a key at its maxRunning in the queue and serves others meanwhile", async () => {
    const q = queue("fs-limit");
    await q.enqueue("A", 5, { tenant: share({ maxRunning: 2 }) });
    await q.enqueue("B", 4);
    const first = await q.claim(6);
    expect(countOf(q.owners(first), "A")).toBe(2);
    const summary = await q.stub.summary();
    expect(summary).toMatchObject({ limitedOwnersRunning: { A: 2 }, limitedOwnersMax: { A: 2 }, waiting: 0, running: 6, arrivals: 9 });
    // With only A's work left, nothing goes out until one of A's tasks ends.
    expect(await q.claim(1)).toEqual([]);
    await q.finish(first.find((uid) => q.owners([uid])[0] === "A")!);
    expect(q.owners(await q.claim(2))).toEqual(["A"]);
  });

  it("holds a key at its maxRunning across checkpoints (Fleet sums what each queue runs)", async () => {
    const { sha256: sha1 } = await createModel("fs-cross-1");
    const { sha256: sha2 } = await createModel("fs-cross-2");
    const node = await createKey("node");
    await registerNode(node, "fs-cross-n1", "fs-cross-1");
    await registerNode(node, "fs-cross-n2", "fs-cross-2");
    await registerNode(node, "fs-cross-n3", "fs-cross-2");
    const limited = { tenant: share({ maxRunning: 1 }) };
    const enqueue = (checkpoint: string, sha256: string, owner: string, options = {}) =>
      rpc(checkpoint).enqueue(task(owner, { checkpoint, sha256, ...options }), { ...POOL, checkpoint });
    await enqueue("fs-cross-1", sha1, "A", limited);
    await enqueue("fs-cross-2", sha2, "A", limited);
    await enqueue("fs-cross-2", sha2, "B");
    expect((await claim(node, "fs-cross-n1"))!.task.payload.prompt).toBe("A");
    // A runs its one task on fs-cross-1: fs-cross-2 hands out B's, then nothing.
    expect((await claim(node, "fs-cross-n2"))!.task.payload.prompt).toBe("B");
    expect(await claim(node, "fs-cross-n3", 200)).toBeNull();
  });

  it("runs a second key's task before the first key's backlog, through the API", async () => {
    await createModel("fs-api");
    const a = await createKey("user", "fs-a");
    const b = await createKey("user", "fs-b");
    const node = await createKey("node");
    await registerNode(node, "fs-api-node", "fs-api");
    for (let i = 0; i < 6; i++) await json(await submit(a, { stable_diffusion_model: "fs-api", prompt: "from A" }), 202);
    const fromB = await json<{ taskId: string }>(await submit(b, { stable_diffusion_model: "fs-api", prompt: "from B" }), 202);
    const progress = await json<{ queuePosition: number }>(await call(`/tasks/${fromB.taskId}/progress`, { token: b }), 200);
    expect(progress.queuePosition).toBeLessThanOrEqual(2);
    const prompts: unknown[] = [];
    for (let i = 0; i < 2; i++) {
      const claimed = (await claim(node, "fs-api-node"))!;
      prompts.push(claimed.task.payload.prompt);
      await finishTask(node, claimed);
    }
    expect(prompts).toContain("from B");
    expect((await json<{ status: string }>(await call(`/tasks/${fromB.taskId}/result`, { token: b }), 200)).status).toBe("succeeded");
  });
});
