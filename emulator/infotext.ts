// sd-webui's "infotext": the generation parameters as text, stored in each PNG's `parameters`
// chunk and in `info.infotexts`, and read back by png-info and the request field `infotext`.
//
//   <prompt>
//   Negative prompt: <negative prompt>
//   Steps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 1, Size: 512x512, …

export type InfotextParams = Record<string, string | number | boolean | null | undefined>;

/** sd-webui's `quote`: values containing a comma, colon or newline are JSON-quoted. */
function quote(value: string): string {
  return /[,:\n]/.test(value) ? JSON.stringify(value) : value;
}

/** `Key: value, Key: value`, leaving out null and undefined values. */
export function formatParams(params: InfotextParams): string {
  return Object.entries(params)
    .filter(([, value]) => value !== null && value !== undefined)
    .map(([key, value]) => (key === String(value) ? key : `${key}: ${quote(String(value))}`))
    .join(", ");
}

export function createInfotext(prompt: string, negativePrompt: string, params: InfotextParams): string {
  const line = formatParams(params);
  const negative = negativePrompt ? `\nNegative prompt: ${negativePrompt}` : "";
  return `${prompt}${negative}\n${line}`.trim();
}

const PARAM = /\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)/g;
const IMAGE_SIZE = /^(\d+)x(\d+)$/;

/**
 * sd-webui's `parse_generation_parameters`: "Prompt", "Negative prompt", then each key of the
 * last line as a string ("Size: 512x768" becomes "Size-1" and "Size-2"), plus the defaults
 * sd-webui fills in for keys older infotexts lack.
 */
export function parseInfotext(text: string): Record<string, string | number> {
  const result: Record<string, string | number> = {};
  const lines = text.trim().split("\n");
  let lastLine = lines.pop() ?? "";
  if ([...lastLine.matchAll(PARAM)].length < 3) {
    lines.push(lastLine);
    lastLine = "";
  }
  let prompt = "";
  let negativePrompt = "";
  let inNegative = false;
  for (let line of lines) {
    line = line.trim();
    if (line.startsWith("Negative prompt:")) {
      inNegative = true;
      line = line.slice("Negative prompt:".length).trim();
    }
    if (inNegative) negativePrompt += (negativePrompt ? "\n" : "") + line;
    else prompt += (prompt ? "\n" : "") + line;
  }
  result["Prompt"] = prompt;
  result["Negative prompt"] = negativePrompt;
  for (const [, key, rawValue] of lastLine.matchAll(PARAM)) {
    let value = rawValue!.trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        // keep the quoted text as it is
      }
    }
    const size = IMAGE_SIZE.exec(value);
    if (size) {
      result[`${key}-1`] = size[1]!;
      result[`${key}-2`] = size[2]!;
    } else {
      result[key!] = value;
    }
  }
  const defaults: Record<string, string | number> = {
    "Clip skip": "1",
    "Hires resize-1": 0,
    "Hires resize-2": 0,
    "Hires sampler": "Use same sampler",
    "Hires schedule type": "Use same scheduler",
    "Hires checkpoint": "Use same checkpoint",
    "Hires prompt": "",
    "Hires negative prompt": "",
    RNG: "GPU",
    "Schedule type": "Automatic",
  };
  for (const [key, value] of Object.entries(defaults)) if (!(key in result)) result[key] = value;
  return result;
}
