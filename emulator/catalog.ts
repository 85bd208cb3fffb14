// The fixed lists a stock sd-webui v1.10 reports (samplers, schedulers, upscalers, scripts …)
// and the name lookups that requests are checked against.

import { LATENT_UPSCALE_MODE_NAMES } from "../src/protocol/sdwebui-defaults.ts";

export interface Sampler {
  name: string;
  aliases: string[];
  options: Record<string, string>;
}

export interface Scheduler {
  name: string;
  label: string;
  aliases: string[] | null;
  default_rho: number;
  need_inner_model: boolean;
}

export const SAMPLERS: readonly Sampler[] = [
  { name: "DPM++ 2M", aliases: ["k_dpmpp_2m"], options: { scheduler: "karras" } },
  { name: "DPM++ SDE", aliases: ["k_dpmpp_sde"], options: { scheduler: "karras", second_order: "True", brownian_noise: "True" } },
  { name: "DPM++ 2M SDE", aliases: ["k_dpmpp_2m_sde"], options: { scheduler: "exponential", brownian_noise: "True" } },
  { name: "DPM++ 2M SDE Heun", aliases: ["k_dpmpp_2m_sde_heun"], options: { scheduler: "exponential", brownian_noise: "True", solver_type: "heun" } },
  { name: "DPM++ 2S a", aliases: ["k_dpmpp_2s_a"], options: { scheduler: "karras", uses_ensd: "True", second_order: "True" } },
  { name: "DPM++ 3M SDE", aliases: ["k_dpmpp_3m_sde"], options: { scheduler: "exponential", discard_next_to_last_sigma: "True", brownian_noise: "True" } },
  { name: "Euler a", aliases: ["k_euler_a", "k_euler_ancestral"], options: { uses_ensd: "True" } },
  { name: "Euler", aliases: ["k_euler"], options: {} },
  { name: "LMS", aliases: ["k_lms"], options: {} },
  { name: "Heun", aliases: ["k_heun"], options: { second_order: "True" } },
  { name: "DPM2", aliases: ["k_dpm_2"], options: { scheduler: "karras", discard_next_to_last_sigma: "True", second_order: "True" } },
  { name: "DPM2 a", aliases: ["k_dpm_2_a"], options: { scheduler: "karras", discard_next_to_last_sigma: "True", uses_ensd: "True", second_order: "True" } },
  { name: "DPM fast", aliases: ["k_dpm_fast"], options: { uses_ensd: "True" } },
  { name: "DPM adaptive", aliases: ["k_dpm_ad"], options: { uses_ensd: "True" } },
  { name: "Restart", aliases: ["restart"], options: { scheduler: "karras", second_order: "True" } },
  { name: "DDIM", aliases: ["ddim"], options: { default_eta_is_0: "True", uses_ensd: "True" } },
  { name: "DDIM CFG++", aliases: ["ddim_cfgpp"], options: {} },
  { name: "PLMS", aliases: ["plms"], options: {} },
  { name: "UniPC", aliases: ["unipc"], options: {} },
  { name: "LCM", aliases: ["k_lcm"], options: {} },
];

const scheduler = (name: string, label: string, extra: Partial<Scheduler> = {}): Scheduler => ({
  name,
  label,
  aliases: null,
  default_rho: -1,
  need_inner_model: false,
  ...extra,
});

export const SCHEDULERS: readonly Scheduler[] = [
  scheduler("automatic", "Automatic"),
  scheduler("uniform", "Uniform", { need_inner_model: true }),
  scheduler("karras", "Karras", { default_rho: 7 }),
  scheduler("exponential", "Exponential"),
  scheduler("polyexponential", "Polyexponential", { default_rho: 1 }),
  scheduler("sgm_uniform", "SGM Uniform", { aliases: ["SGMUniform"], need_inner_model: true }),
  scheduler("kl_optimal", "KL Optimal"),
  scheduler("align_your_steps", "Align Your Steps"),
  scheduler("simple", "Simple"),
  scheduler("normal", "Normal"),
  scheduler("ddim", "DDIM"),
  scheduler("beta", "Beta"),
];

/** The upscalers of a stock install; ESRGAN_4x stands for the ESRGAN family only while models/ESRGAN is empty. */
const BUILT_IN_UPSCALERS: readonly string[] = [
  "None",
  "Lanczos",
  "Nearest",
  "DAT x2",
  "DAT x3",
  "DAT x4",
  "ESRGAN_4x",
  "LDSR",
  "R-ESRGAN 4x+",
  "R-ESRGAN 4x+ Anime6B",
  "ScuNET GAN",
  "ScuNET PSNR",
  "SwinIR 4x",
];
const ESRGAN_PLACEHOLDER = "ESRGAN_4x";
const UNSORTED_UPSCALERS = ["None", "Lanczos", "Nearest"];
const UPSCALER_SCALE = 4;

export interface UpscalerItem {
  name: string;
  model_name: string | null;
  model_path: string | null;
  model_url: string | null;
  scale: number;
}

/**
 * `GET /sdapi/v1/upscalers` (modules/esrgan_model.py UpscalerESRGAN, modules/shared_items.py):
 * each model file in models/ESRGAN is an upscaler named by its stem, replacing the ESRGAN_4x
 * placeholder; None, Lanczos and Nearest come first, the rest by name.
 */
