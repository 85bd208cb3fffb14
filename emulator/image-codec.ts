// Image bytes in and out. Output is always PNG with text chunks (sd-webui's `parameters`
// infotext). Input PNGs are decoded for real; JPEG and WebP, which sd-webui also accepts but
// pngjs cannot decode, become a flat picture of their real size in a colour taken from a hash
// of their bytes, so img2img and extras still work on them deterministically.
import { createHash } from "node:crypto";
import { inflateSync } from "node:zlib";
import { PNG } from "pngjs";
import { createImage, type RgbImage } from "./image-ops.ts";

export interface DecodedImage {
  image: RgbImage;
  /** PNG text chunks (keyword → text); empty for other formats. */
  text: Record<string, string>;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Like PIL's decompression-bomb guard: refuse pictures larger than this. */
const MAX_DECODED_PIXELS = 40_000_000;

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function chunk(type: string, payload: Buffer): Buffer {
  const typeAndPayload = Buffer.concat([Buffer.from(type, "latin1"), payload]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(payload.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typeAndPayload));
  return Buffer.concat([length, typeAndPayload, crc]);
}

/** A tEXt chunk when the text is Latin-1, else an uncompressed iTXt chunk (as PIL writes). */
function textChunk(keyword: string, text: string): Buffer {
  const isLatin1 = [...text].every((char) => char.codePointAt(0)! <= 0xff);
  if (isLatin1) return chunk("tEXt", Buffer.concat([Buffer.from(`${keyword}\0`, "latin1"), Buffer.from(text, "latin1")]));
  return chunk("iTXt", Buffer.concat([Buffer.from(`${keyword}\0\0\0\0\0`, "latin1"), Buffer.from(text, "utf8")]));
}

interface PngChunk {
  type: string;
  start: number;
  payload: Buffer;
}

function pngChunks(bytes: Buffer): PngChunk[] {
  const chunks: PngChunk[] = [];
  let offset = PNG_SIGNATURE.length;
  while (offset + 8 <= bytes.length) {
    const length = bytes.readUInt32BE(offset);
    const type = bytes.toString("latin1", offset + 4, offset + 8);
    chunks.push({ type, start: offset, payload: bytes.subarray(offset + 8, Math.min(bytes.length, offset + 8 + length)) });
    offset += 12 + length;
  }
  return chunks;
}

export function encodePng(image: RgbImage, text: Record<string, string> = {}): Buffer {
  const png = new PNG();
  png.width = image.width;
  png.height = image.height;
  png.data = Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength);
  const encoded = PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false, deflateLevel: 6, filterType: 1 });
  const entries = Object.entries(text);
  if (entries.length === 0) return encoded;
  const firstData = pngChunks(encoded).find((c) => c.type === "IDAT")!;
  return Buffer.concat([
    encoded.subarray(0, firstData.start),
    ...entries.map(([keyword, value]) => textChunk(keyword, value)),
    encoded.subarray(firstData.start),
  ]);
}

function readPngText(bytes: Buffer): Record<string, string> {
  const text: Record<string, string> = {};
  for (const { type, payload } of pngChunks(bytes)) {
    const keywordEnd = payload.indexOf(0);
    if (keywordEnd < 0 || !["tEXt", "zTXt", "iTXt"].includes(type)) continue;
    const keyword = payload.toString("latin1", 0, keywordEnd);
    try {
      if (type === "tEXt") text[keyword] = payload.toString("latin1", keywordEnd + 1);
      else if (type === "zTXt") text[keyword] = inflateSync(payload.subarray(keywordEnd + 2)).toString("latin1");
      else {
        const compressed = payload[keywordEnd + 1] === 1;
        const languageEnd = payload.indexOf(0, keywordEnd + 3);
        const translatedEnd = payload.indexOf(0, languageEnd + 1);
        const body = payload.subarray(translatedEnd + 1);
        text[keyword] = (compressed ? inflateSync(body) : body).toString("utf8");
      }
    } catch {
      // An unreadable text chunk is skipped, as PIL does.
    }
  }
  return text;
}

function decodePng(bytes: Buffer): DecodedImage {
  const header = pngChunks(bytes)[0];
  if (header?.type !== "IHDR" || header.payload.length < 8) throw new Error("PNG without IHDR");
  checkSize(header.payload.readUInt32BE(0), header.payload.readUInt32BE(4));
  const png = PNG.sync.read(bytes);
  const image = createImage(png.width, png.height);
  for (let p = 0; p < png.width * png.height; p++) {
    image.data[p * 3] = png.data[p * 4]!;
    image.data[p * 3 + 1] = png.data[p * 4 + 1]!;
    image.data[p * 3 + 2] = png.data[p * 4 + 2]!;
  }
  return { image, text: readPngText(bytes) };
}

function jpegSize(bytes: Buffer): { width: number; height: number } | null {
  let offset = 2;
  while (offset + 9 < bytes.length) {
    if (bytes[offset] !== 0xff) return null;
    const marker = bytes[offset + 1]!;
    if (marker === 0xff) {
      offset++;
      continue;
    }
    const isStartOfFrame = marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker);
    if (isStartOfFrame) return { height: bytes.readUInt16BE(offset + 5), width: bytes.readUInt16BE(offset + 7) };
    const standalone = marker === 0x01 || (marker >= 0xd0 && marker <= 0xd9);
    offset += standalone ? 2 : 2 + bytes.readUInt16BE(offset + 2);
  }
  return null;
}

function webpSize(bytes: Buffer): { width: number; height: number } | null {
  if (bytes.length < 30) return null;
  const format = bytes.toString("latin1", 12, 16);
  if (format === "VP8 ") return { width: bytes.readUInt16LE(26) & 0x3fff, height: bytes.readUInt16LE(28) & 0x3fff };
  if (format === "VP8L") {
    const [b1, b2, b3, b4] = [bytes[21]!, bytes[22]!, bytes[23]!, bytes[24]!];
    return { width: 1 + (((b2 & 0x3f) << 8) | b1), height: 1 + (((b4 & 0x0f) << 10) | (b3 << 2) | ((b2 & 0xc0) >> 6)) };
  }
  if (format === "VP8X") return { width: 1 + bytes.readUIntLE(24, 3), height: 1 + bytes.readUIntLE(27, 3) };
  return null;
}

function checkSize(width: number, height: number): void {
  if (width < 1 || height < 1 || width * height > MAX_DECODED_PIXELS) throw new Error(`unsupported image size ${width}x${height}`);
}

function flatStandIn(bytes: Buffer, size: { width: number; height: number } | null): DecodedImage {
  if (!size) throw new Error("unreadable image header");
  checkSize(size.width, size.height);
  const digest = createHash("sha256").update(bytes).digest();
  const image = createImage(size.width, size.height);
  for (let i = 0; i < image.data.length; i += 3) {
    image.data[i] = 48 + (digest[0]! % 160);
    image.data[i + 1] = 48 + (digest[1]! % 160);
    image.data[i + 2] = 48 + (digest[2]! % 160);
  }
  return { image, text: {} };
}

/** Decodes PNG, JPEG or WebP bytes; throws on anything else. */
export function decodeImage(bytes: Buffer): DecodedImage {
  if (bytes.subarray(0, 8).equals(PNG_SIGNATURE)) return decodePng(bytes);
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return flatStandIn(bytes, jpegSize(bytes));
  if (bytes.toString("latin1", 0, 4) === "RIFF" && bytes.toString("latin1", 8, 12) === "WEBP") return flatStandIn(bytes, webpSize(bytes));
  throw new Error("unknown image format");
}
