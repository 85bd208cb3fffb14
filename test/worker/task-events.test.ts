// GET /tasks/{id}/events: the live events of a task a node runs, in order, ending with its result;
// resumable with Last-Event-ID; only for the task's own key.
import { describe, expect, it } from "vitest";
import { call, claim, createKey, createModel, finishTask, json, registerNode, submit } from "./helpers";

interface TaskEvent {
  id: string;
  event: string;
  data: Record<string, unknown>;
}

/** Reads a Server-Sent Events body one event at a time. */
function eventReader(res: Response) {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  return {
    /** The next event, or null once the stream has closed. */
    async next(): Promise<TaskEvent | null> {
      for (;;) {
        const boundary = buffer.indexOf("\n\n");
        if (boundary >= 0) {
          const block = buffer.slice(0, boundary);
          buffer = buffer.slice(boundary + 2);
          const fields = new Map<string, string>();
          for (const line of block.split("\n")) {
            const colon = line.indexOf(":");
            if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trimStart());
          }
          if (!fields.has("data")) continue;
          return { id: fields.get("id") ?? "", event: fields.get("event") ?? "message", data: JSON.parse(fields.get("data")!) };
        }
        const { value, done } = await reader.read();
        if (done) return null;
        buffer += value;
      }
    },
  };
}

async function openEvents(token: string, taskId: string, lastEventId?: string): Promise<Response> {
  return call(`/tasks/${taskId}/events`, { token, headers: lastEventId ? { "last-event-id": lastEventId } : {} });
}

/** A model, a user key and a registered node, and one task of that user waiting for the node. */
async function waitingTask(name: string): Promise<{ user: string; node: string; nodeId: string; taskId: string }> {
  await createModel(name);
  const user = await createKey("user");
  const node = await createKey("node");
  const nodeId = `node-${name}`;
  await registerNode(node, nodeId);
  const { taskId } = await json<{ taskId: string }>(await submit(user, { stable_diffusion_model: name, prompt: "a fox" }), 202);
  return { user, node, nodeId, taskId };
}

describe("task events", () => {
  it("streams queue position, progress with the preview, then the end with the result, and closes", async () => {
    const { user, node, nodeId, taskId } = await waitingTask("events-a");

    const res = await openEvents(user, taskId);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const events = eventReader(res);
    const queued = (await events.next())!;
    expect(queued).toMatchObject({ event: "queued", data: { taskId, status: "waiting", queuePosition: 1 } });

    const claimed = (await claim(node, nodeId))!;
    await json(
      await call(`/nodes/tasks/${claimed.task.id}/progress`, {
        token: node,
        body: { leaseId: claimed.lease.id, progress: 0.3, currentImage: "iVBORw0KGgo=" },
      }),
      200,
    );
    let progress = (await events.next())!;
    // The node's claim may be seen before its first report: a running event without a preview.
    if (progress.data.progress === 0) progress = (await events.next())!;
    expect(progress).toMatchObject({ event: "progress", data: { status: "running", progress: 0.3, currentImage: "iVBORw0KGgo=" } });

    await finishTask(node, claimed);
    const seen = [queued, progress];
    let event = await events.next();
    while (event && event.event !== "end") {
      seen.push(event);
      event = await events.next();
    }
    expect(event).toMatchObject({ event: "end", data: { taskId, status: "succeeded" } });
    expect((event!.data.ossUrl as string[]).length).toBe(1);
    expect(await events.next()).toBeNull();
    const seqs = [...seen, event!].map((e) => Number(e.id.split(":")[0]));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);

    // Polling keeps answering as before.
    expect(await json(await call(`/tasks/${taskId}/result`, { token: user }), 200)).toMatchObject({ status: "succeeded" });
  });

  it("resumes after Last-Event-ID without repeating what was seen, and answers 204 after the end", async () => {
    const { user, node, nodeId, taskId } = await waitingTask("events-b");

    const first = eventReader(await openEvents(user, taskId));
    const queued = (await first.next())!;
    expect(queued.event).toBe("queued");

    const claimed = (await claim(node, nodeId))!;
    await finishTask(node, claimed);
    const resumed = eventReader(await openEvents(user, taskId, queued.id));
    const end = (await resumed.next())!;
    expect(end).toMatchObject({ event: "end", data: { taskId, status: "succeeded" } });
    expect(Number(end.id.split(":")[0])).toBeGreaterThan(Number(queued.id.split(":")[0]));
    expect(await resumed.next()).toBeNull();

    const after = await openEvents(user, taskId, end.id);
    expect(after.status).toBe(204);
    // A fresh connection to an ended task gets just its end.
    const fresh = eventReader(await openEvents(user, taskId));
    expect(await fresh.next()).toMatchObject({ event: "end", data: { status: "succeeded" } });
    expect(await fresh.next()).toBeNull();
  });

  it("a resumed stream of a task still waiting does not repeat its queue position", async () => {
    const { user, node, nodeId, taskId } = await waitingTask("events-c");
    const queued = (await eventReader(await openEvents(user, taskId)).next())!;

    const resumed = eventReader(await openEvents(user, taskId, queued.id));
    const claimed = (await claim(node, nodeId))!;
    await finishTask(node, claimed);
    const events: TaskEvent[] = [];
    for (let e = await resumed.next(); e; e = await resumed.next()) events.push(e);
    expect(events.map((e) => e.event)).not.toContain("queued");
    expect(events.at(-1)).toMatchObject({ event: "end", data: { status: "succeeded" } });
  });

  it("answers 404 for another key's task and 401 without a key", async () => {
    await createModel("events-d");
    const owner = await createKey("user");
    const other = await createKey("user");
    const { taskId } = await json<{ taskId: string }>(await submit(owner, { stable_diffusion_model: "events-d", prompt: "a owl" }), 202);
    const res = await openEvents(other, taskId);
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect((await call(`/tasks/${taskId}/events`)).status).toBe(401);
  });
});
