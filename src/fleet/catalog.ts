// sd-webui's lists (samplers, upscalers, …) as the fleet knows them: the union of what every
// live node reported, deduplicated by each item's name.
import type { WebuiCatalog } from "../protocol/node";

function itemName(item: unknown): string {
  if (item && typeof item === "object") {
    const record = item as Record<string, unknown>;
    const name = record.name ?? record.model_name ?? record.title;
    if (typeof name === "string") return name;
  }
  return JSON.stringify(item);
}

export function mergeCatalogs(catalogs: readonly WebuiCatalog[]): WebuiCatalog {
  const merged: Record<string, unknown[]> = {};
  for (const catalog of catalogs) {
    for (const [list, items] of Object.entries(catalog) as Array<[string, unknown[] | undefined]>) {
      merged[list] ??= [];
      const target = merged[list];
      const seen = new Set(target.map(itemName));
      for (const item of items ?? []) {
        if (!seen.has(itemName(item))) {
          seen.add(itemName(item));
          target.push(item);
        }
      }
    }
  }
  return merged as WebuiCatalog;
}
