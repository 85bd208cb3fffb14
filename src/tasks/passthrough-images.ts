// Passthrough answers (any sd-webui route run on a node) can carry base64 images; they go to R2
// like every other output so D1 rows stay small, and come back inline when the answer is replayed.

import { encodeBase64 } from "../crypto";
import type { InputRef } from "../protocol/node";
import { decodeImageBase64, parseBase64Image } from "../storage/inline-images";
import { imageKey } from "../storage/object-keys";

export interface StoredPassthroughResult {
  status: number;
  body: unknown;
  /** Where images were cut out of `body`, and the R2 key each went to. */
  images?: InputRef[];
}

/** `images: [b64…]` and `image: b64` at the top level of a JSON answer, as sd-webui routes return them. */
function imageSlots(body: unknown): Array<{ pointer: string; value: string; set: (key: string) => void }> {
  if (!body || typeof body !== "object" || Array.isArray(body)) return [];
  const record = body as Record<string, unknown>;
  const slots: Array<{ pointer: string; value: string; set: (key: string) => void }> = [];
  if (Array.isArray(record.images)) {
    const list = record.images as unknown[];
    list.forEach((value, i) => {
      if (typeof value === "string" && parseBase64Image(value)) slots.push({ pointer: `/images/${i}`, value, set: (key) => (list[i] = key) });
    });
  }
  if (typeof record.image === "string" && parseBase64Image(record.image)) {
    slots.push({ pointer: "/image", value: record.image, set: (key) => (record.image = key) });
  }
  return slots;
}

export async function storePassthroughImages(
  bucket: R2Bucket,
  owner: string,
  taskId: string,
  result: { status: number; body: unknown },
): Promise<{ result: StoredPassthroughResult; imageKeys: string[] }> {
  const body = structuredClone(result.body);
  const images: InputRef[] = [];
  for (const [n, slot] of imageSlots(body).entries()) {
    const parsed = parseBase64Image(slot.value)!;
    const key = imageKey(owner, taskId, n);
    await bucket.put(key, decodeImageBase64(parsed.base64), { httpMetadata: { contentType: parsed.contentType } });
    slot.set(key);
    images.push({ pointer: slot.pointer, key });
  }
  return { result: { status: result.status, body, images }, imageKeys: images.map((i) => i.key) };
}

/** The answer as the node gave it: images read back from R2 into their places. */
export async function replayPassthroughResult(bucket: R2Bucket, stored: StoredPassthroughResult): Promise<{ status: number; body: unknown }> {
  const body = structuredClone(stored.body) as Record<string, unknown>;
  for (const { pointer, key } of stored.images ?? []) {
    const object = await bucket.get(key);
    if (!object) continue;
    const base64 = encodeBase64(await object.arrayBuffer());
    if (pointer === "/image") body.image = base64;
    else (body.images as unknown[])[Number(pointer.split("/")[2])] = base64;
  }
  return { status: stored.status, body };
}
