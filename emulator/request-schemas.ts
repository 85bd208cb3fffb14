// Request bodies, validated as sd-webui's pydantic (v1) models do: unknown keys are dropped,
// missing or null fields take their defaults, numbers and booleans given as strings are
// coerced, and a type mismatch is a FastAPI 422 with pydantic's messages.
import { z } from "zod";
import { type FastApiIssue, RequestValidationError } from "./errors.ts";

const absentAsNull = (value: unknown): unknown => (value === undefined ? null : value);

function toNumber(value: unknown): unknown {
  if (typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value))) return Number(value);
  if (typeof value === "boolean") return Number(value);
  return value;
}

const BOOLEAN_WORDS: Record<string, boolean> = { true: true, false: false, "1": true, "0": false, yes: true, no: false, on: true, off: false };

function toBoolean(value: unknown): unknown {
  if (typeof value === "string") return BOOLEAN_WORDS[value.toLowerCase()] ?? value;
  if (value === 1 || value === 0) return value === 1;
  return value;
}

// Each base type's error is the pydantic error type; toFastApiIssue turns it into pydantic's message.
const PYDANTIC_MESSAGES: Record<string, string> = {
  "type_error.integer": "value is not a valid integer",
  "type_error.float": "value is not a valid float",
  "type_error.str": "str type expected",
  "type_error.bool": "value could not be parsed to a boolean",
  "type_error.list": "value is not a valid list",
  "type_error.dict": "value is not a valid dict",
};
const integerType = () => z.number({ error: "type_error.integer" }).int({ error: "type_error.integer" });
const floatType = () => z.number({ error: "type_error.float" });
const stringType = () => z.string({ error: "type_error.str" });
const dictType = () => z.record(z.string(), z.unknown(), { error: "type_error.dict" });

const nullableInt = () =>
  z.preprocess((value) => {
    const number = toNumber(absentAsNull(value));
    return typeof number === "number" && Number.isFinite(number) ? Math.trunc(number) : number;
  }, integerType().nullable());
const nullableFloat = () => z.preprocess((value) => toNumber(absentAsNull(value)), floatType().nullable());
const nullableBool = () => z.preprocess((value) => toBoolean(absentAsNull(value)), z.boolean({ error: "type_error.bool" }).nullable());
const nullableString = () => z.preprocess((value) => (typeof value === "number" ? String(value) : absentAsNull(value)), stringType().nullable());
const nullableDict = () => z.preprocess(absentAsNull, dictType().nullable());
const nullableList = () => z.preprocess(absentAsNull, z.array(z.unknown(), { error: "type_error.list" }).nullable());
const nullableStringList = () => z.preprocess(absentAsNull, z.array(stringType(), { error: "type_error.list" }).nullable());

const int = (fallback: number) => nullableInt().transform((value) => value ?? fallback);
const float = (fallback: number) => nullableFloat().transform((value) => value ?? fallback);
const bool = (fallback: boolean) => nullableBool().transform((value) => value ?? fallback);
const string = (fallback: string) => nullableString().transform((value) => value ?? fallback);
const dict = () => nullableDict().transform((value) => value ?? {});
const list = () => nullableList().transform((value) => value ?? []);

/** Fields of sd-webui's `StableDiffusionProcessing`, shared by txt2img and img2img. */
const processingFields = {
  prompt: z.preprocess(absentAsNull, z.union([stringType(), z.array(stringType())], { error: "type_error.str" }).nullable()).transform((value) => value ?? ""),
  negative_prompt: string(""),
  styles: nullableStringList(),
  seed: int(-1),
  subseed: int(-1),
  subseed_strength: float(0),
  seed_resize_from_h: int(-1),
  seed_resize_from_w: int(-1),
  sampler_name: nullableString(),
  scheduler: nullableString(),
  batch_size: int(1),
  n_iter: int(1),
  steps: int(50),
  cfg_scale: float(7),
  width: int(512),
  height: int(512),
  restore_faces: nullableBool(),
  tiling: nullableBool(),
  do_not_save_samples: bool(false),
  do_not_save_grid: bool(false),
  eta: nullableFloat(),
  denoising_strength: nullableFloat(),
  s_min_uncond: nullableFloat(),
  s_churn: nullableFloat(),
  s_tmax: nullableFloat(),
  s_tmin: nullableFloat(),
  s_noise: nullableFloat(),
  override_settings: nullableDict(),
  override_settings_restore_afterwards: bool(true),
  refiner_checkpoint: nullableString(),
  refiner_switch_at: nullableFloat(),
  disable_extra_networks: bool(false),
  firstpass_image: nullableString(),
  comments: nullableDict(),
};

