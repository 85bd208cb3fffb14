// The sd-webui request a claimed task becomes: its payload with the input images written back in
// (base64, at the JSON pointers the Worker named), sent to the route its kind runs on. txt2img
// and img2img carry the task id as force_task_id, so their progress can be followed through
// /internal/progress and their run told apart from anything else sd-webui is doing.
import { type ClaimedTask, WEBUI_PATH_BY_KIND } from "../../src/protocol/node.ts";
import { setJsonPointer } from "../json-pointer.ts";
import { errorMessage } from "../logger.ts";

/** The task cannot be turned into an sd-webui request; running it again would not help. */
export class InvalidTaskError extends Error {
  override name = "InvalidTaskError";
}

/** An input image the agent fetched for a task, with where it goes in the payload. */
export interface InputImage {
  key: string;
  pointer: string;
  bytes: Uint8Array;
}

export interface WebuiRequest {
  method: string;
  path: string;
  body: Record<string, unknown>;
  /** A generation: its progress is followed by task id and it can be interrupted. */
  isGeneration: boolean;
}

/** Builds the request; the task's own payload is left as it was. */
export function buildWebuiRequest(task: ClaimedTask, images: readonly InputImage[]): WebuiRequest {
  const payload = structuredClone(task.payload);
  for (const image of images) {
    try {
      setJsonPointer(payload, image.pointer, Buffer.from(image.bytes).toString("base64"));
    } catch (error) {
      throw new InvalidTaskError(`cannot place input ${image.key}: ${errorMessage(error)}`);
    }
  }
  if (task.kind === "passthrough") {
    if (!task.passthrough) throw new InvalidTaskError("passthrough task without a method and path");
    return { method: task.passthrough.method, path: task.passthrough.path, body: payload, isGeneration: false };
  }
  const isGeneration = task.kind === "txt2img" || task.kind === "img2img";
  return {
    method: "POST",
    path: WEBUI_PATH_BY_KIND[task.kind],
    body: isGeneration ? { ...payload, force_task_id: task.id } : payload,
    isGeneration,
  };
}
