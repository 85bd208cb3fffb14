// Which checkpoints sd-webui holds as loaded models, as far as the agent can tell: nothing in
// sd-webui's API lists them, so the agent replays what v1.10 does on each switch it asked for
// (modules/sd_models.py `reuse_model_from_already_loaded`, settings `sd_checkpoints_limit` and
// `sd_checkpoints_keep_in_cpu`; the emulator models the same in emulator/loaded-model.ts):
// - models over the limit (after the setting was lowered) are unloaded, least recently used first,
//   never the one asked for;
// - a checkpoint already held is switched to without reading its file ("Using already loaded model");
// - below the limit a new model is created beside the others;
// - at the limit the least recently used model is reused for the new weights, so it drops out.
// Entries are checkpoint paths as `titlePath` gives them ("<short hash>/<file>"); the first is the
// one sd-webui last switched to.

export class HeldModels {
  private paths: string[] = [];

  /** A new sd-webui run, which loaded `loaded` (null: none known) at start. */
  reset(loaded: string | null): void {
    this.paths = loaded ? [loaded] : [];
  }

  /** sd-webui switched to `path` with `sd_checkpoints_limit` at `limit` (nothing happens when it was the last one). */
  switchedTo(path: string, limit: number): void {
    if (this.paths[0] === path) return;
    const held = this.withinLimit(path, limit);
    if (held.includes(path)) this.paths = [path, ...held.filter((entry) => entry !== path)];
    else this.paths = [path, ...(limit > 1 && held.length < limit ? held : held.slice(0, -1))];
  }

  /**
   * A switch to `path` failed after sd-webui had taken a model for it: at the limit that was the
   * least recently used one, which then holds the previous weights again (`reload_model_weights`
   * restores them) but is no longer among the loaded models.
   */
  failedSwitchTo(path: string, limit: number): void {
    const held = this.withinLimit(path, limit);
    this.paths = limit > 1 && held.length < limit ? held : held.slice(0, -1);
  }

  /** What sd-webui holds besides `loaded`, most recently used first. */
  besides(loaded: string | null): string[] {
    return this.paths.filter((entry) => entry !== loaded);
  }

  private withinLimit(wanted: string, limit: number): string[] {
    const held = [...this.paths];
    for (let i = held.length - 1; i >= 0; i--) {
      if (held[i] !== wanted && held.length > limit && limit > 0) held.splice(i, 1);
    }
    return held;
  }
}
