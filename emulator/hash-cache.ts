// sd-webui's hash cache (modules/cache.py, modules/hashes.py sha256_from_cache): DATA/cache.json
// maps "checkpoint/<name>" to {mtime, sha256}; an entry counts only while the file's mtime is not
// newer. It survives restarts, so a checkpoint hashed once keeps ` [hash]` in its title. Without
// a file (no --data-dir given) it lives in memory only.
import { readFile, writeFile } from "node:fs/promises";
import { z } from "zod";

const cacheFileSchema = z.object({
  hashes: z.record(z.string(), z.object({ mtime: z.number(), sha256: z.string() })).default({}),
});

export class HashCache {
  private entries: Record<string, { mtime: number; sha256: string }> = {};
  private loaded = false;

  constructor(private readonly file: string | null) {}

  /** The cached sha256 of `key`, or null when absent or older than the file (mtime in ms). */
  async get(key: string, mtimeMs: number): Promise<string | null> {
    await this.load();
    const entry = this.entries[key];
    return entry && mtimeMs / 1000 <= entry.mtime ? entry.sha256 : null;
  }

  async set(key: string, mtimeMs: number, sha256: string): Promise<void> {
    await this.load();
    this.entries[key] = { mtime: mtimeMs / 1000, sha256 };
    if (this.file) await writeFile(this.file, JSON.stringify({ hashes: this.entries }, null, 4));
  }

  private async load(): Promise<void> {
    if (this.loaded || !this.file) return;
    this.loaded = true;
    try {
      const parsed = cacheFileSchema.safeParse(JSON.parse(await readFile(this.file, "utf8")));
      if (parsed.success) this.entries = parsed.data.hashes;
    } catch {
      // no cache yet (or unreadable): sd-webui starts with an empty one
    }
  }
}
