// The add-ons a txt2img/img2img uses, found as sd-webui v1.10 and sd-webui-controlnet find them,
// what they add to the infotext, and the visible, deterministic change each makes to the picture:
// - LoRA/LyCORIS: `<lora:NAME:w>` / `<lyco:NAME:w>` in the prompt (modules/extra_networks.py
//   re_extra_net). extensions-builtin/Lora/networks.py load_networks rescans models/Lora when a
//   name is unknown, skips a name still missing (only a "Lora not found" hijack comment, which the
//   API answer does not carry; printed when lora_not_found_warning_console is on), and
//   extra_networks_lora.py writes `Lora hashes: "NAME: <shorthash>"` (12 hex of the addnet hash
//   for .safetensors, of the sha256 otherwise; ':' and ',' removed from the name).
// - VAE: the `sd_vae` option (modules/sd_vae.py resolve_vae): "Automatic"/"None" use the
//   checkpoint's own; a name not in models/VAE prints "Couldn't find VAE named …; using None
//   instead"; a found one adds `VAE hash` (10 hex of sha256) and `VAE` (file name) to the infotext
//   (processing.py create_infotext) and sd_vae_name/sd_vae_hash to the info.
// - Textual-inversion embeddings: a file stem appearing as a word in the prompt or negative prompt
//   (the embeddings folder is rescanned before each generation when its mtime changed,
//   textual_inversion.py load_textual_inversion_embeddings); `TI hashes: "NAME: <12 hex>"`.
// - ControlNet units (alwayson_scripts.controlnet.args, with --controlnet): each enabled unit
//   writes `ControlNet N: "Module: …, Model: name [hash], Weight: …"` (external_code.py
//   ControlNetUnit.serialize); a unit whose model is missing makes the extension's process()
//   raise "model not found", which modules/scripts.py reports and skips: no unit applies.
import { createHash } from "node:crypto";
import { stat } from "node:fs/promises";
import type { AddonFile } from "./addon-folder.ts";
import type { EmulatorContext } from "./context.ts";
import { controlnetModelTitle, findControlnetModel } from "./controlnet.ts";
import { decodeInputImage } from "./image-input.ts";
import { blend, createImage, edges, type RgbImage, resize } from "./image-ops.ts";
import type { InfotextParams } from "./infotext.ts";
import { addnetHash } from "./model-files.ts";

const EXTRA_NETWORK_TAG = /<(\w+):([^>]+)>/g;
const LORA_TAG_NAMES = new Set(["lora", "lyco"]);
const LORA_TINT_PER_WEIGHT = 0.35;
const EMBEDDING_TINT = 0.2;
const CONTROLNET_OVERLAY_PER_WEIGHT = 0.5;
/** external_code.py ResizeMode / ControlMode defaults, as the infotext names them. */
const CONTROLNET_DEFAULTS = { resize_mode: "Crop and Resize", control_mode: "Balanced", hr_option: "Both" };
/** The canny preprocessor's slider defaults (low/high threshold). */
const CANNY_THRESHOLDS: [number, number] = [100, 200];
const DEFAULT_PROCESSOR_RES = 512;

interface Tint {
  rgb: [number, number, number];
  amount: number;
}

interface ControlOverlay {
  image: RgbImage;
  weight: number;
}

export interface AppliedAddons {
  /** Infotext entries (in sd-webui's order within extra_generation_params). */
  params: InfotextParams;
  vae: AddonFile | null;
  tints: Tint[];
  overlays: ControlOverlay[];
}

export interface AddonRequest {
  prompts: readonly string[];
  negativePrompts: readonly string[];
  alwaysonScripts: Record<string, unknown>;
}

/**
 * extra_networks.parse_prompt: the prompt the model is conditioned on has its `<name:…>` tags
 * removed (whitespace collapsed, as CLIP's tokenizer ignores it).
 */
export const stripExtraNetworks = (prompt: string) => prompt.replace(EXTRA_NETWORK_TAG, "").replace(/\s+/g, " ").trim();

/** Python's str() of a float. */
const pyFloat = (value: number) => (Number.isInteger(value) ? `${value}.0` : String(value));
const colorOf = (hex: string): [number, number, number] => [0, 2, 4].map((i) => Number.parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];