/** Fields the API adds to every generation request. */
const apiFields = {
  force_task_id: nullableString(),
  sampler_index: string("Euler"),
  script_name: nullableString(),
  script_args: list(),
  send_images: bool(true),
  save_images: bool(false),
  alwayson_scripts: dict(),
  infotext: nullableString(),
};

const DICT = { error: "type_error.dict" };

export const txt2imgRequestSchema = z.object(
  {
    ...processingFields,
    enable_hr: bool(false),
    firstphase_width: int(0),
    firstphase_height: int(0),
    hr_scale: float(2),
    hr_upscaler: nullableString(),
    hr_second_pass_steps: int(0),
    hr_resize_x: int(0),
    hr_resize_y: int(0),
    hr_checkpoint_name: nullableString(),
    hr_sampler_name: nullableString(),
    hr_scheduler: nullableString(),
    hr_prompt: string(""),
    hr_negative_prompt: string(""),
    ...apiFields,
  },
  DICT,
);

export const img2imgRequestSchema = z.object(
  {
    ...processingFields,
    init_images: nullableStringList(),
    resize_mode: int(0),
    denoising_strength: float(0.75),
    image_cfg_scale: nullableFloat(),
    mask: nullableString(),
    mask_blur_x: int(4),
    mask_blur_y: int(4),
    mask_blur: nullableInt(),
    mask_round: bool(true),
    inpainting_fill: int(0),
    inpaint_full_res: bool(true),
    inpaint_full_res_padding: int(0),
    inpainting_mask_invert: int(0),
    initial_noise_multiplier: nullableFloat(),
    latent_mask: nullableString(),
    include_init_images: bool(false),
    ...apiFields,
  },
  DICT,
);

export type Txt2ImgRequest = z.infer<typeof txt2imgRequestSchema>;
export type Img2ImgRequest = z.infer<typeof img2imgRequestSchema>;
export type GenerationRequest = Txt2ImgRequest | Img2ImgRequest;

const visibility = (fallback: number) => float(fallback).pipe(z.number().min(0).max(1));

const extrasFields = {
  resize_mode: int(0).pipe(z.union([z.literal(0), z.literal(1)])),
  show_extras_results: bool(true),
  gfpgan_visibility: visibility(0),
  codeformer_visibility: visibility(0),
  codeformer_weight: visibility(0),
  upscaling_resize: float(2).pipe(z.number().positive()),
  upscaling_resize_w: int(512).pipe(z.number().min(1)),
  upscaling_resize_h: int(512).pipe(z.number().min(1)),
  upscaling_crop: bool(true),
  upscaler_1: string("None"),
  upscaler_2: string("None"),
  extras_upscaler_2_visibility: visibility(0),
  upscale_first: bool(false),
};

const extrasOptionsSchema = z.object(extrasFields, DICT);
export const extrasSingleRequestSchema = extrasOptionsSchema.extend({ image: string("") });
export const extrasBatchRequestSchema = extrasOptionsSchema.extend({
  imageList: z.array(z.object({ data: stringType(), name: stringType() }, DICT), { error: "type_error.list" }),
});
export type ExtrasOptions = z.infer<typeof extrasOptionsSchema>;

export const pngInfoRequestSchema = z.object({ image: string("") }, DICT);
export const interrogateRequestSchema = z.object({ image: string(""), model: string("clip") }, DICT);
export const internalProgressRequestSchema = z.object({ id_task: nullableString(), id_live_preview: int(-1), live_preview: bool(true) }, DICT);
export const progressQuerySchema = z.object({ skip_current_image: bool(false) }, DICT);
export const optionsRequestSchema = dictType();

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const key of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function toFastApiIssue(issue: z.core.$ZodIssue, input: unknown, location: string): FastApiIssue {
  const loc = [location, ...issue.path.map((key) => (typeof key === "number" ? key : String(key)))];
  if (issue.code === "invalid_type" && valueAt(input, issue.path) === undefined) {
    return { loc, msg: "field required", type: "value_error.missing" };
  }
  const pydanticMessage = PYDANTIC_MESSAGES[issue.message];
  if (pydanticMessage) return { loc, msg: pydanticMessage, type: issue.message };
  return { loc, msg: issue.message, type: "value_error" };
}

/** Parses a JSON body (or the query, as a dict) against `schema`, throwing FastAPI's 422 on failure. */
export function parseBody<S extends z.ZodType>(schema: S, input: unknown, location: "body" | "query" = "body"): z.infer<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw new RequestValidationError(result.error.issues.map((issue) => toFastApiIssue(issue, input, location)));
  return result.data;
}
