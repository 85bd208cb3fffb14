// Task rows in D1: lookups, the owner's listing, the caller's current job, and the writes a
// submission makes (the queue's own writes are in ./task-records.ts).
import { and, desc, eq, isNotNull, isNull, lt, ne, or, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { apiKeys, type TaskStatus, tasks } from "./schema";

export type TaskRow = typeof tasks.$inferSelect;

export async function findTask(db: D1Database, owner: string, taskId: string): Promise<TaskRow | null> {
  return (
    (await drizzle(db)
      .select()
      .from(tasks)
      .where(and(eq(tasks.owner, owner), eq(tasks.taskId, taskId)))
      .get()) ?? null
  );
}

export async function findTaskByUid(db: D1Database, uid: string): Promise<TaskRow | null> {
  return (await drizzle(db).select().from(tasks).where(eq(tasks.uid, uid)).get()) ?? null;
}

export async function findTaskByIdempotencyKey(db: D1Database, owner: string, key: string): Promise<TaskRow | null> {
  return (
    (await drizzle(db)
      .select()
      .from(tasks)
      .where(and(eq(tasks.owner, owner), eq(tasks.idempotencyKey, key)))
      .get()) ?? null
  );
}

export async function insertTask(db: D1Database, row: TaskRow): Promise<void> {
  await drizzle(db).insert(tasks).values(row);
}

export async function deleteTask(db: D1Database, uid: string): Promise<void> {
  await drizzle(db).delete(tasks).where(eq(tasks.uid, uid));
}

/** The owner's tasks newest first, from just after `before` (a task's createdAt and uid). */
export async function listTasks(
  db: D1Database,
  owner: string,
  page: { limit: number; status?: TaskStatus; before?: { createdAt: number; uid: string } },
): Promise<TaskRow[]> {
  const conditions = [eq(tasks.owner, owner)];
  if (page.status) conditions.push(eq(tasks.status, page.status));
  if (page.before) {
    const at = page.before;
    conditions.push(or(lt(tasks.createdAt, at.createdAt), and(eq(tasks.createdAt, at.createdAt), lt(tasks.uid, at.uid)))!);
  }
  return drizzle(db)
    .select()
    .from(tasks)
    .where(and(...conditions))
    .orderBy(desc(tasks.createdAt), desc(tasks.uid))
    .limit(page.limit)
    .all();
}

/** The caller's current job: most recent running task, else most recent waiting one (passthrough calls are not jobs). */
export async function currentJob(db: D1Database, owner: string): Promise<TaskRow | null> {
  const orm = drizzle(db);
  const mine = (status: "running" | "waiting") => and(eq(tasks.owner, owner), eq(tasks.status, status), ne(tasks.kind, "passthrough"));
  const running = await orm.select().from(tasks).where(mine("running")).orderBy(desc(tasks.startedAt), desc(tasks.createdAt)).limit(1).get();
  if (running) return running;
  return (await orm.select().from(tasks).where(mine("waiting")).orderBy(desc(tasks.createdAt)).limit(1).get()) ?? null;
}

export async function countTasksByStatus(db: D1Database): Promise<Array<{ status: TaskStatus; n: number }>> {
  return drizzle(db).select({ status: tasks.status, n: sql<number>`count(*)` }).from(tasks).groupBy(tasks.status).all();
}

/** Waiting and running tasks whose request needs the add-on `name` (in their `addons`). */
export async function liveTasksUsingAddon(db: D1Database, name: string): Promise<Array<Pick<TaskRow, "uid" | "checkpoint" | "status">>> {
  return drizzle(db)
    .select({ uid: tasks.uid, checkpoint: tasks.checkpoint, status: tasks.status })
    .from(tasks)
    .where(
      and(or(eq(tasks.status, "waiting"), eq(tasks.status, "running")), sql`exists (select 1 from json_each(${tasks.addons}) where json_each.value = ${name})`),
    )
    .all();
}

/** The oldest `limit` tasks D1 shows waiting that were created before `before` (epoch ms). */
export async function waitingTasksCreatedBefore(db: D1Database, before: number, limit: number): Promise<Array<Pick<TaskRow, "uid" | "checkpoint">>> {
  return drizzle(db)
    .select({ uid: tasks.uid, checkpoint: tasks.checkpoint })
    .from(tasks)
    .where(and(eq(tasks.status, "waiting"), lt(tasks.createdAt, before)))
    .orderBy(tasks.createdAt)
    .limit(limit)
    .all();
}

/** The checkpoints where the owner has tasks D1 shows waiting or running (tasks_owner_status). */
export async function liveCheckpointsOf(db: D1Database, owner: string): Promise<string[]> {
  const rows = await drizzle(db)
    .selectDistinct({ checkpoint: tasks.checkpoint })
    .from(tasks)
    .where(and(eq(tasks.owner, owner), or(eq(tasks.status, "waiting"), eq(tasks.status, "running"))))
    .all();
  return rows.map((r) => r.checkpoint);
}

/**
 * The `limit` ended tasks that ended longest ago among those whose images are kept past their
 * owner's retentionDays (the key's override, else `defaultDays`) at `now`.
 */
export async function tasksPastRetention(
  db: D1Database,
  now: number,
  defaultDays: number,
  limit: number,
): Promise<Array<Pick<TaskRow, "uid" | "owner" | "taskId" | "imageKeys" | "request">>> {
  const days = sql`coalesce(json_extract(${apiKeys.limits}, '$.retentionDays'), ${defaultDays})`;
  return drizzle(db)
    .select({ uid: tasks.uid, owner: tasks.owner, taskId: tasks.taskId, imageKeys: tasks.imageKeys, request: tasks.request })
    .from(tasks)
    .leftJoin(apiKeys, eq(apiKeys.id, tasks.owner))
    .where(and(isNull(tasks.imagesExpiredAt), isNotNull(tasks.finishedAt), sql`${tasks.finishedAt} < ${now} - ${days} * 86400000`))
    .orderBy(tasks.finishedAt)
    .limit(limit)
    .all();
}
