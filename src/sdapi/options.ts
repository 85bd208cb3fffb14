// sd-webui's settings dict, per caller: GET /sdapi/v1/options shows sd-webui defaults under the
// caller's key options (the same store as POST /options), with `sd_model_checkpoint` as the
// model's title; POST /sdapi/v1/options stores changes there. Setting `sd_model_checkpoint` sets
// the caller's default checkpoint; an unknown one fails as sd-webui fails.
import { readKeyOptions, updateKeyOptions } from "../db/key-options";
import { checkpointTitle, findModel, resolveModel } from "../db/models";
import { SDWEBUI_DEFAULT_OPTIONS } from "../protocol/sdwebui-defaults";
import { SdapiError } from "./errors";

/** sd-webui's defaults for the settings clients read most (shared with the emulator). */
export const WEBUI_OPTION_DEFAULTS: Readonly<Record<string, unknown>> = SDWEBUI_DEFAULT_OPTIONS;

/** Shown but derived: never stored as a caller option. */
const DERIVED_KEYS = new Set(["sd_checkpoint_hash"]);

export async function optionsView(db: D1Database, owner: string): Promise<Record<string, unknown>> {
  const options = await readKeyOptions(db, owner);
  const view: Record<string, unknown> = { ...WEBUI_OPTION_DEFAULTS, ...options };
  if (typeof options.sd_model_checkpoint === "string") {
    const model = await findModel(db, options.sd_model_checkpoint);
    if (model) {
      view.sd_model_checkpoint = checkpointTitle(model);
      view.sd_checkpoint_hash = model.sha256 ?? "";
    }
  }
  return view;
}

/**
 * Applies a POST /sdapi/v1/options body to the caller's options. Values equal to sd-webui's
 * defaults are not stored (and drop an earlier override), so a client that posts back the whole
 * dict it read does not pin every default into each of its requests.
 */
export async function setOptions(db: D1Database, owner: string, body: Record<string, unknown>): Promise<void> {
  const current = await readKeyOptions(db, owner);
  const changes: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    if (DERIVED_KEYS.has(key) || key === "sd_model_checkpoint") continue;
    const isDefault = key in WEBUI_OPTION_DEFAULTS && JSON.stringify(value) === JSON.stringify(WEBUI_OPTION_DEFAULTS[key]);
    if (isDefault) {
      if (key in current) changes[key] = null;
      continue;
    }
    changes[key] = value;
  }
  const checkpoint = body.sd_model_checkpoint;
  if (checkpoint !== undefined && checkpoint !== null) {
    const alias = typeof checkpoint === "string" ? checkpoint : JSON.stringify(checkpoint);
    const model = await resolveModel(db, alias, "checkpoint");
    // sd-webui lists only checkpoints on disk: a registered model without a file is not one.
    if (!model?.sha256) throw SdapiError.runtime(`model '${alias}' not found`);
    changes.sd_model_checkpoint = model.name;
  }
  if (Object.keys(changes).length > 0) await updateKeyOptions(db, owner, changes);
}
