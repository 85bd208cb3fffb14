// The sd-webui-controlnet extension (Mikubill/sd-webui-controlnet, scripts/api.py and
// scripts/global_state.py), present only with --controlnet: its routes and its model names
// `"<stem> [<legacy 8-hex hash>]"` from models/ControlNet (recursive).
import { z } from "zod";
import type { AddonFile, AddonFolder } from "./addon-folder.ts";
import type { EmulatorContext } from "./context.ts";
import { httpException } from "./errors.ts";
import { encodePng } from "./image-codec.ts";
import { decodeInputImage } from "./image-input.ts";
import { edges } from "./image-ops.ts";
import { parseBody } from "./request-schemas.ts";

/** external_code.get_api_version() of the 1.1.4xx releases. */
const CONTROLNET_API_VERSION = 2;

/** A subset of the extension's preprocessors; "none" passes the image through. */
export const CONTROLNET_MODULES = ["none", "canny", "depth_midas", "lineart_realistic", "openpose", "scribble_pidinet", "softedge_pidinet", "tile_resample"];

export const controlnetModelTitle = (file: AddonFile) => `${file.name} [${file.legacyHash}]`;

/**
 * global_state.get_closet_model / cn_models_names lookup: a unit's `model` names a file by
 * "name [hash]" or by its lower-cased stem (the hash suffix is ignored when the name matches).
 */
export function findControlnetModel(folder: AddonFolder, model: string): AddonFile | undefined {
  const withoutHash = model.replace(/\s*\[[0-9a-f]+\]$/i, "").toLowerCase();
  return folder.list().find((file) => controlnetModelTitle(file) === model || file.name.toLowerCase() === withoutHash);
}

const detectRequestSchema = z.object({
  controlnet_module: z.string().default("none"),
  controlnet_input_images: z.array(z.string()).default([]),
  controlnet_processor_res: z.number().default(-1),
  controlnet_threshold_a: z.number().default(-1),
  controlnet_threshold_b: z.number().default(-1),
  controlnet_masks: z.array(z.string()).default([]),
  low_vram: z.boolean().default(false),
});

export async function controlnetModelList(ctx: EmulatorContext, update: boolean) {
  if (update) await ctx.addons.controlnet.refresh();
  return { model_list: ctx.addons.controlnet.list().map(controlnetModelTitle) };
}

export function controlnetModuleList() {
  return { module_list: CONTROLNET_MODULES, module_detail: Object.fromEntries(CONTROLNET_MODULES.map((name) => [name, { model_free: false, sliders: [] }])) };
}

export const controlnetVersion = () => ({ version: CONTROLNET_API_VERSION });

/** POST /controlnet/detect: the preprocessor's picture of each input image. */
export async function controlnetDetect(ctx: EmulatorContext, body: unknown) {
  const request = parseBody(detectRequestSchema, body);
  if (!CONTROLNET_MODULES.includes(request.controlnet_module)) throw httpException(422, "Module not available");
  if (request.controlnet_input_images.length === 0) throw httpException(422, "No image selected");
  const images = [];
  for (const encoded of request.controlnet_input_images) {
    const { image } = await decodeInputImage(encoded, ctx.options);
    images.push(encodePng(request.controlnet_module === "none" ? image : edges(image), {}).toString("base64"));
  }
  return { info: "Success", images };
}
