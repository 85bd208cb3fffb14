// POST /uploads: store an input image (init image, mask, ControlNet input) and get its key, to
// name in later submissions instead of sending base64 again. GET /uploads lists the caller's,
// DELETE /uploads/{key} removes one; they expire after the key's retentionDays (../tenants/retention.ts).

import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { requireRole } from "../auth/middleware";
import { deleteUpload, insertUpload, listUploads } from "../db/uploads";
import { ApiError } from "../errors";
import { refuseDeepJson } from "../json-depth";
import { decodeImageBase64, imageTypeOf, parseBase64Image } from "../storage/inline-images";
import { uploadKey } from "../storage/object-keys";
import { bearerSecurity, binarySchema, jsonContent, openApiApp, problemResponses } from "./openapi-app";
import { decodeCursor, encodeCursor } from "./page-cursor";

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
    const owner = c.get("caller").owner;
    const key = uploadKey(owner, kind.extension);
    await c.env.BUCKET.put(key, bytes, { httpMetadata: { contentType: kind.contentType } });
    await insertUpload(c.env.DB, { key, owner, sizeBytes: bytes.byteLength, contentType: kind.contentType, createdAt: Date.now() });
    return c.json({ key, size: bytes.byteLength, contentType: kind.contentType }, 201);
  },
);

const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().optional(),
});

const uploadListSchema = z.object({
  uploads: z.array(z.object({ key: z.string(), size: z.number().int(), contentType: z.string(), createdAt: z.string().describe("ISO 8601") })),
  nextCursor: z.string().nullable().describe("Pass as `cursor` for the next page; null on the last"),
});

uploadRoutes.openAPIRegistry.registerPath({
  method: "get",
  path: "/uploads",
  summary: "Your uploads, newest first, cursor-paged",
  tags: ["uploads"],
  security: bearerSecurity,
  request: { query: listQuery },
  responses: { 200: jsonContent(uploadListSchema, "A page of uploads"), ...problemResponses },
});

uploadRoutes.get("/uploads", requireRole("user"), async (c) => {
  const parsed = listQuery.safeParse(c.req.query());
  if (!parsed.success) throw parsed.error;
  const { limit, cursor } = parsed.data;
  const before = cursor ? decodeCursor(cursor) : undefined;
  const rows = await listUploads(c.env.DB, c.get("caller").owner, { limit: limit + 1, before: before && { createdAt: before.createdAt, key: before.id } });
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return c.json({
    uploads: page.map((u) => ({ key: u.key, size: u.sizeBytes, contentType: u.contentType, createdAt: new Date(u.createdAt).toISOString() })),
    nextCursor: rows.length > limit && last ? encodeCursor(last.createdAt, last.key) : null,
  });
});

uploadRoutes.openAPIRegistry.registerPath({
  method: "delete",
  path: "/uploads/{key}",
  summary: "Delete one of your uploads (its key, slashes included)",
  tags: ["uploads"],
  security: bearerSecurity,
  request: { params: z.object({ key: z.string().describe("The upload's key, as POST /uploads answered it") }) },
  responses: { 204: { description: "Deleted" }, ...problemResponses },
});

uploadRoutes.delete("/uploads/:key{.+}", requireRole("user"), async (c) => {
  const key = c.req.param("key");
  if (!(await deleteUpload(c.env.DB, c.get("caller").owner, key))) throw new ApiError("not_found", `You have no upload ${JSON.stringify(key)}`);
  await c.env.BUCKET.delete(key);
  return c.body(null, 204);
});