export async function resolveAddons(ctx: EmulatorContext, request: AddonRequest): Promise<AppliedAddons> {
  const params: InfotextParams = {};
  const tints: Tint[] = [];
  const loras = await resolveLoras(ctx, request.prompts);
  if (loras.length > 0 && ctx.options.get("lora_add_hashes_to_infotext")) {
    params["Lora hashes"] = loras.map((lora) => `${lora.mentioned.replace(/[:,]/g, "")}: ${lora.shorthash}`).join(", ");
  }
  for (const lora of loras) tints.push({ rgb: colorOf(lora.shorthash), amount: Math.min(1, Math.abs(lora.weight) * LORA_TINT_PER_WEIGHT) });

  const embeddings = await resolveEmbeddings(ctx, [...request.prompts, ...request.negativePrompts]);
  if (embeddings.length > 0 && ctx.options.get("textual_inversion_add_hashes_to_infotext")) {
    params["TI hashes"] = embeddings.map((file) => `${file.name.replace(/[:,]/g, "")}: ${file.sha256.slice(0, 12)}`).join(", ");
  }
  for (const file of embeddings) tints.push({ rgb: colorOf(file.sha256), amount: EMBEDDING_TINT });

  const overlays: ControlOverlay[] = [];
  const units = controlnetUnits(request.alwaysonScripts);
  if (ctx.controlnet && units.length > 0) {
    const resolved = await resolveControlnetUnits(ctx, units);
    resolved.forEach((unit, index) => {
      params[`ControlNet ${index}`] = unit.infotext;
      if (unit.image) overlays.push({ image: edges(unit.image), weight: unit.weight });
    });
  }
  return { params, vae: resolveVae(ctx), tints, overlays };
}

interface UsedLora {
  mentioned: string;
  weight: number;
  shorthash: string;
}

async function resolveLoras(ctx: EmulatorContext, prompts: readonly string[]): Promise<UsedLora[]> {
  const mentions = new Map<string, number>();
  for (const prompt of prompts) {
    for (const [, tag, args] of prompt.matchAll(EXTRA_NETWORK_TAG)) {
      if (!LORA_TAG_NAMES.has(tag!)) continue;
      const [name, weight] = args!.split(":");
      const parsed = weight === undefined ? 1 : Number.parseFloat(weight);
      mentions.set(name!, Number.isFinite(parsed) ? parsed : 1);
    }
  }
  if (mentions.size === 0) return [];
  const folder = ctx.addons.lora;
  if ([...mentions.keys()].some((name) => !folder.find(name))) await folder.refresh();
  const used: UsedLora[] = [];
  const missing: string[] = [];
  for (const [name, weight] of mentions) {
    const file = folder.find(name);
    if (!file) {
      missing.push(name);
      continue;
    }
    const hash = file.filename.toLowerCase().endsWith(".safetensors") ? await addnetHash(file.filename) : file.sha256;
    used.push({ mentioned: name, weight, shorthash: hash.slice(0, 12) });
  }
  if (missing.length > 0 && ctx.options.get("lora_not_found_warning_console")) console.log(`\nLora not found: ${missing.join(", ")}\n`);
  return used;
}

/**
 * textual_inversion.py `load_textual_inversion_embeddings`: rescans the embeddings folder when
 * forced (refresh-embeddings) or when the folder's own mtime moved past the last scan's.
 */
export async function loadEmbeddings(ctx: EmulatorContext, force: boolean): Promise<void> {
  const changedMs = await stat(ctx.addons.embedding.dir).then(
    (info) => info.mtimeMs,
    () => -1,
  );
  if (!force && changedMs <= ctx.embeddingsScannedMtimeMs) return;
  await ctx.addons.embedding.refresh();
  ctx.embeddingsScannedMtimeMs = changedMs;
}

async function resolveEmbeddings(ctx: EmulatorContext, texts: readonly string[]): Promise<AddonFile[]> {
  const folder = ctx.addons.embedding;
  await loadEmbeddings(ctx, false);
  const words = new Set(texts.flatMap((text) => text.split(/[^\p{L}\p{N}_\-.]+/u)));
  return folder.list().filter((file) => words.has(file.name));
}

function resolveVae(ctx: EmulatorContext): AddonFile | null {
  const setting = String(ctx.options.get("sd_vae") ?? "Automatic");
  if (setting === "Automatic" || setting === "None") return null;
  const file = ctx.addons.vae.list().find((candidate) => candidate.basename === setting);
  if (!file) console.log(`Couldn't find VAE named ${setting}; using None instead`);
  return file ?? null;
}

