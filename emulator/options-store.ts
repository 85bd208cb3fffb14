// sd-webui's settings (`shared.opts`): a flat dict that GET /options returns whole and POST
// /options or a request's `override_settings` change. Unknown keys are kept as given.

import { readFile, writeFile } from "node:fs/promises";
import { SDWEBUI_DEFAULT_OPTIONS } from "../src/protocol/sdwebui-defaults.ts";

export type OptionsDict = Record<string, unknown>;

function defaultOptions(livePreviewEvery: number): OptionsDict {
  return {
    ...SDWEBUI_DEFAULT_OPTIONS,
    show_progress_every_n_steps: livePreviewEvery,
    // The rest of sd-webui's defaults that the emulator shows and the gateway does not.
    samples_filename_pattern: "",
    grid_extended_filename: false,
    grid_prevent_empty_spots: false,
    n_rows: -1,
    save_txt: false,
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
    memmon_poll_rate: 8,
    samples_log_stdout: false,
    multiple_tqdm: true,
    sd_checkpoint_cache: 0,
    enable_quantization: false,
    enable_emphasis: true,
    enable_batch_seeds: true,
    comma_padding_backtrack: 20,
    upcast_attn: false,
    randn_source: "GPU",
    tiling: false,
    hires_fix_refiner_pass: "second pass",
    sd_vae_checkpoint_cache: 0,
    auto_vae_precision: true,
    sd_vae_encode_method: "Full",
    sd_vae_decode_method: "Full",
    img2img_extra_noise: 0.0,
    img2img_background_color: "#ffffff",
    s_tmax: 0.0,
    always_discard_next_to_last_sigma: false,
    lora_preferred_name: "Alias from file",
    lora_add_hashes_to_infotext: true,
    lora_not_found_warning_console: false,
    lora_not_found_gradio_warning: false,
    add_model_hash_to_info: true,
    add_model_name_to_info: true,
    add_vae_hash_to_info: true,
    add_vae_name_to_info: true,
    textual_inversion_add_hashes_to_infotext: true,
    show_progress_bar: true,
    live_previews_image_format: "png",
    show_progress_grid: true,
    show_progress_type: "Approx NN",
    live_preview_content: "Prompt",
    live_preview_refresh_period: 1000,
    do_not_show_images: false,
    js_modal_lightbox: true,
    api_useragent: "",
    disable_weights_auto_swap: true,
  };
}

export class OptionsStore {
  // A Map, so that keys such as "__proto__" from a request body are stored like any other.
  private readonly values: Map<string, unknown>;

  /** `configFile`: sd-webui's DATA/config.json, read at start and written by POST /options; null = memory only. */
  constructor(
    livePreviewEvery: number,
    private readonly configFile: string | null = null,
  ) {
    this.values = new Map(Object.entries(defaultOptions(livePreviewEvery)));
  }

  /** modules/options.py Options.load: saved values over the defaults (a missing or broken file is ignored). */
  async load(): Promise<void> {
    if (!this.configFile) return;
    try {
      const saved: unknown = JSON.parse(await readFile(this.configFile, "utf8"));
      if (saved && typeof saved === "object" && !Array.isArray(saved)) for (const [key, value] of Object.entries(saved)) this.values.set(key, value);
    } catch {
      // first start: no config.json yet
    }
  }

  /** Options.save, as set_config does after every POST /options. */
  async save(): Promise<void> {
    if (this.configFile) await writeFile(this.configFile, JSON.stringify(this.all(), null, 4));
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
