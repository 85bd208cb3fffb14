// POST /uploads: store an input image (init image, mask, ControlNet input) and get its key, to
// name in later submissions instead of sending base64 again.

import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "../app-env";
import { requireRole } from "../auth/middleware";
import { randomId } from "../crypto";
import { ApiError } from "../errors";
import { refuseDeepJson } from "../json-depth";
import { decodeImageBase64, imageTypeOf, parseBase64Image } from "../storage/inline-images";
import { inputKey } from "../storage/object-keys";

export const MAX_UPLOAD_BYTES = 20 * 1024 * 1024;

export const uploadRoutes = new Hono<AppEnv>();

uploadRoutes.post(
  "/uploads",
  requireRole("user"),
  bodyLimit({
    maxSize: MAX_UPLOAD_BYTES * 2,
    onError: () => {
      throw new ApiError("payload_too_large", `Uploads are limited to ${MAX_UPLOAD_BYTES} bytes`);
    },
  }),
  async (c) => {
    const type = c.req.header("content-type") ?? "";
    let bytes: Uint8Array;
    if (type.startsWith("application/json")) {
      const body: unknown = await c.req.json();
      refuseDeepJson(body);
      const image = body !== null && typeof body === "object" ? (body as { image?: unknown }).image : undefined;
      if (typeof image !== "string") throw new ApiError("validation_failed", "image: a base64 image is required", [{ path: "image", message: "required" }]);
      const parsed = parseBase64Image(image);
      if (!parsed) throw new ApiError("unsupported_media_type", "image: not a base64 PNG, JPEG, WEBP or GIF");
      bytes = decodeImageBase64(parsed.base64);
    } else {
      bytes = new Uint8Array(await c.req.arrayBuffer());
    }
    if (bytes.byteLength === 0) throw new ApiError("validation_failed", "The image is empty");
    if (bytes.byteLength > MAX_UPLOAD_BYTES) throw new ApiError("payload_too_large", `Uploads are limited to ${MAX_UPLOAD_BYTES} bytes`);
    const kind = imageTypeOf(bytes);
    if (!kind) throw new ApiError("unsupported_media_type", "Upload a PNG, JPEG, WEBP or GIF image");
    const key = inputKey(c.get("caller").owner, randomId("up_"), kind.extension);
    await c.env.BUCKET.put(key, bytes, { httpMetadata: { contentType: kind.contentType } });
    return c.json({ key, size: bytes.byteLength, contentType: kind.contentType }, 201);
  },
);
