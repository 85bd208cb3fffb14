// Making sd-webui see add-on files that just arrived on disk, per type, with the call sd-webui
// (v1.9/v1.10) or its extension offers for it. Called only when something new arrived.
import type { AddonType } from "../../src/protocol/model-types.ts";
import type { Logger } from "../logger.ts";
import { type WebuiClient, WebuiHttpError } from "./client.ts";

/**
 * Refreshes sd-webui's lists for the add-on types in `arrived`. Returns true when an upscaler
 * arrived: sd-webui v1.10 has no route to rescan upscalers (`modules/api/api.py` offers
 * refresh-checkpoints, refresh-vae, refresh-embeddings and the Lora extension's refresh-loras,
 * none of which touches `shared.sd_upscalers`, built once at start by
 * `modules/modelloader.py` `load_upscalers`), so only a restart makes it list a new one.
 */
export async function refreshAddons(client: WebuiClient, arrived: ReadonlySet<AddonType>, log: Logger): Promise<{ restartNeeded: boolean }> {
  if (arrived.has("lora")) await client.refreshLoras();
  if (arrived.has("vae")) await client.refreshVae();
  if (arrived.has("embedding") && !(await client.refreshEmbeddings())) {
    log.debug("this sd-webui has no refresh-embeddings route; it reloads the embeddings folder on the next generation");
  }
  if (arrived.has("controlnet")) {
    try {
      await client.refreshControlnetModels();
    } catch (error) {
      if (error instanceof WebuiHttpError && error.status === 404) {
        throw new WebuiHttpError(404, { detail: "this sd-webui has no ControlNet extension (sd-webui-controlnet) to use the ControlNet model" }, error.path);
      }
      throw error;
    }
  }
  return { restartNeeded: arrived.has("upscaler") };
}
