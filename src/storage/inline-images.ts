// Moves inline images in a submission (init images, masks, ControlNet inputs, anything that is
// a base64 image) larger than a few KB to R2 under inputs/<owner>/, so D1 and Durable Object rows
// stay small. Keys of stored images (earlier uploads, earlier results) are checked to exist and
// belong to the caller. The node receives the keys and a JSON pointer for each (see InputRef in
// the node protocol).

import { decodeBase64, encodeBase64, randomId } from "../crypto";
import { ApiError } from "../errors";
import type { InputRef } from "../protocol/node";
import { inputKey, isStoredImageKey, ownerOfKey } from "./object-keys";

export const INLINE_IMAGE_LIMIT_BYTES = 4 * 1024;

const IMAGE_SIGNATURES: ReadonlyArray<{ prefix: string; extension: string; contentType: string }> = [
  { prefix: "iVBORw0KGgo", extension: "png", contentType: "image/png" },
  { prefix: "/9j/", extension: "jpg", contentType: "image/jpeg" },
  { prefix: "UklGR", extension: "webp", contentType: "image/webp" },
  { prefix: "R0lGOD", extension: "gif", contentType: "image/gif" },
];

/** Splits an optional data: URI prefix off a base64 image; null when the string is not one. */
export function parseBase64Image(value: string): { base64: string; extension: string; contentType: string } | null {
  const base64 = value.startsWith("data:") ? value.slice(value.indexOf(",") + 1) : value;
  const signature = IMAGE_SIGNATURES.find((s) => base64.startsWith(s.prefix));
  return signature ? { base64, extension: signature.extension, contentType: signature.contentType } : null;
}

/** The image type of raw bytes (PNG, JPEG, WEBP, GIF), or null when they are not one. */
export function imageTypeOf(bytes: Uint8Array): { extension: string; contentType: string } | null {
  return parseBase64Image(encodeBase64(bytes.subarray(0, 12)));
}

/** The bytes of a base64 image in a request; a 422 when it is not base64. */
export function decodeImageBase64(base64: string): Uint8Array {
  const bytes = decodeBase64(base64);
  if (!bytes) throw new ApiError("validation_failed", "An image is not valid base64");
  return bytes;
}

interface Found {
  pointer: string;
  set: (value: string) => void;
  value: string;
}

function escapePointer(segment: string): string {
  return segment.replaceAll("~", "~0").replaceAll("/", "~1");
}

function collectStrings(value: unknown, pointer: string, set: (v: string) => void, out: Found[]): void {
  if (typeof value === "string") out.push({ pointer, set, value });
  else if (Array.isArray(value))
    value.forEach((item, i) => {
      collectStrings(
        item,
        `${pointer}/${i}`,
        (v) => {
          value[i] = v;
        },
        out,
      );
    });
  else if (value && typeof value === "object") {
    const record = value as Record<string, unknown>;
    for (const [k, item] of Object.entries(record)) collectStrings(item, `${pointer}/${escapePointer(k)}`, (v) => (record[k] = v), out);
  }
}

function fieldPath(pointer: string): string {
  return pointer
    .slice(1)
    .split("/")
    .map((segment) => segment.replaceAll("~1", "/").replaceAll("~0", "~"))
    .join(".");
}

/**
 * Stored images named as inputs must be the caller's and exist: otherwise the submission is
 * refused naming each, rather than failing on a node. Another key's image is answered as if it
 * did not exist.
 */
async function refuseUnknownImages(bucket: R2Bucket, owner: string, refs: readonly InputRef[]): Promise<void> {
  const own = refs.filter((ref) => ownerOfKey(ref.key) === owner);
  const heads = await Promise.all(own.map((ref) => bucket.head(ref.key)));
  const found = new Set(own.filter((_, i) => heads[i]).map((ref) => ref.key));
  const unknown = refs.filter((ref) => !found.has(ref.key));
  if (unknown.length === 0) return;
  const errors = unknown.map((ref) => ({ path: fieldPath(ref.pointer), message: `no stored image ${ref.key} of yours (an upload or one of your results)` }));
  throw new ApiError("validation_failed", errors.map((e) => `${e.path}: ${e.message}`).join("; "), errors);
}

export interface ExternalizedPayload {
  payload: Record<string, unknown>;
  inputs: InputRef[];
  /** Objects written by this call; delete them if the submission fails afterwards. */
  writtenKeys: string[];
}

export async function externalizeInlineImages(bucket: R2Bucket, owner: string, payload: Record<string, unknown>): Promise<ExternalizedPayload> {
  const copy = structuredClone(payload);
  const strings: Found[] = [];
  collectStrings(copy, "", () => undefined, strings);
  const inputs: InputRef[] = [];
  const pending: Array<{ found: Found; key: string; bytes: Uint8Array; contentType: string }> = [];
  for (const found of strings) {
    if (isStoredImageKey(found.value)) {
      inputs.push({ pointer: found.pointer, key: found.value });
      continue;
    }
    if (found.value.length <= INLINE_IMAGE_LIMIT_BYTES) continue;
    const image = parseBase64Image(found.value);
    if (!image) continue;
    const key = inputKey(owner, randomId("in_"), image.extension);
    pending.push({ found, key, bytes: decodeImageBase64(image.base64), contentType: image.contentType });
  }
  await refuseUnknownImages(bucket, owner, inputs);
  const writtenKeys: string[] = [];
  try {
    for (const item of pending) {
      await bucket.put(item.key, item.bytes, { httpMetadata: { contentType: item.contentType } });
      writtenKeys.push(item.key);
      item.found.set(item.key);
      inputs.push({ pointer: item.found.pointer, key: item.key });
    }
  } catch (error) {
    await bucket.delete(writtenKeys);
    throw error;
  }
  return { payload: copy, inputs, writtenKeys };
}
