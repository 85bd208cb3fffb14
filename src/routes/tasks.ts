// The caller's tasks: result, progress, cancellation and a cursor-paged listing. A key only ever
// sees its own tasks: every lookup is by (owner, taskId).
import { createRoute } from "@hono/zod-openapi";
import { streamSSE } from "hono/streaming";
import { z } from "zod";
import { requireRole } from "../auth/middleware";
import { TASK_STATUSES } from "../db/schema";
import { findTask, findTaskByUid, listTasks, type TaskRow } from "../db/tasks";
import { ApiError } from "../errors";
import { queueStub } from "../fleet/stub";
import type { LiveStatus } from "../queue/types";
import { END_STATE, parseEventId } from "../tasks/event-ids";
import { streamTaskEvents } from "../tasks/event-stream";
import { liveStatus } from "../tasks/live-status";
import { expireTaskObjects } from "../tasks/task-objects";
import { progressView, resultView } from "../tasks/views";
import { isLive } from "../tasks/wait";
import { bearerSecurity, jsonContent, openApiApp, problemResponses } from "./openapi-app";
import { decodeCursor, encodeCursor } from "./page-cursor";

const taskIdParam = z.object({ taskId: z.string().min(1).max(128) });

async function ownTask(db: D1Database, owner: string, taskId: string): Promise<TaskRow> {
  const task = await findTask(db, owner, taskId);
  if (!task) throw new ApiError("task_not_found", `You have no task ${JSON.stringify(taskId)}`);
  return task;
}

/**
 * The caller's task as it stands. D1 follows the queue a moment behind, so a row that still
 * looks live is checked with its queue, which first brings the row up to date; when the two
 * disagree (the task was claimed, retried or ended meanwhile), the row is read again.
 */
async function currentTask(env: Env, owner: string, taskId: string): Promise<{ task: TaskRow; live: LiveStatus | null }> {
  const task = await ownTask(env.DB, owner, taskId);
  const live = await liveStatus(env, task);
  if (!isLive(task) || (live?.state === task.status && live.attempts === task.attempts)) return { task, live };
  return { task: (await findTaskByUid(env.DB, task.uid)) ?? task, live };
}

const resultSchema = z
  .object({
    taskId: z.string(),
    status: z.enum(TASK_STATUSES),
    images: z.array(z.string()).describe("R2 keys of the output images"),
    ossUrl: z.array(z.string()).describe("Signed, expiring URLs of the images, fresh on every read"),
    imagesExpiredAt: z.string().nullable().describe("When the images and inputs were removed (retention, or DELETE /tasks/{taskId}); none are listed after"),
    parameters: z.record(z.string(), z.unknown()),
    info: z.unknown(),
    result: z.object({ status: z.number(), body: z.unknown() }).optional().describe("Passthrough tasks: the node's answer"),
    message: z.string().optional(),
    checkpoint: z.string(),
    attempts: z.number().int(),
    timings: z.record(z.string(), z.number()).describe("queuedMs (submitted → claimed), runMs (claimed → ended), and the node's modelMs and webuiMs"),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
  })
  .openapi("TaskResultResponse");

const progressSchema = z
  .object({
    taskId: z.string(),
    status: z.string(),
    progress: z.number(),
    etaRelative: z.number(),
    state: z.record(z.string(), z.unknown()),
    currentImage: z.string().nullable(),
    queuePosition: z.number().int().optional().describe("While waiting: 1 means next in line"),
    attempts: z.number().int(),
    message: z.string().optional(),
  })
  .openapi("TaskProgressResponse");

const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().optional().describe("`nextCursor` of the previous page"),
  status: z.enum(TASK_STATUSES).optional(),
});

export const taskRoutes = openApiApp();
const user = [requireRole("user")];

taskRoutes.openapi(
  createRoute({
    method: "get",
    path: "/tasks/{taskId}/result",
    summary: "A task's result",
    tags: ["tasks"],
    security: bearerSecurity,
    middleware: user,
    request: { params: taskIdParam },
    responses: { 200: jsonContent(resultSchema, "The task as it stands"), ...problemResponses },
  }),
  async (c) => {
    const { task } = await currentTask(c.env, c.get("caller").owner, c.req.valid("param").taskId);
    return c.json(await resultView(new URL(c.req.url).origin, c.get("config"), task), 200);
  },
);

taskRoutes.openapi(
  createRoute({
    method: "get",
    path: "/tasks/{taskId}/progress",
    summary: "A task's progress, and its queue position while waiting",
    tags: ["tasks"],
    security: bearerSecurity,
    middleware: user,
    request: { params: taskIdParam },
    responses: { 200: jsonContent(progressSchema, "Progress"), ...problemResponses },
  }),
  async (c) => {
    const { task, live } = await currentTask(c.env, c.get("caller").owner, c.req.valid("param").taskId);
    return c.json(progressView(task, live), 200);
  },
);

