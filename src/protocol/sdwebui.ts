// sd-webui request shapes the gateway reads. Tolerant of unknown fields (they pass through to
// sd-webui untouched), strict on the types of the fields it knows.
import { z } from "zod";

const int = (min: number, max: number) => z.number().int().min(min).max(max);

// Absolute bounds against abuse only: what a request may cost is each key's maxWorkPerRequest
// (src/tenants/request-work.ts), checked at submission.

/** Fields of sdgate's own API that choose where a request runs. */
const routingFields = {
  stable_diffusion_model: z.string().min(1).optional().describe("Registered model name (or any sd-webui alias) of the checkpoint"),
  sd_vae: z.string().min(1).optional().describe("VAE to use"),
};

const generationFields = {
  prompt: z.string().optional(),
  negative_prompt: z.string().optional(),
  styles: z.array(z.string()).optional(),
  seed: z.number().int().optional(),
  subseed: z.number().int().optional(),
  subseed_strength: z.number().optional(),
  sampler_name: z.string().optional(),
  sampler_index: z.string().optional(),
  scheduler: z.string().optional(),
  batch_size: int(1, 64).optional(),
  n_iter: int(1, 1000).optional(),
  steps: int(1, 1000).optional(),
  cfg_scale: z.number().min(0).max(100).optional(),
  width: int(8, 8192).optional(),
  height: int(8, 8192).optional(),
  restore_faces: z.boolean().nullable().optional(),
  tiling: z.boolean().nullable().optional(),
  denoising_strength: z.number().min(0).max(1).nullable().optional(),
  override_settings: z.record(z.string(), z.unknown()).nullable().optional(),
  override_settings_restore_afterwards: z.boolean().optional(),
  script_name: z.string().nullable().optional(),
  script_args: z.array(z.unknown()).optional(),
  send_images: z.boolean().optional(),
  save_images: z.boolean().optional(),
  alwayson_scripts: z.record(z.string(), z.unknown()).optional(),
};

export const txt2imgRequestSchema = z.looseObject({
  ...routingFields,
  ...generationFields,
  enable_hr: z.boolean().optional(),
  hr_scale: z.number().min(1).max(8).optional(),
  hr_upscaler: z.string().nullable().optional(),
  hr_second_pass_steps: int(0, 1000).optional(),
  hr_resize_x: int(0, 8192).optional(),
  hr_resize_y: int(0, 8192).optional(),
});

const imageString = z.string().min(1, "must be a base64 image or the key of an upload");

export const img2imgRequestSchema = z.looseObject({
  ...routingFields,
  ...generationFields,
  init_images: z.array(imageString).min(1, "img2img needs at least one init image"),
  mask: imageString.nullable().optional(),
  resize_mode: int(0, 3).optional(),
  mask_blur: int(0, 256).optional(),
  inpainting_fill: int(0, 3).optional(),
  inpaint_full_res: z.union([z.boolean(), z.number()]).optional(),
  inpaint_full_res_padding: int(0, 4096).optional(),
  inpainting_mask_invert: int(0, 1).optional(),
  include_init_images: z.boolean().optional(),
});

const extrasFields = {
  ...routingFields,
  resize_mode: z.union([z.literal(0), z.literal(1)]).optional(),
  show_extras_results: z.boolean().optional(),
  gfpgan_visibility: z.number().min(0).max(1).optional(),
  codeformer_visibility: z.number().min(0).max(1).optional(),
  codeformer_weight: z.number().min(0).max(1).optional(),
  upscaling_resize: z.number().gt(0).max(8).optional(),
  upscaling_resize_w: int(1, 8192).optional(),
  upscaling_resize_h: int(1, 8192).optional(),
  upscaling_crop: z.boolean().optional(),
  upscaler_1: z.string().optional(),
  upscaler_2: z.string().optional(),
  extras_upscaler_2_visibility: z.number().min(0).max(1).optional(),
  upscale_first: z.boolean().optional(),
};

export const extrasSingleRequestSchema = z.looseObject({ ...extrasFields, image: imageString });

export const extrasBatchRequestSchema = z.looseObject({
  ...extrasFields,
  imageList: z.array(z.looseObject({ data: imageString, name: z.string() })).min(1),
});