export function listUpscalers(esrganFiles: readonly { name: string; filename: string }[]): UpscalerItem[] {
  const builtIn = BUILT_IN_UPSCALERS.filter((name) => esrganFiles.length === 0 || name !== ESRGAN_PLACEHOLDER).map((name) => ({
    name,
    model_name: UNSORTED_UPSCALERS.includes(name) ? null : name,
    model_path: null,
    model_url: null,
    scale: UPSCALER_SCALE,
  }));
  const files = esrganFiles.map((file) => ({
    name: file.name,
    model_name: ESRGAN_PLACEHOLDER,
    model_path: file.filename,
    model_url: null,
    scale: UPSCALER_SCALE,
  }));
  const rank = (name: string) => (UNSORTED_UPSCALERS.includes(name) ? "" : name.toLowerCase());
  return [...builtIn, ...files].sort((a, b) => (rank(a.name) < rank(b.name) ? -1 : rank(a.name) > rank(b.name) ? 1 : 0));
}

export const LATENT_UPSCALE_MODES = LATENT_UPSCALE_MODE_NAMES.map((name) => ({ name }));

export const FACE_RESTORERS = [
  { name: "CodeFormer", cmd_dir: null },
  { name: "GFPGAN", cmd_dir: null },
];

export const REALESRGAN_MODELS = [
  { name: "R-ESRGAN General 4xV3", path: "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.5.0/realesr-general-x4v3.pth", scale: 4 },
  { name: "R-ESRGAN General WDN 4xV3", path: "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.5.0/realesr-general-wdn-x4v3.pth", scale: 4 },
  { name: "R-ESRGAN AnimeVideo", path: "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.5.0/realesr-animevideov3.pth", scale: 4 },
  { name: "R-ESRGAN 4x+", path: "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth", scale: 4 },
  { name: "R-ESRGAN 4x+ Anime6B", path: "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.2.4/RealESRGAN_x4plus_anime_6B.pth", scale: 4 },
  { name: "R-ESRGAN 2x+", path: "https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.1/RealESRGAN_x2plus.pth", scale: 2 },
];

export type GenerationKind = "txt2img" | "img2img";

/** Selectable scripts (chosen with `script_name`), by lower-case title. */
const SELECTABLE_SCRIPTS: Record<GenerationKind, readonly string[]> = {
  txt2img: ["prompt matrix", "prompts from file or textbox", "x/y/z plot"],
  img2img: [
    "img2img alternative test",
    "loopback",
    "outpainting mk2",
    "poor man's outpainting",
    "prompt matrix",
    "prompts from file or textbox",
    "sd upscale",
    "x/y/z plot",
  ],
};

/**
 * Always-on scripts (addressed through `alwayson_scripts`) of a stock install, by lower-case
 * title; "controlnet" joins them only when the sd-webui-controlnet extension is installed.
 */
const ALWAYS_ON_SCRIPTS: Record<GenerationKind, readonly string[]> = {
  txt2img: ["comments", "extra options", "hypertile", "refiner", "sampler", "seed"],
  img2img: ["comments", "extra options", "hypertile", "refiner", "sampler", "seed", "soft inpainting"],
};
const CONTROLNET_SCRIPT = "controlnet";

function alwaysOnScripts(kind: GenerationKind, controlnet: boolean): readonly string[] {
  return controlnet ? [...ALWAYS_ON_SCRIPTS[kind], CONTROLNET_SCRIPT].sort() : ALWAYS_ON_SCRIPTS[kind];
}

export function isSelectableScript(kind: GenerationKind, title: string): boolean {
  return SELECTABLE_SCRIPTS[kind].includes(title.toLowerCase());
}

export function isAlwaysOnScript(kind: GenerationKind, title: string, controlnet: boolean): boolean {
  return alwaysOnScripts(kind, controlnet).includes(title.toLowerCase());
}

/** `GET /sdapi/v1/scripts`. */
export function scriptLists(controlnet: boolean) {
  return {
    txt2img: [...SELECTABLE_SCRIPTS.txt2img, ...alwaysOnScripts("txt2img", controlnet)],
    img2img: [...SELECTABLE_SCRIPTS.img2img, ...alwaysOnScripts("img2img", controlnet)],
  };
}

/** `GET /sdapi/v1/script-info`. */
export function scriptInfo(controlnet: boolean) {
  return (["txt2img", "img2img"] as const).flatMap((kind) => [
    ...SELECTABLE_SCRIPTS[kind].map((name) => ({ name, is_alwayson: false, is_img2img: kind === "img2img", args: [] })),
    ...alwaysOnScripts(kind, controlnet).map((name) => ({ name, is_alwayson: true, is_img2img: kind === "img2img", args: [] })),
  ]);
}

/**
 * sd-webui v1.10's `get_sampler_and_scheduler` (modules/sd_samplers.py), which the API calls
 * before `validate_sampler_name`: a trailing scheduler name in the sampler name ("DPM++ 2M
 * Karras") selects that scheduler; an unknown scheduler means Automatic; the sampler is looked up
 * by its exact name (`all_samplers_map`, no aliases, case-sensitive) and an unknown one silently
 * becomes the default sampler (`samplers[0]`, DPM++ 2M), so the API never answers "Sampler not
 * found"; a scheduler equal to the sampler's own default is reported as Automatic.
 */
export function resolveSampler(samplerName: string, schedulerName: string | null): { sampler: Sampler; scheduler: Scheduler } {
  const automatic = SCHEDULERS[0]!;
  const defaultSampler = SAMPLERS[0]!;
  let scheduler = SCHEDULERS.find((s) => s.name === schedulerName || s.label === schedulerName) ?? automatic;
  let name = samplerName || defaultSampler.name;
  for (const candidate of SCHEDULERS) {
    for (const option of [candidate.label, candidate.name, ...(candidate.aliases ?? [])]) {
      if (name.endsWith(` ${option}`)) {
        scheduler = candidate;
        name = name.slice(0, -option.length - 1);
        break;
      }
    }
  }
  const sampler = SAMPLERS.find((s) => s.name === name) ?? defaultSampler;
  if (sampler.options.scheduler === scheduler.name) scheduler = automatic;
  return { sampler, scheduler };
}
