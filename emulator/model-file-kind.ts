// What a model file holds, read from its safetensors header, and the emulator's convention for
// fake model files. A safetensors file starts with an 8-byte little-endian header length and a
// JSON header naming each tensor (dtype, shape, data_offsets) plus an optional `__metadata__`
// string map. The emulator reads a file as:
//   - not a checkpoint, when `__metadata__.sdgate_emulator_type` names another model type
//     ("lora", "vae", "controlnet", "embedding", "upscaler"), or when it has no such type but
//     has tensors and none of them is a UNet weight (`model.diffusion_model.*`), as a real
//     LoRA/VAE/ControlNet file;
//   - unreadable, when the header or the tensor data it declares is cut short (a truncated
//     download), or the header is not JSON — safetensors' own errors;
//   - a checkpoint otherwise, including files of random bytes (no safetensors header at all),
//     which is what the test fixtures write for checkpoints.
import { open } from "node:fs/promises";
import { MODEL_TYPES, type ModelType } from "../src/protocol/model-types.ts";

/** safetensors refuses larger headers (HeaderTooLarge); random bytes almost never give a length this small. */
const MAX_HEADER_BYTES = 100_000_000;
const HEADER_LENGTH_BYTES = 8;
const UNET_TENSOR_PREFIX = "model.diffusion_model.";
export const EMULATOR_TYPE_KEY = "sdgate_emulator_type";

export type ModelFileKind =
  | { kind: "model"; type: ModelType }
  /** safetensors could not read the file (what sd-webui's read_state_dict raises). */
  | { kind: "unreadable"; errorName: string; message: string };

const unreadable = (reason: string): ModelFileKind => ({
  kind: "unreadable",
  errorName: "SafetensorError",
  message: `Error while deserializing header: ${reason}`,
});

interface TensorInfo {
  data_offsets?: [number, number];
}

export async function readModelFileKind(filename: string): Promise<ModelFileKind> {
  const file = await open(filename, "r");
  try {
    const { size } = await file.stat();
    if (size < HEADER_LENGTH_BYTES) return unreadable("HeaderTooSmall");
    const lengthBytes = Buffer.alloc(HEADER_LENGTH_BYTES + 1);
    await file.read(lengthBytes, 0, lengthBytes.length, 0);
    const headerBytes = Number(lengthBytes.readBigUInt64LE(0));
    const looksLikeSafetensors = headerBytes <= MAX_HEADER_BYTES && lengthBytes[HEADER_LENGTH_BYTES] === "{".charCodeAt(0);
    if (!looksLikeSafetensors) return { kind: "model", type: "checkpoint" };
    if (size < HEADER_LENGTH_BYTES + headerBytes) return unreadable("MetadataIncompleteBuffer");
    const header = Buffer.alloc(headerBytes);
    await file.read(header, 0, headerBytes, HEADER_LENGTH_BYTES);
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(header.toString("utf8")) as Record<string, unknown>;
    } catch {
      return unreadable("InvalidHeaderDeserialization");
    }
    const { __metadata__: metadata, ...tensors } = parsed;
    const dataBytes = Math.max(0, ...Object.values(tensors).map((tensor) => (tensor as TensorInfo).data_offsets?.[1] ?? 0));
    if (size < HEADER_LENGTH_BYTES + headerBytes + dataBytes) return unreadable("MetadataIncompleteBuffer");
    const declared = (metadata as Record<string, unknown> | undefined)?.[EMULATOR_TYPE_KEY];
    if (typeof declared === "string" && (MODEL_TYPES as readonly string[]).includes(declared)) return { kind: "model", type: declared as ModelType };
    const names = Object.keys(tensors);
    const isUnet = names.length === 0 || names.some((name) => name.startsWith(UNET_TENSOR_PREFIX));
    return { kind: "model", type: isUnet ? "checkpoint" : "lora" };
  } finally {
    await file.close();
  }
}

/**
 * The bytes of a fake model file of `type` that the emulator reads as such: a safetensors header
 * declaring the type and one uint8 tensor holding `payload` (so different payloads hash differently).
 */
export function fakeModelFile(type: ModelType, payload: Buffer): Buffer {
  const header = Buffer.from(
    JSON.stringify({
      __metadata__: { [EMULATOR_TYPE_KEY]: type },
      [type === "checkpoint" ? `${UNET_TENSOR_PREFIX}emulator` : "emulator"]: { dtype: "U8", shape: [payload.length], data_offsets: [0, payload.length] },
    }),
  );
  const length = Buffer.alloc(HEADER_LENGTH_BYTES);
  length.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([length, header, payload]);
}