interface ControlnetUnitArgs {
  enabled?: boolean;
  module?: string;
  model?: string;
  weight?: number;
  image?: unknown;
  input_image?: unknown;
  resize_mode?: string | number;
  processor_res?: number;
  threshold_a?: number;
  threshold_b?: number;
  guidance_start?: number;
  guidance_end?: number;
  pixel_perfect?: boolean;
  control_mode?: string | number;
}

function controlnetUnits(alwaysonScripts: Record<string, unknown>): ControlnetUnitArgs[] {
  const entry = Object.entries(alwaysonScripts).find(([title]) => title.toLowerCase() === "controlnet")?.[1] as { args?: unknown } | undefined;
  const args = Array.isArray(entry?.args) ? entry.args : [];
  return args.filter((unit): unit is ControlnetUnitArgs => unit !== null && typeof unit === "object" && (unit as ControlnetUnitArgs).enabled !== false);
}

async function resolveControlnetUnits(ctx: EmulatorContext, units: ControlnetUnitArgs[]) {
  const resolved = [];
  for (const unit of units) {
    const model = findControlnetModel(ctx.addons.controlnet, unit.model ?? "None");
    if (!model) {
      // scripts/controlnet.py build_control_model raises; modules/scripts.py reports and moves on.
      console.error(
        `*** Error running process: extensions/sd-webui-controlnet/scripts/controlnet.py\n    Traceback (most recent call last):\n    RuntimeError: ${
          unit.model && unit.model !== "None" ? `model not found: ${unit.model}` : "You have not selected any ControlNet Model."
        }\n---`,
      );
      return [];
    }
    const module = unit.module ?? "none";
    const weight = unit.weight ?? 1;
    const [thresholdA, thresholdB] = module === "canny" ? CANNY_THRESHOLDS : [-1, -1];
    const fields: [string, string][] = [
      ["Module", module],
      ["Model", controlnetModelTitle(model)],
      ["Weight", pyFloat(weight)],
      ["Resize Mode", String(unit.resize_mode ?? CONTROLNET_DEFAULTS.resize_mode)],
      ["Processor Res", String(unit.processor_res === undefined || unit.processor_res < 0 ? DEFAULT_PROCESSOR_RES : unit.processor_res)],
      ["Threshold A", pyFloat(unit.threshold_a === undefined || unit.threshold_a < 0 ? thresholdA : unit.threshold_a)],
      ["Threshold B", pyFloat(unit.threshold_b === undefined || unit.threshold_b < 0 ? thresholdB : unit.threshold_b)],
      ["Guidance Start", pyFloat(unit.guidance_start ?? 0)],
      ["Guidance End", pyFloat(unit.guidance_end ?? 1)],
      ["Pixel Perfect", unit.pixel_perfect ? "True" : "False"],
      ["Control Mode", String(unit.control_mode ?? CONTROLNET_DEFAULTS.control_mode)],
      ["Hr Option", CONTROLNET_DEFAULTS.hr_option],
    ];
    const encoded = typeof unit.image === "string" ? unit.image : typeof unit.input_image === "string" ? unit.input_image : null;
    const image = encoded ? (await decodeInputImage(encoded, ctx.options)).image : null;
    resolved.push({ infotext: fields.map(([key, value]) => `${key}: ${value}`).join(", "), image, weight });
  }
  return resolved;
}

/** The picture as the add-ons change it: LoRA and embedding tints, the VAE's palette, ControlNet edges. */
export function applyAddons(image: RgbImage, addons: AppliedAddons): RgbImage {
  let out = image;
  for (const tint of addons.tints) {
    const solid = createImage(out.width, out.height);
    for (let i = 0; i < solid.data.length; i += 3) solid.data.set(tint.rgb, i);
    out = blend(out, solid, tint.amount);
  }
  for (const overlay of addons.overlays) {
    out = blend(out, resize(overlay.image, out.width, out.height), Math.min(1, overlay.weight * CONTROLNET_OVERLAY_PER_WEIGHT));
  }
  if (addons.vae) out = vaePalette(out, addons.vae.sha256);
  return out;
}

/** A VAE decodes colours its own way: channels rotated by an amount its hash picks. */
function vaePalette(image: RgbImage, sha256: string): RgbImage {
  const rotation = 1 + (createHash("sha256").update(sha256).digest()[0]! % 2);
  const out = createImage(image.width, image.height);
  for (let i = 0; i < image.data.length; i += 3) {
    for (let channel = 0; channel < 3; channel++) out.data[i + channel] = image.data[i + ((channel + rotation) % 3)]!;
  }
  return out;
}
