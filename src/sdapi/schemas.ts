// Request and response shapes of the sd-webui surface. Requests reuse the gateway's sd-webui
// schemas (tolerant of unknown fields); responses are sd-webui's own, for the OpenAPI document.
import { z } from "@hono/zod-openapi";
import { extrasBatchRequestSchema, extrasSingleRequestSchema, img2imgRequestSchema, txt2imgRequestSchema } from "../protocol/sdwebui";

const forceTaskId = { force_task_id: z.string().nullable().optional().describe("Becomes the task id (unique per key) when free") };

export const sdapiTxt2imgSchema = txt2imgRequestSchema.extend(forceTaskId).openapi("SdapiTxt2ImgRequest");

/** `init_images` is checked by the handler: sd-webui answers 404 "Init image not found" without it, not 422. */
export const sdapiImg2imgSchema = img2imgRequestSchema
  .extend({ ...forceTaskId, init_images: img2imgRequestSchema.shape.init_images.nullable().optional() })
  .openapi("SdapiImg2ImgRequest");

export const sdapiExtrasSingleSchema = extrasSingleRequestSchema.openapi("SdapiExtrasSingleImageRequest");

export const sdapiExtrasBatchSchema = extrasBatchRequestSchema.openapi("SdapiExtrasBatchImagesRequest");

/**
 * The npm client `stable-diffusion-api` sends `image_list: [{image, name}]` where sd-webui wants
 * `imageList: [{data, name}]`; accepting both lets that client work unchanged.
 */
export function normalizeExtrasBatch(body: unknown): unknown {
  if (!body || typeof body !== "object" || Array.isArray(body)) return body;
  const record = body as Record<string, unknown>;
  if (record.imageList !== undefined || !Array.isArray(record.image_list)) return body;
  const { image_list: list, ...rest } = record;
  return {
    ...rest,
    imageList: (list as unknown[]).map((item) => {
      if (!item || typeof item !== "object") return item;
      const { image, ...others } = item as Record<string, unknown>;
      return others.data === undefined && image !== undefined ? { ...others, data: image } : item;
    }),
  };
}

export const generationResponseSchema = z
  .object({
    images: z.array(z.string()).describe("Raw base64 images (no data: prefix)"),
    parameters: z.record(z.string(), z.unknown()).describe("The request as sd-webui ran it"),
    info: z.string().describe("A JSON string (clients JSON.parse it)"),
  })
  .openapi("SdapiGenerationResponse");

export const extrasSingleResponseSchema = z.object({ html_info: z.string(), image: z.string().nullable() }).openapi("SdapiExtrasSingleImageResponse");
export const extrasBatchResponseSchema = z.object({ html_info: z.string(), images: z.array(z.string()) }).openapi("SdapiExtrasBatchImagesResponse");

export const progressResponseSchema = z
  .object({
    progress: z.number(),
    eta_relative: z.number(),
    state: z.record(z.string(), z.unknown()),
    current_image: z.string().nullable(),
    textinfo: z.string().nullable(),
  })
  .openapi("SdapiProgressResponse");

export const sdModelItemSchema = z
  .object({
    title: z.string(),
    model_name: z.string(),
    hash: z.string().nullable(),
    sha256: z.string().nullable(),
    filename: z.string(),
    config: z.string().nullable(),
    name: z.string().describe("sdgate: the registered model name (stable-diffusion-api's setModel matches on it)"),
  })
  .openapi("SdapiSdModelItem");

export const optionsSchema = z.record(z.string(), z.unknown()).openapi("SdapiOptions");

export const webuiErrorSchema = z.object({ error: z.string(), detail: z.string(), body: z.string(), errors: z.string() }).openapi("SdapiError");

export const validationErrorSchema = z
  .object({ detail: z.array(z.object({ loc: z.array(z.union([z.string(), z.number()])), msg: z.string(), type: z.string() })) })
  .openapi("SdapiValidationError");
