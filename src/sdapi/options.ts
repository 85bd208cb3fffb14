// sd-webui's settings dict, per caller: GET /sdapi/v1/options shows sd-webui defaults under the
// caller's key options (the same store as POST /options), with `sd_model_checkpoint` as the
// model's title; POST /sdapi/v1/options stores changes there. Setting `sd_model_checkpoint` sets
// the caller's default checkpoint; an unknown one fails as sd-webui fails.
import { readKeyOptions, updateKeyOptions } from "../db/key-options";
import { checkpointTitle, findModel, resolveModel } from "../db/models";
import { SdapiError } from "./errors";

/** sd-webui's defaults for the settings clients read most (a real sd-webui has hundreds more). */
export const WEBUI_OPTION_DEFAULTS: Readonly<Record<string, unknown>> = {
  samples_save: true,
  samples_format: "png",
  save_images_add_number: true,
  grid_save: true,
  grid_format: "png",
  grid_only_if_multiple: true,
  enable_pnginfo: true,
  jpeg_quality: 80,
  webp_lossless: false,
  face_restoration: false,
  face_restoration_model: "CodeFormer",
  code_former_weight: 0.5,
  sd_model_checkpoint: null,
  sd_checkpoint_hash: "",
  sd_checkpoints_limit: 1,
  sd_checkpoints_keep_in_cpu: true,
  sd_unet: "Automatic",
  CLIP_stop_at_last_layers: 1,
  sd_vae: "Automatic",
  sd_vae_overrides_per_model_preferences: true,
  inpainting_mask_weight: 1.0,
  initial_noise_multiplier: 1.0,
  img2img_color_correction: false,
  img2img_fix_steps: false,
  eta_ddim: 0.0,
  eta_ancestral: 1.0,
  eta_noise_seed_delta: 0,
  s_churn: 0.0,
  s_min_uncond: 0.0,
  s_tmin: 0.0,
  s_noise: 1.0,
  k_sched_type: "Automatic",
  sd_lora: "None",
  live_previews_enable: true,
  show_progress_every_n_steps: 10,
  return_grid: true,
  api_enable_requests: true,
  api_forbid_local_requests: true,
};

/** Shown but derived: never stored as a caller option. */
const DERIVED_KEYS = new Set(["sd_checkpoint_hash"]);

export async function optionsView(db: D1Database, owner: string): Promise<Record<string, unknown>> {
  const options = await readKeyOptions(db, owner);
  const view: Record<string, unknown> = { ...WEBUI_OPTION_DEFAULTS, ...options };
  if (typeof options.sd_model_checkpoint === "string") {
    const model = await findModel(db, options.sd_model_checkpoint);
    if (model) {
      view.sd_model_checkpoint = checkpointTitle(model);
      view.sd_checkpoint_hash = model.sha256 ?? "";
    }
  }
  return view;
}

/**
 * Applies a POST /sdapi/v1/options body to the caller's options. Values equal to sd-webui's
 * defaults are not stored (and drop an earlier override), so a client that posts back the whole
 * dict it read does not pin every default into each of its requests.
 */
export async function setOptions(db: D1Database, owner: string, body: Record<string, unknown>): Promise<void> {
  const current = await readKeyOptions(db, owner);
  const changes: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    if (DERIVED_KEYS.has(key) || key === "sd_model_checkpoint") continue;
    const isDefault = key in WEBUI_OPTION_DEFAULTS && JSON.stringify(value) === JSON.stringify(WEBUI_OPTION_DEFAULTS[key]);
    if (isDefault) {
      if (key in current) changes[key] = null;
      continue;
    }
    changes[key] = value;
  }
  const checkpoint = body.sd_model_checkpoint;
  if (checkpoint !== undefined && checkpoint !== null) {
    const alias = typeof checkpoint === "string" ? checkpoint : JSON.stringify(checkpoint);
    const model = await resolveModel(db, alias);
    // sd-webui lists only checkpoints on disk: a registered model without a file is not one.
    if (!model || !model.sha256) throw SdapiError.runtime(`model '${alias}' not found`);
    changes.sd_model_checkpoint = model.name;
  }
  if (Object.keys(changes).length > 0) await updateKeyOptions(db, owner, changes);
}
