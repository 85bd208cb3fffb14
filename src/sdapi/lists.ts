// sd-webui's lists: checkpoints from the model registry, the rest from what the nodes reported
// (add-on lists merge both: ./addon-lists.ts).
import { checkpointTitle, type ModelRow, shortHash } from "../db/models";
import type { WebuiCatalog } from "../protocol/node";

/** The catalog lists served at GET /sdapi/v1/<name>, as nodes report them. */
export const CATALOG_LISTS = ["samplers", "schedulers", "latent-upscale-modes", "face-restorers", "prompt-styles"] as const satisfies ReadonlyArray<
  keyof WebuiCatalog
>;
export type CatalogList = (typeof CATALOG_LISTS)[number];

/**
 * sd-webui's sd-models item. `name` is sdgate's registered name: not in sd-webui's item, but the
 * npm client `stable-diffusion-api` matches `setModel(name)` against it.
 */
export function sdModelItem(model: ModelRow) {
  return {
    title: checkpointTitle(model),
    model_name: model.fileName.replace(/\.[^.]+$/, ""),
    hash: shortHash(model.sha256),
    sha256: model.sha256,
    filename: model.fileName,
    config: null,
    name: model.name,
  };
}

/** A catalog list as sd-webui answers it. */
export function catalogList(catalog: WebuiCatalog, list: CatalogList): unknown[] {
  return catalog[list] ?? [];
}
