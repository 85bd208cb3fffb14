// R2 layout: images/<owner>/<taskId>_<n>.png (the original's), inputs/<owner>/<id>.<ext>, models/<name>/<file>,
// models/<name>/uploads/<id>/<file> (each file uploaded through the API).
import { randomId } from "../crypto";

export function imageKey(owner: string, taskId: string, index: number): string {
  return `images/${owner}/${taskId}_${index}.png`;
}

export function inputKey(owner: string, id: string, extension: string): string {
  return `inputs/${owner}/${id}.${extension}`;
}

export function modelKey(name: string, fileName: string): string {
  return `models/${name}/${fileName}`;
}

/** A new key for each upload of a model's file (file names have no `/`: it never is a `modelKey`). */
export function uploadedModelKey(name: string, fileName: string): string {
  return `models/${name}/uploads/${randomId("u_")}/${fileName}`;
}

/** The owner an `images/…` or `inputs/…` key belongs to, or null for any other key. */
export function ownerOfKey(key: string): string | null {
  const match = /^(?:images|inputs)\/([^/]+)\/[^/]+$/.exec(key);
  return match?.[1] ?? null;
}

/** An image the caller stored with POST /uploads (its id starts `up_`), not one a submission wrote. */
export function uploadKey(owner: string, extension: string): string {
  return inputKey(owner, randomId("up_"), extension);
}

export function isUploadKey(value: string): boolean {
  return /^inputs\/[^/]+\/up_[A-Za-z0-9._-]+$/.test(value);
}

export function isInputKey(value: string): boolean {
  return /^inputs\/[^/]+\/[A-Za-z0-9._-]+$/.test(value);
}

/** A stored image a request may name as an input: an upload, or an output image as /tasks/{id}/result lists it. */
export function isStoredImageKey(value: string): boolean {
  return isInputKey(value) || /^images\/[^/]+\/[^/]+_[0-9]+\.png$/.test(value);
}
