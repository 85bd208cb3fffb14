// Retention: the scheduled sweep removes images, task inputs and uploads older than their key's
// retentionDays, and marks the tasks' images expired. `now` is injected (the cron's scheduled
// time; tests pass their own). Each run handles a bounded batch, the oldest first; the next run
// (every minute) goes on.
import { tasksPastRetention } from "../db/tasks";
import { deleteUploadRecords, expiredUploads } from "../db/uploads";
import { deleteObjects, expireTaskObjects } from "../tasks/task-objects";

/** Most tasks and most uploads one run removes. */
const RETENTION_BATCH = 200;

export async function sweepExpired(env: Env, defaultRetentionDays: number, now: number): Promise<{ tasks: number; uploads: number }> {
  const [tasks, uploads] = await Promise.all([
    tasksPastRetention(env.DB, now, defaultRetentionDays, RETENTION_BATCH),
    expiredUploads(env.DB, now, defaultRetentionDays, RETENTION_BATCH),
  ]);
  await expireTaskObjects(env, tasks, now);
  const uploadKeys = uploads.map((u) => u.key);
  await deleteObjects(env.BUCKET, uploadKeys);
  await deleteUploadRecords(env.DB, uploadKeys);
  return { tasks: tasks.length, uploads: uploads.length };
}
