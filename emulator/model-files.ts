import type { Dirent } from "node:fs";
import { readdir } from "node:fs/promises";
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
