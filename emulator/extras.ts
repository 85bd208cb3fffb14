// The "Extras" tab through the API: upscale one image or a list (bilinear, or nearest for the
// Nearest upscaler), on the global lock, costing EXTRAS_STEPS × stepMs per image. As in sd-webui,
// upscaler "None" leaves the size alone; face restoration only shows up in the infotext.
import { listUpscalers } from "./catalog.ts";
import type { EmulatorContext } from "./context.ts";
import { pythonException } from "./errors.ts";
import { type DecodedImage, encodePng } from "./image-codec.ts";
import { decodeInputImage } from "./image-input.ts";
import { cropCenter, resize } from "./image-ops.ts";
import { formatParams, type InfotextParams } from "./infotext.ts";
import { type ExtrasOptions, extrasBatchRequestSchema, extrasSingleRequestSchema, parseBody } from "./request-schemas.ts";

/** Emulated cost of post-processing one image, in sampling steps. */
const EXTRAS_STEPS = 4;
const MAX_SIDE_PX = 4096;

interface ExtrasResult {
  htmlInfo: string;
  images: string[];
}

/** sd-webui's `plaintext_to_html`. */
function plaintextToHtml(text: string): string {
  const escapeHtml = (line: string) =>
    line.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;").replaceAll("'", "&#x27;");
  return `<p>${text.split("\n").map(escapeHtml).join("<br>\n")}</p>`;
}

function checkUpscaler(ctx: EmulatorContext, name: string): string | null {
  if (name === "None") return null;
  if (!listUpscalers(ctx.addons.upscaler.list()).some((upscaler) => upscaler.name === name))
    throw pythonException("AssertionError", `could not find upscaler named ${name}`);
  return name;
}

interface Upscalers {
  first: string | null;
  second: string | null;
}

function postprocess(decoded: DecodedImage, options: ExtrasOptions, upscalers: Upscalers): { png: Buffer; infotext: string } {
  const { first: upscaler1, second: upscaler2 } = upscalers;
  let image = decoded.image;
  const params: InfotextParams = {};
  if (upscaler1) {
    const clamp = (px: number) => Math.min(MAX_SIDE_PX, Math.max(1, Math.round(px)));
    if (options.resize_mode === 0) {
      image = resize(image, clamp(image.width * options.upscaling_resize), clamp(image.height * options.upscaling_resize), upscaler1 === "Nearest");
      params["Postprocess upscale by"] = options.upscaling_resize;
    } else {
      const targetWidth = clamp(options.upscaling_resize_w);
      const targetHeight = clamp(options.upscaling_resize_h);
      const scale = Math.max(targetWidth / image.width, targetHeight / image.height);
      image = resize(image, clamp(image.width * scale), clamp(image.height * scale), upscaler1 === "Nearest");
      if (options.upscaling_crop) image = cropCenter(image, Math.min(targetWidth, image.width), Math.min(targetHeight, image.height));
      params["Postprocess upscale to"] = `${targetWidth}x${targetHeight}`;
    }
    params["Postprocess upscaler"] = upscaler1;
    if (upscaler2 && options.extras_upscaler_2_visibility > 0) {
      params["Postprocess upscaler 2"] = upscaler2;
      params["Postprocess upscaler 2 visibility"] = options.extras_upscaler_2_visibility;
    }
  }
  if (options.gfpgan_visibility > 0) params["GFPGAN visibility"] = options.gfpgan_visibility;
  if (options.codeformer_visibility > 0) {
    params["CodeFormer visibility"] = options.codeformer_visibility;
    params["CodeFormer weight"] = options.codeformer_weight;
  }
  const infotext = formatParams(params);
  const text = infotext ? { ...decoded.text, postprocessing: infotext } : decoded.text;
  return { png: encodePng(image, text), infotext };
}

async function runExtras(ctx: EmulatorContext, options: ExtrasOptions, inputs: DecodedImage[]): Promise<ExtrasResult> {
  const upscalers = { first: checkUpscaler(ctx, options.upscaler_1), second: checkUpscaler(ctx, options.upscaler_2) };
  return ctx.lock.run(async () => {
    const { state } = ctx;
    state.begin("extras");
    state.jobCount = inputs.length;
    try {
      const images: string[] = [];
      let infotext = "";
      const startMs = Date.now();
      for (const [index, input] of inputs.entries()) {
        await state.sleepUntil(startMs + (index + 1) * EXTRAS_STEPS * ctx.stepMs);
        if (state.closed) throw new Error("the emulator is closing");
        if (state.interrupted) break;
        const result = postprocess(input, options, upscalers);
        images.push(result.png.toString("base64"));
        infotext = result.infotext;
        state.nextJob();
      }
      return { htmlInfo: plaintextToHtml(infotext), images };
    } finally {
      state.end();
    }
  });
}

export async function extraSingleImage(ctx: EmulatorContext, body: unknown): Promise<{ html_info: string; image: string }> {
  const request = parseBody(extrasSingleRequestSchema, body);
  const input = await decodeInputImage(request.image, ctx.options);
  const result = await runExtras(ctx, request, [input]);
  return { html_info: result.htmlInfo, image: result.images[0]! };
}

export async function extraBatchImages(ctx: EmulatorContext, body: unknown): Promise<{ html_info: string; images: string[] }> {
  const request = parseBody(extrasBatchRequestSchema, body);
  const inputs = await Promise.all(request.imageList.map((item) => decodeInputImage(item.data, ctx.options)));
  const result = await runExtras(ctx, request, inputs);
  return { html_info: result.htmlInfo, images: result.images };
}
