// The R2 objects that are a task's own — its output images and the inputs its submission wrote
// (uploads the request named belong to the caller and expire on their own) — and removing them:
// all of them when the task is deleted or expires, the unused ones when it ends.
import { inArray } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { tasks } from "../db/schema";
import type { TaskRow } from "../db/tasks";
import { isInputKey, isUploadKey } from "../storage/object-keys";

/** Every input key (`inputs/…`) anywhere in a request body. */
export function inputKeysIn(value: unknown, out: Set<string> = new Set()): Set<string> {
  if (typeof value === "string") {
    if (isInputKey(value)) out.add(value);
  } else if (Array.isArray(value)) {
    for (const item of value) inputKeysIn(item, out);
  } else if (value && typeof value === "object") {
    for (const item of Object.values(value)) inputKeysIn(item, out);
  }
  return out;
}

export function ownObjects(task: Pick<TaskRow, "imageKeys" | "request">): string[] {
  return [...task.imageKeys, ...[...inputKeysIn(task.request)].filter((key) => !isUploadKey(key))];
}

/** R2 deletes at most this many keys per call. */
const R2_DELETE_BATCH = 1000;

export async function deleteObjects(bucket: R2Bucket, keys: readonly string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += R2_DELETE_BATCH) await bucket.delete(keys.slice(i, i + R2_DELETE_BATCH));
}

/** Tasks whose leftover images are listed at once (one R2 list each). */
const LISTS_AT_ONCE = 10;

/**
 * Removes ended tasks' images and inputs and marks them expired at `now` (the rows stay: results,
 * usage). Images under the task's name that its result does not list go too: those of a task the
 * queue ended itself (its lease lost for the last time), which no node's answer cleaned up.
 */
export async function expireTaskObjects(
  env: Env,
  ended: ReadonlyArray<Pick<TaskRow, "uid" | "owner" | "taskId" | "imageKeys" | "request">>,
  now: number,
): Promise<void> {
  if (ended.length === 0) return;
  await deleteObjects(env.BUCKET, ended.flatMap(ownObjects));
  for (let i = 0; i < ended.length; i += LISTS_AT_ONCE) {
    await Promise.all(ended.slice(i, i + LISTS_AT_ONCE).map((task) => removeOrphanImages(env.BUCKET, task.owner, task.taskId, [])));
  }
  await drizzle(env.DB)
    .update(tasks)
    .set({ imagesExpiredAt: now })
    .where(
      inArray(
        tasks.uid,
        ended.map((t) => t.uid),
      ),
    );
}

/**
 * Output images a node uploaded for the task that its result does not name: indexes beyond the
 * images it reported, or everything when the task ended without a result. Leases of one task
 * write the same keys, so a lease that lost leaves at most such extra indexes.
 */
export async function removeOrphanImages(bucket: R2Bucket, owner: string, taskId: string, kept: readonly string[]): Promise<number> {
  const prefix = `images/${owner}/${taskId}_`;
  const ownImage = /^[0-9]+\.png$/;
  const keep = new Set(kept);
  const orphans: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix, cursor });
    for (const object of page.objects) if (ownImage.test(object.key.slice(prefix.length)) && !keep.has(object.key)) orphans.push(object.key);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  await deleteObjects(bucket, orphans);
  return orphans.length;
}
