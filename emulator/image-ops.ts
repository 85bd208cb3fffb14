// Plain RGB raster operations: resizing, cropping, blending, grids.

/** 8-bit RGB pixels, row-major, 3 bytes per pixel. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export function createImage(width: number, height: number): RgbImage {
  return { width, height, data: new Uint8Array(width * height * 3) };
}

/** Bilinear resize (nearest-neighbour when `nearest`). */
export function resize(image: RgbImage, width: number, height: number, nearest = false): RgbImage {
  if (image.width === width && image.height === height) return image;
  const out = createImage(width, height);
  const scaleX = image.width / width;
  const scaleY = image.height / height;
  const src = image.data;
  for (let y = 0; y < height; y++) {
    const sy = Math.min(Math.max((y + 0.5) * scaleY - 0.5, 0), image.height - 1);
    const y0 = nearest ? Math.min(Math.floor((y + 0.5) * scaleY), image.height - 1) : Math.floor(sy);
    const y1 = Math.min(y0 + 1, image.height - 1);
    const fy = nearest ? 0 : sy - y0;
    for (let x = 0; x < width; x++) {
      const sx = Math.min(Math.max((x + 0.5) * scaleX - 0.5, 0), image.width - 1);
      const x0 = nearest ? Math.min(Math.floor((x + 0.5) * scaleX), image.width - 1) : Math.floor(sx);
      const x1 = Math.min(x0 + 1, image.width - 1);
      const fx = nearest ? 0 : sx - x0;
      const o = (y * width + x) * 3;
      const a = (y0 * image.width + x0) * 3;
      const b = (y0 * image.width + x1) * 3;
      const c = (y1 * image.width + x0) * 3;
      const d = (y1 * image.width + x1) * 3;
      for (let ch = 0; ch < 3; ch++) {
        const top = src[a + ch]! + (src[b + ch]! - src[a + ch]!) * fx;
        const bottom = src[c + ch]! + (src[d + ch]! - src[c + ch]!) * fx;
        out.data[o + ch] = Math.round(top + (bottom - top) * fy);
      }
    }
  }
  return out;
}

/** The centred `width`×`height` part of `image` (which must be at least that large). */
export function cropCenter(image: RgbImage, width: number, height: number): RgbImage {
  const left = Math.floor((image.width - width) / 2);
  const top = Math.floor((image.height - height) / 2);
  const out = createImage(width, height);
  for (let y = 0; y < height; y++) {
    const start = ((top + y) * image.width + left) * 3;
    out.data.set(image.data.subarray(start, start + width * 3), y * width * 3);
  }
  return out;
}

/** Scales `image` down (never up) so that neither side exceeds `maxSide`. */
export function fitWithin(image: RgbImage, maxSide: number): RgbImage {
  const scale = Math.min(1, maxSide / Math.max(image.width, image.height));
  return resize(image, Math.max(1, Math.round(image.width * scale)), Math.max(1, Math.round(image.height * scale)));
}

/** `from` mixed towards `to` by `amount` (0 = from, 1 = to); both the same size. */
export function blend(from: RgbImage, to: RgbImage, amount: number): RgbImage {
  const out = createImage(from.width, from.height);
  for (let i = 0; i < out.data.length; i++) out.data[i] = Math.round(from.data[i]! + (to.data[i]! - from.data[i]!) * amount);
  return out;
}

/** `over` where `mask` is white, `base` where it is black (inverted when `invert`); all the same size. */
export function blendByMask(base: RgbImage, over: RgbImage, mask: RgbImage, invert: boolean): RgbImage {
  const out = createImage(base.width, base.height);
  for (let p = 0; p < base.width * base.height; p++) {
    const i = p * 3;
    const luminance = (mask.data[i]! * 299 + mask.data[i + 1]! * 587 + mask.data[i + 2]! * 114) / 255000;
    const weight = invert ? 1 - luminance : luminance;
    for (let ch = 0; ch < 3; ch++) out.data[i + ch] = Math.round(base.data[i + ch]! + (over.data[i + ch]! - base.data[i + ch]!) * weight);
  }
  return out;
}

export function averageColor(image: RgbImage): [number, number, number] {
  const sums = [0, 0, 0];
  for (let i = 0; i < image.data.length; i += 3) {
    sums[0]! += image.data[i]!;
    sums[1]! += image.data[i + 1]!;
    sums[2]! += image.data[i + 2]!;
  }
  const count = Math.max(1, image.width * image.height);
  return [sums[0]! / count, sums[1]! / count, sums[2]! / count];
}

/** The images tiled in rows, as sd-webui's result grid (cells sized like the first image). */
export function grid(images: readonly RgbImage[]): RgbImage {
  const first = images[0]!;
  const rows = Math.max(1, Math.round(Math.sqrt(images.length)));
  const columns = Math.ceil(images.length / rows);
  const out = createImage(first.width * columns, first.height * rows);
  images.forEach((image, index) => {
    const cell = resize(image, first.width, first.height);
    const left = (index % columns) * first.width;
    const top = Math.floor(index / columns) * first.height;
    for (let y = 0; y < cell.height; y++) {
      out.data.set(cell.data.subarray(y * cell.width * 3, (y + 1) * cell.width * 3), ((top + y) * out.width + left) * 3);
    }
  });
  return out;
}

/** A crude edge map (white where brightness changes sharply), the emulator's stand-in for a ControlNet preprocessor. */
export function edges(image: RgbImage): RgbImage {
  const EDGE_THRESHOLD = 24;
  const out = createImage(image.width, image.height);
  const brightness = (x: number, y: number) => {
    const i = (Math.min(y, image.height - 1) * image.width + Math.min(x, image.width - 1)) * 3;
    return (image.data[i]! + image.data[i + 1]! + image.data[i + 2]!) / 3;
  };
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      const here = brightness(x, y);
      const change = Math.abs(brightness(x + 1, y) - here) + Math.abs(brightness(x, y + 1) - here);
      out.data.fill(change > EDGE_THRESHOLD ? 255 : 0, (y * image.width + x) * 3, (y * image.width + x) * 3 + 3);
    }
  }
  return out;
}
