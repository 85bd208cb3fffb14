import { createHash } from "node:crypto";
import { createReadStream, type Dirent } from "node:fs";
import { open, readdir, stat } from "node:fs/promises";
import path from "node:path";

/**
 * Files under `dir` (recursively, sorted) whose names end with one of `extensions`, as sd-webui's
 * model loaders find them. A missing folder is simply empty.
 */
export async function listModelFiles(dir: string, extensions: readonly string[], excludedSuffixes: readonly string[] = []): Promise<string[]> {
  const found: string[] = [];
  const walk = async (folder: string): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await readdir(folder, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const full = path.join(folder, entry.name);
      const lower = entry.name.toLowerCase();
      if (entry.isDirectory()) await walk(full);
      else if (extensions.some((ext) => lower.endsWith(ext)) && !excludedSuffixes.some((ext) => lower.endsWith(ext))) {
        found.push(full);
      }
    }
  };
  await walk(path.resolve(dir));
  return found.sort();
}

/** File name without its (last) extension. */
export function stem(file: string): string {
  return path.basename(file, path.extname(file));
}

export interface FileHashEntry {
  size: number;
  mtimeMs: number;
  sha256: string;
  /** sd-webui's old 8-hex `model_hash` (sha256 of 64 KiB at offset 1 MiB), still used by ControlNet names. */
  legacyHash: string;
}

/** sd-webui's hash cache (cache.json keyed by file, invalidated by mtime): a file is hashed again only when it changed. */
export class FileHashes {
  private readonly cache = new Map<string, FileHashEntry>();

  /** The file's hashes, or null when it vanished. */
  async of(filename: string): Promise<FileHashEntry | null> {
    try {
      const { size, mtimeMs } = await stat(filename);
      const cached = this.cache.get(filename);
      if (cached && cached.size === size && cached.mtimeMs === mtimeMs) return cached;
      const entry = { size, mtimeMs, sha256: await sha256File(filename), legacyHash: await legacyHash(filename) };
      this.cache.set(filename, entry);
      return entry;
    } catch {
      return null;
    }
  }
}

async function sha256File(filename: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(filename)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

async function legacyHash(filename: string): Promise<string> {
  const LEGACY_OFFSET_BYTES = 0x100000;
  const LEGACY_LENGTH_BYTES = 0x10000;
  const file = await open(filename, "r");
  try {
    const buffer = Buffer.alloc(LEGACY_LENGTH_BYTES);
    const { bytesRead } = await file.read(buffer, 0, LEGACY_LENGTH_BYTES, LEGACY_OFFSET_BYTES);
    return createHash("sha256").update(buffer.subarray(0, bytesRead)).digest("hex").slice(0, 8);
  } finally {
    await file.close();
  }
}

/**
 * sd-webui's `addnet_hash_safetensors` (modules/hashes.py): sha256 of a .safetensors file after its
 * header, which LoRA hashes use. A file without a valid header length hashes whatever lies past it
 * (often nothing), as sd-webui's does.
 */
export async function addnetHash(filename: string): Promise<string> {
  const file = await open(filename, "r");
  try {
    const lengthBytes = Buffer.alloc(8);
    const { bytesRead } = await file.read(lengthBytes, 0, 8, 0);
    const { size } = await file.stat();
    const offset = bytesRead === 8 ? 8n + lengthBytes.readBigUInt64LE(0) : BigInt(size);
    const hash = createHash("sha256");
    if (offset < BigInt(size)) for await (const chunk of file.createReadStream({ start: Number(offset), autoClose: false })) hash.update(chunk as Buffer);
    return hash.digest("hex");
  } finally {
    await file.close();
  }
}
