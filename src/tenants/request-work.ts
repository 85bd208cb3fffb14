// How much GPU work a generation request asks for, to hold it to the key's maxWorkPerRequest:
// megapixel-steps over every image, the hires pass included. Absent fields take sd-webui's
// defaults (StableDiffusionProcessing). Pure: no I/O.
import type { TaskKind } from "../protocol/node";

const SDWEBUI_DEFAULTS = { steps: 50, width: 512, height: 512, batchSize: 1, nIter: 1, hrScale: 2 };
const PIXELS_PER_MEGAPIXEL = 1_000_000;

function numberField(body: Record<string, unknown>, field: string, fallback: number): number {
  const value = body[field];
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : fallback;
}

/** sd-webui's hires size: hr_resize_x/y when given (one of them keeps the aspect ratio), else hr_scale times the first pass. */
function hiresSize(body: Record<string, unknown>, width: number, height: number): { width: number; height: number } {
  const x = numberField(body, "hr_resize_x", 0);
  const y = numberField(body, "hr_resize_y", 0);
  if (x > 0 && y > 0) return { width: x, height: y };
  if (x > 0) return { width: x, height: (x * height) / width };
  if (y > 0) return { width: (y * width) / height, height: y };
  const scale = numberField(body, "hr_scale", SDWEBUI_DEFAULTS.hrScale);
  return { width: width * scale, height: height * scale };
}

/** Megapixel-steps the request asks for; 0 for kinds that are not generations (extras, passthrough). */
export function requestWork(kind: TaskKind, body: Record<string, unknown>): number {
  if (kind !== "txt2img" && kind !== "img2img") return 0;
  const steps = numberField(body, "steps", SDWEBUI_DEFAULTS.steps);
  const width = numberField(body, "width", SDWEBUI_DEFAULTS.width);
  const height = numberField(body, "height", SDWEBUI_DEFAULTS.height);
  const images = numberField(body, "batch_size", SDWEBUI_DEFAULTS.batchSize) * numberField(body, "n_iter", SDWEBUI_DEFAULTS.nIter);
  let pixelSteps = steps * width * height;
  if (kind === "txt2img" && body.enable_hr === true) {
    const hires = hiresSize(body, width, height);
    // hr_second_pass_steps 0 (its default) means as many steps as the first pass.
    pixelSteps += numberField(body, "hr_second_pass_steps", steps) * hires.width * hires.height;
  }
  return (pixelSteps * images) / PIXELS_PER_MEGAPIXEL;
}
