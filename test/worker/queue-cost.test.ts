// A queue's operations cost the same with 10,000 tasks waiting as with a few (issue 17): they
// read a handful of rows from counters and indexes, never the backlog. Counted, not timed: the
// rows SQLite reads for each operation, summed over its statements.
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { UNCONFIGURED_POOL } from "../../src/pools/settings";
import type { CheckpointQueue } from "../../src/queue/checkpoint-queue";
import { queuedTask, queueOf } from "./helpers";

// No checkpoint: the queue does not report to Fleet.
const POOL = { ...UNCONFIGURED_POOL, concurrencyCap: 1000 };
const BACKLOG = 10_000;
/** Far below the backlog: any operation that scanned it would read at least BACKLOG rows. */
const MOST_ROWS_READ = 100;

const task = (uid: string, owner: string) => queuedTask(uid, owner, { checkpoint: "qc" });

/** Counts the rows every statement of the queue reads from now on. */
function meterRowsRead(queue: CheckpointQueue): () => number {
  const sql = (queue as unknown as { sql: SqlStorage }).sql;
  const exec = sql.exec;
  const cursors: SqlStorageCursor<Record<string, SqlStorageValue>>[] = [];
  sql.exec = ((query: string, ...bindings: unknown[]) => {
    const cursor = exec.call(sql, query, ...bindings);
    cursors.push(cursor);
    return cursor;
  }) as typeof sql.exec;
  return () => {
    const read = cursors.reduce((sum, cursor) => sum + cursor.rowsRead, 0);
    cursors.length = 0;
    return read;
  };
}

describe("queue cost with a long backlog", () => {
  it("reads a bounded number of rows to enqueue, claim, answer status and summarise, with 10,000 tasks waiting", async () => {
    const rowsRead = await runInDurableObject(queueOf("qc-backlog"), async (queue: CheckpointQueue) => {
      for (let i = 0; i < BACKLOG; i++) await queue.enqueue(task(`qc-a-${i}`, "A"), POOL);
      const read = meterRowsRead(queue);
      const measured: Record<string, number> = {};
      await queue.enqueue(task("qc-a-last", "A"), POOL);
      measured.enqueueBehindOwnBacklog = read();
      await queue.enqueue(task("qc-b", "B"), POOL);
      measured.enqueueOtherOwner = read();
      expect(await queue.status("qc-a-last")).toMatchObject({ queuePosition: BACKLOG + 2 });
      measured.statusBehindOwnBacklog = read();
      expect(await queue.status("qc-b")).toMatchObject({ queuePosition: 2 });
      measured.statusOtherOwner = read();
      expect(await queue.summary()).toMatchObject({ waiting: BACKLOG + 2 });
      measured.summary = read();
      const claimed = await queue.claim("qc-node");
      measured.claim = read();
      if (claimed.outcome !== "claimed") throw new Error(`claim answered ${claimed.outcome}`);
      await queue.progress(claimed.task.id, claimed.lease.id, { leaseId: claimed.lease.id, progress: 0.5 });
      measured.progress = read();
      await queue.alarm();
      measured.leaseExpiry = read();
      await queue.cancel("qc-a-5000");
      measured.cancel = read();
      return measured;
    });
    for (const [operation, read] of Object.entries(rowsRead)) expect(read, operation).toBeLessThanOrEqual(MOST_ROWS_READ);
  });
});
