// sd-webui's lists (samplers, upscalers, …) as the fleet knows them: the union of what every
// live node reported, deduplicated by each item's name. Dicts (options, scripts, embeddings)
// merge key by key the same way: lists in them are unions, other values the first node's.
import type { WebuiCatalog } from "../protocol/node";

function itemName(item: unknown): string {
  if (item && typeof item === "object") {
    const record = item as Record<string, unknown>;
    const name = record.name ?? record.model_name ?? record.title;
    if (typeof name === "string") return name;
  }
  return JSON.stringify(item);
}

function isDict(value: unknown): value is Record<string, unknown> {
  return Boolean(value) && typeof value === "object" && !Array.isArray(value);
}

function mergeLists(first: readonly unknown[], second: readonly unknown[]): unknown[] {
  const merged: unknown[] = [];
  const seen = new Set<string>();
  for (const item of [...first, ...second]) {
    if (seen.has(itemName(item))) continue;
    seen.add(itemName(item));
    merged.push(item);
  }
  return merged;
}

function mergeValues(first: unknown, second: unknown): unknown {
  if (Array.isArray(first) && Array.isArray(second)) return mergeLists(first, second);
  if (isDict(first) && isDict(second)) {
    const merged: Record<string, unknown> = { ...first };
    for (const [key, value] of Object.entries(second)) merged[key] = key in first ? mergeValues(first[key], value) : value;
    return merged;
  }
  return first;
}

export function mergeCatalogs(catalogs: readonly WebuiCatalog[]): WebuiCatalog {
  const merged: Record<string, unknown> = {};
  for (const catalog of catalogs) {
    for (const [list, items] of Object.entries(catalog)) {
      if (items === undefined) continue;
      const empty = Array.isArray(items) ? [] : {};
      merged[list] = mergeValues(merged[list] ?? empty, items);
    }
  }
  return merged as WebuiCatalog;
}
