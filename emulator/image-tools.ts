// png-info (read the infotext back out of a PNG) and interrogate (a caption derived from the
// picture's colours and shape, deterministically, in place of CLIP or DeepDanbooru).
import type { EmulatorContext } from "./context.ts";
import { NAMED_COLORS, type Rgb } from "./draw.ts";
import { httpException } from "./errors.ts";
import { decodeInputImage } from "./image-input.ts";
import { averageColor, type RgbImage } from "./image-ops.ts";
import { parseInfotext } from "./infotext.ts";
import { interrogateRequestSchema, parseBody, pngInfoRequestSchema } from "./request-schemas.ts";

/** Emulated cost of one interrogation. */
const INTERROGATE_STEPS = 4;

export async function pngInfo(
  ctx: EmulatorContext,
  body: unknown,
): Promise<{ info: string; items: Record<string, string>; parameters: Record<string, string | number> }> {
  const request = parseBody(pngInfoRequestSchema, body);
  if (!request.image.trim()) return { info: "", items: {}, parameters: {} };
  const { text } = await decodeInputImage(request.image.trim(), ctx.options);
  const { parameters: infotext = "", ...items } = text;
  return { info: infotext, items, parameters: parseInfotext(infotext) };
}

function nearestColorName(color: Rgb): string {
  let best = "gray";
  let bestDistance = Infinity;
  for (const [name, named] of Object.entries(NAMED_COLORS)) {
    const distance = (named[0] - color[0]) ** 2 + (named[1] - color[1]) ** 2 + (named[2] - color[2]) ** 2;
    if (distance < bestDistance) [best, bestDistance] = [name, distance];
  }
  return best === "grey" ? "gray" : best;
}

function describe(image: RgbImage, model: "clip" | "deepdanbooru"): string {
  const average = averageColor(image);
  const color = nearestColorName(average);
  const brightness = (average[0] + average[1] + average[2]) / 3;
  const tone = brightness > 170 ? "bright" : brightness < 85 ? "dark" : "muted";
  const shape = image.width > image.height * 1.1 ? "landscape" : image.height > image.width * 1.1 ? "portrait" : "square";
  if (model === "deepdanbooru") return `${color}_theme, ${tone}, abstract, no_humans, ${shape}`;
  return `a ${tone} ${color} abstract painting with soft round shapes, ${shape} format`;
}

export async function interrogate(ctx: EmulatorContext, body: unknown): Promise<{ caption: string }> {
  const request = parseBody(interrogateRequestSchema, body);
  const { image } = await decodeInputImage(request.image, ctx.options);
  return ctx.lock.run(async () => {
    if (request.model !== "clip" && request.model !== "deepdanbooru") throw httpException(404, "Model not found");
    await ctx.state.sleepUntil(Date.now() + INTERROGATE_STEPS * ctx.stepMs);
    return { caption: describe(image, request.model) };
  });
}
