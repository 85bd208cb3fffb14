// The live events of one task (GET /tasks/{id}/events): `queued` with its queue position while it
// waits, `progress` with the preview while it runs, then `end` with its result, after which the
// stream closes. Fed by the task's queue: its status is polled while the task is live, and
// waitForEnd hears the end the moment it happens.
import type { SSEStreamingApi } from "hono/streaming";
import type { Config } from "../config";
import { findTaskByUid, type TaskRow } from "../db/tasks";
import { queueStub } from "../fleet/stub";
import { END_STATE, type EventCursor, formatEventId, liveState } from "./event-ids";
import { progressView, resultView } from "./views";
import { isLive } from "./wait";

const STATUS_POLL_MS = 400;
/** Longest one waitForEnd call is held before it is made again. */
const END_WAIT_MS = 60_000;
/** A comment this often keeps proxies from closing a stream that has nothing new to say. */
const KEEPALIVE_MS = 15_000;

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function streamTaskEvents(
  stream: SSEStreamingApi,
  env: Env,
  origin: string,
  config: Config,
  task: TaskRow,
  resumeAfter: EventCursor,
): Promise<void> {
  const queue = queueStub(env, task.checkpoint);
  let cursor = resumeAfter;
  let lastWriteAt = Date.now();
  const send = async (event: "queued" | "progress" | "end", state: string, data: unknown) => {
    if (state === cursor.state) return;
    cursor = { seq: cursor.seq + 1, state };
    await stream.writeSSE({ id: formatEventId(cursor), event, data: JSON.stringify(data) });
    lastWriteAt = Date.now();
  };

  let endHeard = false;
  const ending = (async () => {
    while (!stream.aborted && (await queue.waitForEnd(task.uid, END_WAIT_MS)) === "timeout");
    endHeard = true;
  })();

  while (!stream.aborted) {
    const live = endHeard ? null : await queue.status(task.uid);
    if (live) {
      await send(live.state === "waiting" ? "queued" : "progress", liveState(live), progressView(task, live));
    } else {
      // Out of its queue, the task's row is final (the queue writes it before letting go), unless
      // the Worker never finished queueing it (../tasks/unqueued.ts ends those): keep watching.
      const row = (await findTaskByUid(env.DB, task.uid)) ?? task;
      if (!isLive(row)) return send("end", END_STATE, await resultView(origin, config, row));
    }
    if (Date.now() - lastWriteAt >= KEEPALIVE_MS) {
      await stream.write(": keepalive\n\n");
      lastWriteAt = Date.now();
    }
    await (endHeard ? pause(STATUS_POLL_MS) : Promise.race([ending, pause(STATUS_POLL_MS)]));
  }
}
