// GET /images/<owner>/<file>?exp&sig: signed, expiring reads of output images. Without a
// signature nothing is served: the URL itself is the capability, and it expires, or dies with
// the owning key when that is revoked.
import { z } from "zod";
import { isKeyRevoked } from "../db/keys";
import { ApiError } from "../errors";
import { verifyImageSignature } from "../storage/signed-url";
import { binaryContent, openApiApp, problemResponses } from "./openapi-app";

export const imageRoutes = openApiApp();

imageRoutes.openAPIRegistry.registerPath({
  method: "get",
  path: "/images/{owner}/{file}",
  summary: "An output image by its signed, expiring URL (the `ossUrl` of a result; no key needed)",
  tags: ["tasks"],
  request: {
    params: z.object({ owner: z.string(), file: z.string() }),
    query: z.object({ exp: z.string().describe("Expiry, Unix seconds"), sig: z.string().describe("HMAC-SHA256 of the key and expiry") }),
  },
  responses: { 200: binaryContent("image/png", "The image"), ...problemResponses },
});

imageRoutes.get("/images/:owner/:file", async (c) => {
  const key = `images/${c.req.param("owner")}/${c.req.param("file")}`;
  const check = await verifyImageSignature(key, c.req.query("exp"), c.req.query("sig"), c.get("config"));
  if (check === "expired") throw new ApiError("url_expired", "This link has expired; read the task's result again for a fresh one");
  if (check === "beyond_ceiling") throw new ApiError("invalid_signature", "This link expires later than any link may (MAX_SIGNED_URL_TTL_SECONDS)");
  if (check === "invalid") throw new ApiError("invalid_signature", "The signature does not match this image and expiry");
  if (await isKeyRevoked(c.env.DB, c.req.param("owner"))) throw new ApiError("link_revoked", "The API key that made this image was revoked");
  const object = await c.env.BUCKET.get(key);
  if (!object) throw new ApiError("image_not_found");
  return new Response(object.body, {
    headers: {
      "content-type": object.httpMetadata?.contentType ?? "image/png",
      "content-length": String(object.size),
      etag: object.httpEtag,
      "cache-control": "private, max-age=300",
    },
  });
});
