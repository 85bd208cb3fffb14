// sd-webui's default settings (`shared.opts`) for the keys both sides show: the gateway's
// GET /sdapi/v1/options (src/sdapi/options.ts) and the emulator's settings dict
// (emulator/options-store.ts), which each layer their own keys on top. Pure data with no
// imports: the Worker imports it without an extension, the emulator (Node ESM) with `.ts`.

/** sd-webui's defaults for the settings clients read most (a real sd-webui has hundreds more). */
export const SDWEBUI_DEFAULT_OPTIONS: Readonly<Record<string, unknown>> = {
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

/** sd-webui's latent upscale modes for `hr_upscaler` (`shared.latent_upscale_modes`, modules/shared.py): every install has them. */
export const LATENT_UPSCALE_MODE_NAMES = [
  "Latent",
  "Latent (antialiased)",
  "Latent (bicubic)",
  "Latent (bicubic antialiased)",
  "Latent (nearest)",
  "Latent (nearest-exact)",
] as const;
