// txt2img and img2img as sd-webui's API runs them: validate, queue on the global lock, load the
// checkpoint the request or the settings name, sample image after image (steps × stepMs per
// image), and answer {images, parameters, info} with `info` as a JSON string.
import { randomInt } from "node:crypto";
import { applyAddons, resolveAddons, stripExtraNetworks } from "./addons.ts";
import {
  type GenerationKind,
  isAlwaysOnScript,
  isSelectableScript,
  LATENT_UPSCALE_MODES,
  listUpscalers,
  resolveSampler,
  type Sampler,
  type Scheduler,
} from "./catalog.ts";
import type { EmulatorContext } from "./context.ts";
import { drawComposition, drawNoise } from "./draw.ts";
import { httpException, pythonException } from "./errors.ts";
import type { PreviewSource } from "./generation-state.ts";
import { encodePng } from "./image-codec.ts";
import { decodeInputImage } from "./image-input.ts";
import { blend, blendByMask, cropCenter, fitWithin, grid, type RgbImage, resize } from "./image-ops.ts";
import { createInfotext, type InfotextParams, parseInfotext } from "./infotext.ts";
import { type LoadedCheckpoint, selectCheckpoint } from "./loaded-model.ts";
import { type GenerationRequest, type Img2ImgRequest, img2imgRequestSchema, parseBody, type Txt2ImgRequest, txt2imgRequestSchema } from "./request-schemas.ts";

const WEBUI_VERSION = "v1.10.1";
const MAX_SIDE_PX = 2048;
const MIN_SIDE_PX = 8;
const PREVIEW_MAX_SIDE_PX = 512;
/** How far img2img moves from the init image at denoising strength 1, so it always shows through. */
const IMG2IMG_MAX_CHANGE = 0.6;
/** Beyond these the emulator fails as a GPU out of memory would, rather than exhaust its own memory. */
const MAX_BATCH_PIXELS = 16 * 1024 * 1024;
const MAX_REQUEST_PIXELS = 64 * 1024 * 1024;

export interface GenerationResponse {
  images: string[];
  parameters: Record<string, unknown>;
  info: string;
}

interface InitImages {
  images: RgbImage[];
  mask: RgbImage | null;
  invertMask: boolean;
  /** 0 just resize, 1 crop and resize (other modes are treated as 0). */
  resizeMode: number;
  denoisingStrength: number;
  maskBlur: number;
}

interface Hires {
  width: number;
  height: number;
  steps: number;
  /** What the infotext and `extra_generation_params` say about the hires pass. */
  params: InfotextParams;
}

interface Plan {
  kind: GenerationKind;
  taskId: string;
  request: GenerationRequest;
  parameters: Record<string, unknown>;
  sampler: Sampler;
  scheduler: Scheduler;
  batchSize: number;
  init: InitImages | null;
  hires: Hires | null;
}

interface Output {
  image: RgbImage;
  infotext: string;
}

function createTaskId(kind: GenerationKind): string {
  const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  return `task(${kind}-${Array.from({ length: 7 }, () => chars[randomInt(chars.length)]).join("")})`;
}

const randomSeed = () => randomInt(4294967294);
const clampSide = (px: number) => Math.min(MAX_SIDE_PX, Math.max(MIN_SIDE_PX, Math.round(px)));
const range = (count: number) => Array.from({ length: count }, (_, i) => i);

/** Request fields that an `infotext` fills when the request did not set them itself. */
const INFOTEXT_FIELDS: [param: string, field: string, type: "string" | "int" | "float"][] = [
  ["Prompt", "prompt", "string"],
  ["Negative prompt", "negative_prompt", "string"],
  ["Steps", "steps", "int"],
  ["Sampler", "sampler_name", "string"],
  ["Schedule type", "scheduler", "string"],
  ["CFG scale", "cfg_scale", "float"],
  ["Seed", "seed", "int"],
  ["Size-1", "width", "int"],
  ["Size-2", "height", "int"],
  ["Variation seed", "subseed", "int"],
  ["Variation seed strength", "subseed_strength", "float"],
  ["Denoising strength", "denoising_strength", "float"],
];

