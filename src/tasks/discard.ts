// Forgetting an ended task as if it had never been recorded (an sd-webui passthrough call made
// without `Task-Flag: true`): its D1 row, its output images, and the input objects its submission
// wrote to R2. Inputs the caller uploaded beforehand (keys in the submitted body) stay.
import { deleteTask, type TaskRow } from "../db/tasks";
import { queueStub } from "../fleet/stub";
import { inputKeysIn } from "./task-objects";

/** Deletes an ended task's row and the R2 objects only it used. `submittedBody` is the body as the client sent it. */
export async function discardTask(env: Env, task: TaskRow, submittedBody: unknown): Promise<void> {
  if (task.status === "waiting" || task.status === "running") throw new Error(`discardTask: task ${task.uid} is still ${task.status}`);
  const uploadedBefore = inputKeysIn(submittedBody, new Set());
  const written = [...inputKeysIn(task.request, new Set())].filter((key) => !uploadedBefore.has(key));
  // Its queue may still be writing the row (see Submission.sync): let it finish, then delete.
  await queueStub(env, task.checkpoint).status(task.uid);
  await deleteTask(env.DB, task.uid);
  const objects = [...task.imageKeys, ...written];
  if (objects.length > 0) await env.BUCKET.delete(objects);
}
