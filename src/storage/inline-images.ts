// Moves inline images in a submission (init images, masks, ControlNet inputs, anything that is
// a base64 image) larger than a few KB to R2 under inputs/<owner>/, so D1 and Durable Object rows
// stay small. Keys of earlier uploads are checked to belong to the caller. The node receives the
// keys and a JSON pointer for each (see InputRef in the node protocol).

import { decodeBase64, encodeBase64, randomId } from "../crypto";
import { ApiError } from "../errors";
import type { InputRef } from "../protocol/node";
import { inputKey, isInputKey, ownerOfKey } from "./object-keys";

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
    if (isInputKey(found.value)) {
      if (ownerOfKey(found.value) !== owner) throw new ApiError("forbidden", `${found.pointer}: the object ${found.value} belongs to another key`);
      inputs.push({ pointer: found.pointer, key: found.value });
      continue;
    }
    if (found.value.length <= INLINE_IMAGE_LIMIT_BYTES) continue;
    const image = parseBase64Image(found.value);
    if (!image) continue;
    const key = inputKey(owner, randomId("in_"), image.extension);
    pending.push({ found, key, bytes: decodeImageBase64(image.base64), contentType: image.contentType });
  }
  const referenced = inputs.map((ref) => ref.key);
  const heads = await Promise.all(referenced.map((key) => bucket.head(key)));
  const missing = referenced.filter((_, i) => !heads[i]);
  if (missing.length > 0) throw new ApiError("validation_failed", `No uploaded object ${missing.join(", ")}`);
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
