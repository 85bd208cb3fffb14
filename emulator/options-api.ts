// POST /sdapi/v1/options (modules/api/api.py set_config, modules/options.py Options.set, v1.10):
// store every key; `sd_model_checkpoint` must name a known checkpoint (else 500 RuntimeError)
// and, when it changes the setting, loads that checkpoint synchronously under the queue lock (so
// it waits for a running job), as sd-webui's onchange callback does. A load that fails is logged
// and the setting keeps its previous value, yet the answer is still 200: Options.set catches the
// onchange exception and returns False, which set_config ignores. set_config then saves the
// settings to config.json, so a restarted sd-webui loads the last checkpoint set.
import type { CheckpointInfo } from "./checkpoints.ts";
import type { EmulatorContext } from "./context.ts";
import { pythonException, WebuiError } from "./errors.ts";
import { optionsRequestSchema, parseBody } from "./request-schemas.ts";

/** Python's repr() of a JSON value, for error messages. */
function pythonRepr(value: unknown): string {
  if (typeof value === "string") return value.includes("'") && !value.includes('"') ? `"${value}"` : `'${value.replaceAll("'", "\\'")}'`;
  if (value === true) return "True";
  if (value === false) return "False";
  return JSON.stringify(value);
}

/** The sd_model_checkpoint onchange (`sd_models.reload_model_weights`) under the queue lock; a failed load keeps the previous setting. */
async function loadCheckpoint(ctx: EmulatorContext, checkpoint: CheckpointInfo, requested: unknown): Promise<void> {
  const previous = ctx.options.get("sd_model_checkpoint");
  ctx.options.set("sd_model_checkpoint", checkpoint.title);
  try {
    await ctx.lock.run(() => ctx.model.ensure(checkpoint));
    ctx.options.set("sd_model_checkpoint", checkpoint.title);
  } catch (error) {
    if (!(error instanceof WebuiError)) throw error;
    // errors.display(e, f"changing setting {key} to {value}")
    console.error(
      `changing setting sd_model_checkpoint to ${String(requested)}: ${error.errorName}\nTraceback (most recent call last):\n${error.errorName}: ${error.message}`,
    );
    ctx.options.set("sd_model_checkpoint", previous);
  }
}

export async function setOptions(ctx: EmulatorContext, body: unknown): Promise<null> {
  const values = parseBody(optionsRequestSchema, body);
  const requested = values["sd_model_checkpoint"];
  const checkpoint = typeof requested === "string" ? ctx.checkpoints.resolve(requested) : undefined;
  if (requested !== undefined && requested !== null && !checkpoint) {
    throw pythonException("RuntimeError", `model ${pythonRepr(requested)} not found`);
  }
  const changesCheckpoint = checkpoint !== undefined && requested !== ctx.options.get("sd_model_checkpoint");
  // set_config sets the keys in the request's order: settings after sd_model_checkpoint (such as
  // sd_checkpoints_limit) do not apply to its load yet.
  for (const [key, value] of Object.entries(values)) {
    if (key !== "sd_model_checkpoint") ctx.options.set(key, value);
    else if (checkpoint && changesCheckpoint) await loadCheckpoint(ctx, checkpoint, requested);
  }
  await ctx.options.save();
  return null;
}