function applyInfotext(ctx: EmulatorContext, request: GenerationRequest, body: Record<string, unknown>): void {
  if (!request.infotext) return;
  const params = parseInfotext(request.infotext);
  const fields = request as Record<string, unknown>;
  for (const [param, field, type] of INFOTEXT_FIELDS) {
    const value = params[param];
    if (field in body || value === undefined) continue;
    if (type === "string") fields[field] = String(value);
    else if (Number.isFinite(Number(value))) fields[field] = type === "int" ? Math.trunc(Number(value)) : Number(value);
  }
  request.override_settings ??= {};
  const clipSkip = Number(params["Clip skip"]);
  if (!("CLIP_stop_at_last_layers" in request.override_settings) && clipSkip !== ctx.options.get("CLIP_stop_at_last_layers")) {
    request.override_settings["CLIP_stop_at_last_layers"] = clipSkip;
  }
}

/** The checks sd-webui makes before queueing, in its order: infotext, script, sampler, always-on scripts. */
function checkRequest(ctx: EmulatorContext, kind: GenerationKind, request: GenerationRequest, body: Record<string, unknown>) {
  applyInfotext(ctx, request, body);
  if (request.script_name && !isSelectableScript(kind, request.script_name)) {
    throw httpException(422, `Script '${request.script_name}' not found`);
  }
  const resolved = resolveSampler(request.sampler_name || request.sampler_index, request.scheduler);
  for (const title of Object.keys(request.alwayson_scripts)) {
    if (isSelectableScript(kind, title)) throw httpException(422, "Cannot have a selectable script in the always on scripts params");
    if (!isAlwaysOnScript(kind, title, ctx.controlnet)) throw httpException(422, `always on script ${title} not found`);
  }
  return resolved;
}

const asBody = (body: unknown): Record<string, unknown> =>
  body !== null && typeof body === "object" && !Array.isArray(body) ? (body as Record<string, unknown>) : {};

export async function txt2img(ctx: EmulatorContext, body: unknown): Promise<GenerationResponse> {
  const request: Txt2ImgRequest = parseBody(txt2imgRequestSchema, body);
  const { sampler, scheduler } = checkRequest(ctx, "txt2img", request, asBody(body));
  let hires: Hires | null = null;
  if (request.enable_hr) {
    // processing.py sample(): an upscaler that is neither a latent mode nor a known upscaler raises.
    const upscaler = request.hr_upscaler;
    const known =
      upscaler === null ||
      LATENT_UPSCALE_MODES.some((mode) => mode.name === upscaler) ||
      listUpscalers(ctx.addons.upscaler.list()).some((item) => item.name === upscaler);
    if (!known) throw pythonException("Exception", `could not find upscaler named ${upscaler}`);
    const { width, height, hr_resize_x: x, hr_resize_y: y } = request;
    const byScale = x === 0 && y === 0;
    const [hiresWidth, hiresHeight] = byScale
      ? [width * request.hr_scale, height * request.hr_scale]
      : y === 0
        ? [x, (x * height) / width]
        : x === 0
          ? [(y * width) / height, y]
          : [x, y];
    hires = {
      width: clampSide(hiresWidth),
      height: clampSide(hiresHeight),
      steps: request.hr_second_pass_steps || request.steps,
      params: {
        "Hires upscale": byScale ? request.hr_scale : null,
        "Hires resize": byScale ? null : `${clampSide(hiresWidth)}x${clampSide(hiresHeight)}`,
        "Hires steps": request.hr_second_pass_steps || null,
        "Hires upscaler": request.hr_upscaler,
      },
    };
  }
  return generate(ctx, {
    kind: "txt2img",
    taskId: request.force_task_id || createTaskId("txt2img"),
    request,
    parameters: { ...request },
    sampler,
    scheduler,
    batchSize: Math.max(1, request.batch_size),
    init: null,
    hires,
  });
}

