// POST /batch_update_sd_resource over many pools: every pool and its queue take the change, and a
// queue that fails is named in the original's failure answer while the others are still updated.
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it, onTestFinished } from "vitest";
import type { PoolSettings } from "../../src/pools/settings";
import type { CheckpointQueue } from "../../src/queue/checkpoint-queue";
import { ADMIN, call, json, queueOf } from "./helpers";

const POOLS = 150;

function queueSettings(checkpoint: string): Promise<PoolSettings> {
  return runInDurableObject(queueOf(checkpoint), (queue: CheckpointQueue) => (queue as unknown as { pool(): PoolSettings }).pool());
}

describe("batch update of many pools", () => {
  it("updates every pool and queue, naming the one whose queue failed", async () => {
    const names = Array.from({ length: POOLS }, (_, i) => `many-${String(i).padStart(3, "0")}`);
    for (const name of names) await json(await call("/models", { token: ADMIN, body: { name } }), 201);
    const broken = names[77]!;
    // Every queue runs this class in the test's isolate: its prototype fails the broken one's configure.
    const restore = await runInDurableObject(queueOf(broken), (queue: CheckpointQueue) => {
      const prototype = Object.getPrototypeOf(queue) as CheckpointQueue;
      const configure = prototype.configure;
      prototype.configure = async function (this: CheckpointQueue, pool: PoolSettings) {
        if (pool.checkpoint === broken) throw new Error("queue unavailable");
        return configure.call(this, pool);
      };
      return () => {
        prototype.configure = configure;
      };
    });
    onTestFinished(restore);

    const res = await call("/batch_update_sd_resource", { token: ADMIN, body: { concurrencyCap: 3, timeout: 90 } });
    const answer = await json<{ status: string; failFuncList: string[]; errMsg: string }>(res, 500);
    expect(answer).toMatchObject({ status: "fail", failFuncList: [broken] });
    expect(answer.errMsg).toContain(broken);

    const listed = await json<{ functions: Array<{ model: string; concurrencyCap: number; timeout: number }> }>(
      await call("/list/sdapi/functions", { token: ADMIN }),
      200,
    );
    const many = listed.functions.filter((f) => f.model.startsWith("many-"));
    expect(many).toHaveLength(POOLS);
    for (const pool of many) expect(pool, pool.model).toMatchObject({ concurrencyCap: 3, timeout: 90 });
    for (const name of names.filter((n) => n !== broken)) expect((await queueSettings(name)).concurrencyCap, name).toBe(3);
  });
});
