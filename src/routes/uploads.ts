// POST /uploads: store an input image (init image, mask, ControlNet input) and get its key, to
// name in later submissions instead of sending base64 again.

import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { requireRole } from "../auth/middleware";
import { randomId } from "../crypto";
import { ApiError } from "../errors";
import { refuseDeepJson } from "../json-depth";
import { decodeImageBase64, imageTypeOf, parseBase64Image } from "../storage/inline-images";
import { inputKey } from "../storage/object-keys";
import { bearerSecurity, binarySchema, jsonContent, openApiApp, problemResponses } from "./openapi-app";

export const MAX_UPLOAD_BYTES = 20 * 1024 * 1024;

export const uploadRoutes = openApiApp();

// The handler reads the body itself (raw bytes or JSON): documented alongside.
uploadRoutes.openAPIRegistry.registerPath({
  method: "post",
  path: "/uploads",
  summary: "Store an input image (raw body, or JSON {image: base64}) and get its key",
  tags: ["uploads"],
  security: bearerSecurity,
  request: {
    body: {
      required: true,
      content: {
        "image/*": { schema: binarySchema },
        "application/json": { schema: z.object({ image: z.string().describe("base64, or a data: URI") }) },
      },
    },
  },
  responses: {
    201: jsonContent(z.object({ key: z.string(), size: z.number().int(), contentType: z.string() }), "Stored: name `key` in init_images, mask or image"),
    ...problemResponses,
  },
});

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