export async function img2img(ctx: EmulatorContext, body: unknown): Promise<GenerationResponse> {
  const request: Img2ImgRequest = parseBody(img2imgRequestSchema, body);
  if (request.init_images === null) throw httpException(404, "Init image not found");
  const mask = request.mask ? (await decodeInputImage(request.mask, ctx.options)).image : null;
  const { sampler, scheduler } = checkRequest(ctx, "img2img", request, asBody(body));
  const images = await Promise.all(request.init_images.map(async (encoded) => (await decodeInputImage(encoded, ctx.options)).image));
  if (images.length === 0) throw pythonException("IndexError", "list index out of range");
  let batchSize = Math.max(1, request.batch_size);
  if (images.length > 1) {
    if (images.length > batchSize) {
      throw pythonException("RuntimeError", `bad number of images passed: ${images.length}; expecting ${batchSize} or less`);
    }
    batchSize = images.length;
  }
  const parameters: Record<string, unknown> = { ...request };
  delete parameters["include_init_images"];
  if (!request.include_init_images) {
    parameters["init_images"] = null;
    parameters["mask"] = null;
  }
  return generate(ctx, {
    kind: "img2img",
    taskId: request.force_task_id || createTaskId("img2img"),
    request,
    parameters,
    sampler,
    scheduler,
    batchSize,
    init: {
      images,
      mask,
      invertMask: request.inpainting_mask_invert === 1,
      resizeMode: request.resize_mode,
      denoisingStrength: request.denoising_strength,
      maskBlur: request.mask_blur ?? request.mask_blur_x,
    },
    hires: null,
  });
}

async function generate(ctx: EmulatorContext, plan: Plan): Promise<GenerationResponse> {
  ctx.state.queueTask(plan.taskId);
  const release = await ctx.lock.acquire();
  let restoreSettings = () => {};
  try {
    if (ctx.state.closed) throw new Error("the emulator is closing");
    ctx.state.begin(`scripts_${plan.kind}`);
    ctx.state.startTask(plan.taskId);
    const prepared = await prepareSettings(ctx, plan.request);
    restoreSettings = prepared.restore;
    const response = await sampleAll(ctx, plan, prepared.checkpoint);
    ctx.generations++;
    return response;
  } finally {
    restoreSettings();
    ctx.state.finishTask(plan.taskId);
    ctx.state.end();
    release();
  }
}

/**
 * sd-webui's `process_images` prologue: an unknown `override_settings.sd_model_checkpoint` is
 * dropped; the override checkpoint, else the settings one, is loaded; the overrides are applied
 * and, with `override_settings_restore_afterwards`, put back afterwards (the weights stay).
 */
async function prepareSettings(ctx: EmulatorContext, request: GenerationRequest) {
  const overrides = { ...(request.override_settings ?? {}) };
  const requested = overrides["sd_model_checkpoint"];
  const overrideCheckpoint = typeof requested === "string" ? ctx.checkpoints.resolve(requested) : undefined;
  delete overrides["sd_model_checkpoint"];
  await ctx.model.ensure(overrideCheckpoint ?? selectCheckpoint(ctx.checkpoints, ctx.options));
  if (overrideCheckpoint) overrides["sd_model_checkpoint"] = overrideCheckpoint.title;
  const restore = ctx.options.override(overrides);
  const loaded = ctx.model.current;
  if (!loaded) throw new Error("no checkpoint in memory after a load");
  return { checkpoint: loaded, restore: request.override_settings_restore_afterwards ? restore : () => {} };
}

function checkMemory(batchSize: number, nIter: number, width: number, height: number): void {
  const batchPixels = batchSize * width * height;
  if (batchPixels <= MAX_BATCH_PIXELS && batchPixels * nIter <= MAX_REQUEST_PIXELS) return;
  throw pythonException(
    "OutOfMemoryError",
    `CUDA out of memory: ${batchSize}x${width}x${height} per batch, ${nIter} batches ` +
      `(the emulator allows ${MAX_BATCH_PIXELS} pixels per batch and ${MAX_REQUEST_PIXELS} per request)`,
  );
}

/**
 * Runs one sampler pass of `steps` steps, each ending `stepMs` after the previous one counted
 * from `startMs` (so drawing time before the pass is absorbed); returns the fraction done (1
 * unless stopped early).
 */
async function samplePass(ctx: EmulatorContext, steps: number, stepMs: number, startMs: number, preview: PreviewSource): Promise<number> {
  const samplingSteps = Math.max(1, steps);
  ctx.state.startSampling(samplingSteps, preview);
  for (let step = 1; step <= samplingSteps; step++) {
    await ctx.state.sleepUntil(startMs + step * stepMs);
    if (ctx.state.stopRequested) return (step - 1) / samplingSteps;
    ctx.state.samplingStep = step;
  }
  return 1;
}

/** A preview source that scales its two end pictures down once, on first use. */
function previewBetween(start: () => RgbImage, end: RgbImage): PreviewSource {
  let small: { start: RgbImage; end: RgbImage } | null = null;
  return (fraction) => {
    small ??= (() => {
      const smallEnd = fitWithin(end, PREVIEW_MAX_SIDE_PX);
      return { start: resize(start(), smallEnd.width, smallEnd.height), end: smallEnd };
    })();
    return blend(small.start, small.end, fraction);
  };
}