taskRoutes.openapi(
  createRoute({
    method: "get",
    path: "/tasks/{taskId}/events",
    summary: "A task's live events (Server-Sent Events): queue position, progress with preview, then its end",
    description:
      "`event: queued` (data as `/progress` while waiting, with `queuePosition`), `event: progress` (as `/progress` while running, `currentImage` the preview), then `event: end` (data as `/result`) and the stream closes. Event ids let a reconnect resume: send the last one seen as `Last-Event-ID` and the stream skips what it already told; after the end it answers 204.",
    tags: ["tasks"],
    security: bearerSecurity,
    middleware: user,
    request: { params: taskIdParam, headers: z.object({ "last-event-id": z.string().optional().describe("The id of the last event seen") }) },
    responses: {
      200: { description: "The event stream", content: { "text/event-stream": { schema: z.string() } } },
      204: { description: "The Last-Event-ID given was the end: nothing more to tell" },
      ...problemResponses,
    },
  }),
  async (c) => {
    const task = await ownTask(c.env.DB, c.get("caller").owner, c.req.valid("param").taskId);
    const resumeAfter = parseEventId(c.req.valid("header")["last-event-id"]);
    if (resumeAfter.state === END_STATE) return c.body(null, 204);
    return streamSSE(c, (stream) => streamTaskEvents(stream, c.env, new URL(c.req.url).origin, c.get("config"), task, resumeAfter));
  },
);

taskRoutes.openapi(
  createRoute({
    method: "post",
    path: "/tasks/{taskId}/cancellation",
    summary: "Cancel: a waiting task at once, a running one as soon as its node hears",
    tags: ["tasks"],
    security: bearerSecurity,
    middleware: user,
    request: { params: taskIdParam },
    responses: {
      200: jsonContent(z.object({ taskId: z.string(), status: z.string(), message: z.string() }), "Cancelled"),
      202: jsonContent(z.object({ taskId: z.string(), status: z.string(), message: z.string() }), "Running: the node has been told to stop"),
      ...problemResponses,
    },
  }),
  async (c) => {
    const task = await ownTask(c.env.DB, c.get("caller").owner, c.req.valid("param").taskId);
    if (!isLive(task))
      throw new ApiError("task_finished", `Task ${task.taskId} has already ${task.status === "succeeded" ? "succeeded" : `ended (${task.status})`}`);
    const outcome = await queueStub(c.env, task.checkpoint).cancel(task.uid);
    if (outcome === "cancel_requested")
      return c.json({ taskId: task.taskId, status: "running", message: "Cancelling: the node interrupts sd-webui at its next progress report" }, 202);
    let now = (await findTaskByUid(c.env.DB, task.uid)) ?? task;
    // Waiting in D1 but in no queue: a submission the Worker never finished queueing (../tasks/unqueued.ts).
    if (outcome === "not_live" && now.status === "waiting") {
      await queueStub(c.env, task.checkpoint).endUnqueued([task.uid], { status: "cancelled", error: "Cancelled before it ran" });
      now = (await findTaskByUid(c.env.DB, task.uid)) ?? task;
    }
    if (outcome === "not_live" && now.status !== "cancelled") throw new ApiError("task_finished", `Task ${task.taskId} has already ended (${now.status})`);
    return c.json({ taskId: task.taskId, status: "cancelled", message: "Cancelled before it ran" }, 200);
  },
);

taskRoutes.openapi(
  createRoute({
    method: "delete",
    path: "/tasks/{taskId}",
    summary: "Delete an ended task's images and inputs now (its record stays, for results and usage)",
    tags: ["tasks"],
    security: bearerSecurity,
    middleware: user,
    request: { params: taskIdParam },
    responses: { 200: jsonContent(resultSchema, "The task, its images gone"), ...problemResponses },
  }),
  async (c) => {
    const { task } = await currentTask(c.env, c.get("caller").owner, c.req.valid("param").taskId);
    if (isLive(task)) throw new ApiError("task_live", `Task ${task.taskId} is still ${task.status}; cancel it first (POST /tasks/${task.taskId}/cancellation)`);
    const now = Date.now();
    if (!task.imagesExpiredAt) await expireTaskObjects(c.env, [task], now);
    return c.json(await resultView(new URL(c.req.url).origin, c.get("config"), { ...task, imagesExpiredAt: task.imagesExpiredAt ?? now }), 200);
  },
);

taskRoutes.openapi(
  createRoute({
    method: "get",
    path: "/tasks",
    summary: "Your tasks, newest first",
    tags: ["tasks"],
    security: bearerSecurity,
    middleware: user,
    request: { query: listQuery },
    responses: {
      200: jsonContent(
        z.object({
          tasks: z.array(
            z.object({
              taskId: z.string(),
              status: z.string(),
              kind: z.string(),
              checkpoint: z.string(),
              createdAt: z.string(),
              finishedAt: z.string().nullable(),
            }),
          ),
          nextCursor: z.string().nullable(),
        }),
        "A page of tasks",
      ),
      ...problemResponses,
    },
  }),
  async (c) => {
    const { limit, cursor, status } = c.req.valid("query");
    const owner = c.get("caller").owner;
    const before = cursor ? decodeCursor(cursor) : undefined;
    const rows = await listTasks(c.env.DB, owner, { limit: limit + 1, status, before: before && { createdAt: before.createdAt, uid: before.id } });
    const page = rows.slice(0, limit);
    return c.json(
      {
        tasks: page.map((t) => ({
          taskId: t.taskId,
          status: t.status,
          kind: t.kind,
          checkpoint: t.checkpoint,
          createdAt: new Date(t.createdAt).toISOString(),
          finishedAt: t.finishedAt ? new Date(t.finishedAt).toISOString() : null,
        })),
        nextCursor: rows.length > limit && page.length > 0 ? encodeCursor(page[page.length - 1]!.createdAt, page[page.length - 1]!.uid) : null,
      },
      200,
    );
  },
);
