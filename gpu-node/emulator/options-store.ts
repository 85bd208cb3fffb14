// sd-webui's settings (`shared.opts`): a flat dict that GET /options returns whole and POST
// /options or a request's `override_settings` change. Unknown keys are kept as given.

export type OptionsDict = Record<string, unknown>;

function defaultOptions(livePreviewEvery: number): OptionsDict {
  return {
    samples_save: true,
    samples_format: "png",
    samples_filename_pattern: "",
    save_images_add_number: true,
    grid_save: true,
    grid_format: "png",
    grid_extended_filename: false,
    grid_only_if_multiple: true,
    grid_prevent_empty_spots: false,
    n_rows: -1,
    enable_pnginfo: true,
    save_txt: false,
    jpeg_quality: 80,
    webp_lossless: false,
    img_downscale_threshold: 4.0,
    target_side_length: 4000,
    img_max_size_mp: 200,
    outdir_samples: "",
    outdir_txt2img_samples: "outputs/txt2img-images",
    outdir_img2img_samples: "outputs/img2img-images",
    outdir_extras_samples: "outputs/extras-images",
    outdir_grids: "",
    outdir_txt2img_grids: "outputs/txt2img-grids",
    outdir_img2img_grids: "outputs/img2img-grids",
    ESRGAN_tile: 192,
    ESRGAN_tile_overlap: 8,
    face_restoration: false,
    face_restoration_model: "CodeFormer",
    code_former_weight: 0.5,
    memmon_poll_rate: 8,
    samples_log_stdout: false,
    multiple_tqdm: true,
    sd_model_checkpoint: null,
    sd_checkpoints_limit: 1,
    sd_checkpoints_keep_in_cpu: true,
    sd_checkpoint_cache: 0,
    sd_unet: "Automatic",
    enable_quantization: false,
    enable_emphasis: true,
    enable_batch_seeds: true,
    comma_padding_backtrack: 20,
    CLIP_stop_at_last_layers: 1,
    upcast_attn: false,
    randn_source: "GPU",
    tiling: false,
    hires_fix_refiner_pass: "second pass",
    sd_vae_checkpoint_cache: 0,
    sd_vae: "Automatic",
    sd_vae_overrides_per_model_preferences: true,
    auto_vae_precision: true,
    sd_vae_encode_method: "Full",
    sd_vae_decode_method: "Full",
    inpainting_mask_weight: 1.0,
    initial_noise_multiplier: 1.0,
    img2img_extra_noise: 0.0,
    img2img_color_correction: false,
    img2img_fix_steps: false,
    img2img_background_color: "#ffffff",
    eta_ddim: 0.0,
    eta_ancestral: 1.0,
    eta_noise_seed_delta: 0,
    s_churn: 0.0,
    s_min_uncond: 0.0,
    s_tmin: 0.0,
    s_tmax: 0.0,
    s_noise: 1.0,
    k_sched_type: "Automatic",
    always_discard_next_to_last_sigma: false,
    sd_lora: "None",
    lora_preferred_name: "Alias from file",
    lora_add_hashes_to_infotext: true,
    show_progress_bar: true,
    live_previews_enable: true,
    live_previews_image_format: "png",
    show_progress_grid: true,
    show_progress_every_n_steps: livePreviewEvery,
    show_progress_type: "Approx NN",
    live_preview_content: "Prompt",
    live_preview_refresh_period: 1000,
    return_grid: true,
    do_not_show_images: false,
    js_modal_lightbox: true,
    api_enable_requests: true,
    api_forbid_local_requests: true,
    api_useragent: "",
    disable_weights_auto_swap: true,
    sd_checkpoint_hash: "",
  };
}

export class OptionsStore {
  // A Map, so that keys such as "__proto__" from a request body are stored like any other.
  private readonly values: Map<string, unknown>;

  constructor(livePreviewEvery: number) {
    this.values = new Map(Object.entries(defaultOptions(livePreviewEvery)));
  }

  get(key: string): unknown {
    return this.values.get(key);
  }

  set(key: string, value: unknown): void {
    this.values.set(key, value);
  }

  all(): OptionsDict {
    return Object.fromEntries(this.values);
  }

  /** Applies `overrides` and returns a function that puts the previous values back. */
  override(overrides: OptionsDict): () => void {
    const previous = new Map(this.values);
    for (const [key, value] of Object.entries(overrides)) this.values.set(key, value);
    return () => {
      for (const key of Object.keys(overrides)) {
        if (previous.has(key)) this.values.set(key, previous.get(key));
        else this.values.delete(key);
      }
    };
  }
}
