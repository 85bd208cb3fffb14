// Deterministic pictures standing in for diffusion output: the prompt picks the palette (colour
// words it names come first), the seed, prompt, negative prompt and model pick the layout, and
// the seed alone picks the starting noise that a partial image is blended from.
import { createHash } from "node:crypto";
import { createImage, type RgbImage } from "./image-ops.ts";

export interface Composition {
  seed: number;
  prompt: string;
  negativePrompt: string;
  /** Anything that identifies the checkpoint (its sha256). */
  model: string;
}

export type Rgb = [number, number, number];

export const NAMED_COLORS: Record<string, Rgb> = {
  red: [210, 40, 40],
  orange: [240, 140, 30],
  yellow: [240, 220, 50],
  gold: [212, 175, 55],
  green: [50, 170, 70],
  teal: [30, 140, 140],
  cyan: [40, 200, 220],
  blue: [40, 80, 210],
  navy: [20, 30, 110],
  purple: [130, 50, 170],
  violet: [150, 90, 220],
  pink: [240, 130, 180],
  brown: [120, 75, 40],
  black: [20, 20, 20],
  white: [240, 240, 240],
  gray: [128, 128, 128],
  grey: [128, 128, 128],
  silver: [190, 190, 200],
};

/** sfc32 seeded from a sha256 of `key`. */
function randomSource(key: string): () => number {
  const digest = createHash("sha256").update(key).digest();
  let a = digest.readUInt32LE(0);
  let b = digest.readUInt32LE(4);
  let c = digest.readUInt32LE(8);
  let d = digest.readUInt32LE(12);
  return () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

/** A per-pixel hash, for texture and noise. */
function pixelHash(x: number, y: number, salt: number): number {
  let h = Math.imul(x, 0x27d4eb2d) ^ Math.imul(y, 0x165667b1) ^ salt;
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function hslToRgb(hue: number, saturation: number, lightness: number): Rgb {
  const chroma = (1 - Math.abs(2 * lightness - 1)) * saturation;
  const sector = hue * 6;
  const x = chroma * (1 - Math.abs((sector % 2) - 1));
  const [r, g, b] =
    sector < 1
      ? [chroma, x, 0]
      : sector < 2
        ? [x, chroma, 0]
        : sector < 3
          ? [0, chroma, x]
          : sector < 4
            ? [0, x, chroma]
            : sector < 5
              ? [x, 0, chroma]
              : [chroma, 0, x];
  const m = lightness - chroma / 2;
  return [Math.round((r + m) * 255), Math.round((g + m) * 255), Math.round((b + m) * 255)];
}

function palette(prompt: string): Rgb[] {
  const colors: Rgb[] = [];
  for (const word of prompt.toLowerCase().match(/[a-z]+/g) ?? []) {
    const named = NAMED_COLORS[word];
    if (named && colors.length < 3) colors.push(named);
  }
  const random = randomSource(`palette\n${prompt}`);
  while (colors.length < 5) colors.push(hslToRgb(random(), 0.45 + random() * 0.4, 0.35 + random() * 0.35));
  return colors;
}

/** The finished picture for one image of a generation. */
export function drawComposition(composition: Composition, width: number, height: number): RgbImage {
  const { seed, prompt, negativePrompt, model } = composition;
  const random = randomSource(`layout\n${seed}\n${prompt}\n${negativePrompt}\n${model}`);
  const colors = palette(prompt);
  const image = createImage(width, height);
  const data = image.data;

  // Background: a linear gradient from the first palette colour to the second.
  let dirX = random() * 2 - 1;
  let dirY = random() * 2 - 1;
  const length = Math.sqrt(dirX * dirX + dirY * dirY) || 1;
  dirX /= length;
  dirY /= length;
  const [from, to] = [colors[0]!, colors[1]!];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const t = Math.min(1, Math.max(0, ((x / width - 0.5) * dirX + (y / height - 0.5) * dirY) * 1.2 + 0.5));
      const o = (y * width + x) * 3;
      for (let ch = 0; ch < 3; ch++) data[o + ch] = Math.round(from[ch]! + (to[ch]! - from[ch]!) * t);
    }
  }

  // Shapes: soft-edged discs and rectangles in palette colours.
  const minSide = Math.min(width, height);
  const shapeCount = 4 + Math.floor(random() * 5);
  for (let s = 0; s < shapeCount; s++) {
    const color = colors[Math.floor(random() * colors.length)]!;
    const isDisc = random() < 0.55;
    const centerX = random() * width;
    const centerY = random() * height;
    const halfWidth = (0.06 + random() * 0.24) * minSide;
    const halfHeight = isDisc ? halfWidth : (0.06 + random() * 0.24) * minSide;
    const opacity = 0.55 + random() * 0.35;
    const soft = Math.max(1.5, minSide / 200);
    const x0 = Math.max(0, Math.floor(centerX - halfWidth - soft));
    const x1 = Math.min(width - 1, Math.ceil(centerX + halfWidth + soft));
    const y0 = Math.max(0, Math.floor(centerY - halfHeight - soft));
    const y1 = Math.min(height - 1, Math.ceil(centerY + halfHeight + soft));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const dx = x + 0.5 - centerX;
        const dy = y + 0.5 - centerY;
        const inside = isDisc ? halfWidth - Math.sqrt(dx * dx + dy * dy) : Math.min(halfWidth - Math.abs(dx), halfHeight - Math.abs(dy));
        const alpha = opacity * Math.min(1, Math.max(0, inside / soft + 0.5));
        if (alpha <= 0) continue;
        const o = (y * width + x) * 3;
        for (let ch = 0; ch < 3; ch++) data[o + ch] = Math.round(data[o + ch]! + (color[ch]! - data[o + ch]!) * alpha);
      }
    }
  }

  // Fine grain, so that every seed leaves its mark on every pixel.
  const salt = Math.floor(random() * 4294967296) | 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const grain = (pixelHash(x, y, salt) & 15) - 8;
      const o = (y * width + x) * 3;
      for (let ch = 0; ch < 3; ch++) data[o + ch] = Math.min(255, Math.max(0, data[o + ch]! + grain));
    }
  }
  return image;
}

/** The "latent noise" a generation starts from: coloured static that depends on the seed only. */
export function drawNoise(seed: number, width: number, height: number): RgbImage {
  const salt = (randomSource(`noise\n${seed}`)() * 4294967296) | 0;
  const image = createImage(width, height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const h = pixelHash(x, y, salt);
      const o = (y * width + x) * 3;
      image.data[o] = 64 + (h & 127);
      image.data[o + 1] = 64 + ((h >>> 8) & 127);
      image.data[o + 2] = 64 + ((h >>> 16) & 127);
    }
  }
  return image;
}