function fitInit(image: RgbImage, width: number, height: number, resizeMode: number): RgbImage {
  if (resizeMode !== 1) return resize(image, width, height);
  const scale = Math.max(width / image.width, height / image.height);
  const covered = resize(image, Math.max(width, Math.round(image.width * scale)), Math.max(height, Math.round(image.height * scale)));
  return cropCenter(covered, width, height);
}

async function sampleAll(ctx: EmulatorContext, plan: Plan, checkpoint: LoadedCheckpoint): Promise<GenerationResponse> {
  const { request, batchSize, init, hires } = plan;
  const state = ctx.state;
  const nIter = Math.max(1, request.n_iter);
  const width = clampSide(request.width);
  const height = clampSide(request.height);
  checkMemory(batchSize, nIter, hires?.width ?? width, hires?.height ?? height);
  const total = batchSize * nIter;
  const seed = request.seed === -1 ? randomSeed() : request.seed;
  const subseed = request.subseed === -1 ? randomSeed() : request.subseed;
  const varied = request.subseed_strength > 0;
  const allSeeds = range(total).map((i) => seed + (varied ? 0 : i));
  const allSubseeds = range(total).map((i) => subseed + i);
  const prompts = Array.isArray(request.prompt) ? request.prompt : [request.prompt];
  const allPrompts = range(total).map((i) => prompts[i % prompts.length] ?? "");
  const allNegativePrompts = range(total).map(() => request.negative_prompt);
  const clipSkip = Number(ctx.options.get("CLIP_stop_at_last_layers"));
  const denoisingStrength = init ? init.denoisingStrength : request.denoising_strength;
  const fittedInits = init ? init.images.map((image) => fitInit(image, width, height, init.resizeMode)) : [];
  const initFor = (i: number) => fittedInits[i % fittedInits.length]!;
  const mask = init?.mask ? resize(init.mask, width, height) : null;

  const addons = await resolveAddons(ctx, { prompts: allPrompts, negativePrompts: allNegativePrompts, alwaysonScripts: plan.request.alwayson_scripts });
  const vaeHash = addons.vae ? addons.vae.sha256.slice(0, 10) : null;
  const extraParams: InfotextParams = { ...(mask ? { "Mask blur": init?.maskBlur } : {}), ...hires?.params, ...addons.params };
  const infotextFor = (i: number, positionInBatch: number) =>
    createInfotext(allPrompts[i]!, allNegativePrompts[i]!, {
      Steps: request.steps,
      Sampler: plan.sampler.name,
      "Schedule type": plan.scheduler.label,
      "CFG scale": request.cfg_scale,
      "Image CFG scale": "image_cfg_scale" in request ? request.image_cfg_scale : null,
      Seed: allSeeds[i],
      "Face restoration": request.restore_faces ? (ctx.options.get("face_restoration_model") as string) : null,
      Size: `${width}x${height}`,
      "Model hash": checkpoint.shorthash,
      Model: checkpoint.stem,
      "VAE hash": ctx.options.get("add_vae_hash_to_info") ? vaeHash : null,
      VAE: ctx.options.get("add_vae_name_to_info") ? addons.vae?.basename : null,
      "Batch size": batchSize > 1 ? batchSize : null,
      "Batch pos": batchSize > 1 ? positionInBatch : null,
      "Variation seed": varied ? allSubseeds[i] : null,
      "Variation seed strength": varied ? request.subseed_strength : null,
      "Seed resize from":
        request.seed_resize_from_w > 0 && request.seed_resize_from_h > 0 ? `${request.seed_resize_from_w}x${request.seed_resize_from_h}` : null,
      "Denoising strength": init || hires ? denoisingStrength : null,
      "Clip skip": clipSkip > 1 ? clipSkip : null,
      ...extraParams,
      Version: WEBUI_VERSION,
    });

  const finalImage = (i: number, w: number, h: number): RgbImage => {
    const composition = { seed: allSeeds[i]!, prompt: stripExtraNetworks(allPrompts[i]!), negativePrompt: allNegativePrompts[i]!, model: checkpoint.sha256 };
    let image = drawComposition(composition, w, h);
    if (varied) image = blend(image, drawComposition({ ...composition, seed: allSubseeds[i]! }, w, h), Math.min(1, request.subseed_strength));
    image = applyAddons(image, addons);
    if (!init) return image;
    const changed = blend(initFor(i), image, Math.min(1, Math.max(0, init.denoisingStrength)) * IMG2IMG_MAX_CHANGE);
    return mask ? blendByMask(initFor(i), changed, mask, init.invertMask) : changed;
  };
  const startImage = (i: number): RgbImage => {
    const noise = drawNoise(allSeeds[i]!, width, height);
    return init ? blend(initFor(i), noise, Math.min(1, Math.max(0, init.denoisingStrength))) : noise;
  };

  const stepMs = ctx.stepMs * batchSize;
  const outputs: Output[] = [];
  state.jobCount = hires ? nIter * 2 : nIter;
  for (let n = 0; n < nIter; n++) {
    if (state.skipped) state.skipped = false;
    if (state.interrupted || state.closed) break;
    if (nIter > 1) state.job = `Batch ${n + 1} out of ${nIter}`;
    const iterationStartMs = Date.now();
    const indices = range(batchSize).map((k) => n * batchSize + k);
    const finals = indices.map((i) => finalImage(i, width, height));
    const preview = previewBetween(() => startImage(indices[0]!), finals[0]!);
    const fraction = await samplePass(ctx, request.steps, stepMs, iterationStartMs, preview);
    let images = fraction >= 1 ? finals : indices.map((i, k) => blend(startImage(i), finals[k]!, fraction));
    if (hires && !state.stopRequested) {
      state.nextJob();
      const hiresStartMs = Date.now();
      const firstPass = images.map((image) => resize(image, hires.width, hires.height));
      const hiresFinals = indices.map((i) => finalImage(i, hires.width, hires.height));
      const hiresPreview = previewBetween(() => firstPass[0]!, hiresFinals[0]!);
      const hiresFraction = await samplePass(ctx, hires.steps, stepMs, hiresStartMs, hiresPreview);
      images = hiresFinals.map((image, k) => (hiresFraction >= 1 ? image : blend(firstPass[k]!, image, hiresFraction)));
    }
    images.forEach((image, k) => {
      outputs.push({ image, infotext: infotextFor(indices[k]!, k) });
    });
    state.nextJob();
  }

  const wantGrid = request.save_images && Boolean(ctx.options.get("return_grid")) && (outputs.length >= 2 || !ctx.options.get("grid_only_if_multiple"));
  if (wantGrid) outputs.unshift({ image: grid(outputs.map((o) => o.image)), infotext: outputs[0]!.infotext });
  const withInfotext = Boolean(ctx.options.get("enable_pnginfo"));
  const images = request.send_images ? outputs.map((o) => encodePng(o.image, withInfotext ? { parameters: o.infotext } : {}).toString("base64")) : [];

  const info = {
    prompt: allPrompts[0],
    all_prompts: allPrompts,
    negative_prompt: allNegativePrompts[0],
    all_negative_prompts: allNegativePrompts,
    seed,
    all_seeds: allSeeds,
    subseed,
    all_subseeds: allSubseeds,
    subseed_strength: request.subseed_strength,
    width,
    height,
    sampler_name: plan.sampler.name,
    cfg_scale: request.cfg_scale,
    steps: request.steps,
    batch_size: batchSize,
    restore_faces: request.restore_faces ?? false,
    face_restoration_model: request.restore_faces ? ctx.options.get("face_restoration_model") : null,
    sd_model_name: checkpoint.stem,
    sd_model_hash: checkpoint.shorthash,
    sd_vae_name: addons.vae?.basename ?? null,
    sd_vae_hash: vaeHash,
    seed_resize_from_w: request.seed_resize_from_w,
    seed_resize_from_h: request.seed_resize_from_h,
    denoising_strength: denoisingStrength,
    extra_generation_params: Object.fromEntries(
      Object.entries({ "Schedule type": plan.scheduler.label, ...extraParams }).filter(([, value]) => value !== null && value !== undefined),
    ),
    index_of_first_image: wantGrid ? 1 : 0,
    infotexts: outputs.map((o) => o.infotext),
    styles: request.styles ?? [],
    job_timestamp: state.jobTimestamp,
    clip_skip: clipSkip,
    is_using_inpainting_conditioning: false,
    version: WEBUI_VERSION,
  };
  return { images, parameters: plan.parameters, info: JSON.stringify(info) };
}
