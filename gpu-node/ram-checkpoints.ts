// How many checkpoints sd-webui may hold in RAM besides the loaded one (`--ram-checkpoints`):
// sd-webui's `sd_checkpoints_limit` counts the loaded model too, and its settings allow 1–10.

/** sd-webui's `sd_checkpoints_limit` slider goes up to 10 models: the loaded one and 9 more. */
export const MAX_RAM_CHECKPOINTS = 9;

/**
 * The share of the machine's RAM the held checkpoints may take. The rest is for sd-webui itself
 * (Python, torch, the loaded model's text encoders and VAE), the system, and the page cache that
 * keeps loads from disk fast.
 */
const RAM_SHARE_FOR_CHECKPOINTS = 0.5;

/** Assumed size of a checkpoint while none is on disk: an SDXL checkpoint in fp16. */
const ASSUMED_CHECKPOINT_BYTES = 7 * 1024 ** 3;

/**
 * Without `--ram-checkpoints`: as many of the largest checkpoint on disk as fit in half the RAM (a
 * model held in RAM takes about its file's size in fp16). Computed again before each load, so a
 * larger checkpoint arriving lowers it before it is loaded.
 */
export function defaultRamCheckpoints(totalMemoryBytes: number, checkpointSizesBytes: readonly number[]): number {
  const largest = checkpointSizesBytes.length > 0 ? Math.max(...checkpointSizesBytes) : ASSUMED_CHECKPOINT_BYTES;
  const fitting = Math.floor((totalMemoryBytes * RAM_SHARE_FOR_CHECKPOINTS) / Math.max(largest, 1));
  return Math.max(0, Math.min(MAX_RAM_CHECKPOINTS, fitting));
}

/** sd-webui's settings that hold `count` checkpoints in RAM besides the loaded one. */
export function ramCheckpointSettings(count: number): Record<string, unknown> {
  return {
    sd_checkpoints_limit: count + 1,
    // Others go to RAM, not VRAM (sd-webui's default, set in case a saved config.json says otherwise).
    sd_checkpoints_keep_in_cpu: true,
    // "obsolete; set to 0 and use the two settings above instead" (modules/shared_options.py): its
    // state dicts would take RAM a second time, and they are keyed by checkpoint objects that every
    // refresh-checkpoints (which the agent calls before a switch) replaces, so they never hit.
    sd_checkpoint_cache: 0,
  };
}
