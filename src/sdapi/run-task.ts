// An sd-webui request run as a task: submit it (sdgate's headers work here too: Request-Type,
// taskId, Idempotency-Key, Task-Priority), wait up to SYNC_WAIT_MS, answer as sd-webui would.
// A passthrough not asked to be recorded is forgotten once answered.
import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { findTask, type TaskRow } from "../db/tasks";
import { ApiError } from "../errors";
import type { ClaimedTask, TaskKind } from "../protocol/node";
import { discardTask } from "../tasks/discard";
import { type Submission, submitTask } from "../tasks/submit";
import { submitHeadersSchema } from "../tasks/submit-headers";
import { submitView } from "../tasks/views";
import { isLive, waitForTask } from "../tasks/wait";
import { requestedWebhook, WEBHOOK_URL_HEADER } from "../tasks/webhooks";
import { answerResponse, taskAnswer } from "./answers";
import { SdapiError, zodValidationItems } from "./errors";

/** sd-webui ids look like `task(txt2img-AB12CD3)`; ids with other characters are not taken over. */
const FORCED_TASK_ID = /^[A-Za-z0-9._:()-]{1,128}$/;

export const TASK_ID_HEADER = "Task-Id";

export interface SdapiTask {
  kind: TaskKind;
  body: Record<string, unknown>;
  passthrough: ClaimedTask["passthrough"];
  /** False for a passthrough without `Task-Flag: true`: the task is deleted once answered. */
  record: boolean;
}

function stringField(body: Record<string, unknown>, field: string): string | null {
  const value = body[field];
  return typeof value === "string" && value.length > 0 ? value : null;
}

function readHeaders(c: Context<AppEnv>) {
  const parsed = submitHeadersSchema.safeParse(c.req.header());
  if (!parsed.success) throw SdapiError.validation(zodValidationItems(parsed.error, "header"));
  return parsed.data;
}

/** `force_task_id` becomes the task id when it is well-formed and the caller has no task by that id. */
async function forcedTaskId(db: D1Database, owner: string, body: Record<string, unknown>): Promise<string | null> {
  const forced = stringField(body, "force_task_id");
  if (!forced || !FORCED_TASK_ID.test(forced)) return null;
  return (await findTask(db, owner, forced)) ? null : forced;
}

export async function runSdapiTask(c: Context<AppEnv>, t: SdapiTask): Promise<Response> {
  const headers = readHeaders(c);
  const caller = c.get("caller");
  const config = c.get("config");
  const origin = new URL(c.req.url).origin;
  const asynchronous = headers["request-type"] === "async";
  const recorded = t.record || asynchronous;
  const headerTaskId = recorded ? (headers.taskid ?? null) : null;
  const forced = headerTaskId ? null : await forcedTaskId(c.env.DB, caller.owner, t.body);
  const submission: Submission = {
    caller,
    kind: t.kind,
    body: t.body,
    checkpoint: stringField(t.body, "stable_diffusion_model"),
    vae: stringField(t.body, "sd_vae"),
    clientTaskId: headerTaskId ?? forced,
    idempotencyKey: recorded ? (headers["idempotency-key"] ?? null) : null,
    priority: headers["task-priority"] ?? 0,
    passthrough: t.passthrough,
    sync: !asynchronous,
    webhook: recorded ? requestedWebhook(headers[WEBHOOK_URL_HEADER], origin, config) : null,
    // sd-webui answers an interrupted generation with what it had, and its clients expect that.
    keepInterruptedImages: true,
  };
  let task: TaskRow;
  try {
    ({ task } = await submitTask(c.env, submission));
  } catch (error) {
    // Someone took the forced id in the meantime: run under a generated id instead.
    if (!(forced && error instanceof ApiError && error.code === "task_id_conflict")) throw error;
    ({ task } = await submitTask(c.env, { ...submission, clientTaskId: null }));
  }
  if (asynchronous) {
    return c.json(await submitView(origin, config, task), 202, { [TASK_ID_HEADER]: task.taskId });
  }
  const startedAt = Date.now();
  const ended = await waitForTask(c.env, task, config.syncWaitMs);
  const answer = await taskAnswer(c.env.BUCKET, ended, Date.now() - startedAt);
  if (!recorded && !isLive(ended)) {
    await discardTask(c.env, ended, t.body);
    return answerResponse(answer);
  }
  return answerResponse(answer, { [TASK_ID_HEADER]: ended.taskId });
}
