// The add-on models a generation or extras request names, read the way sd-webui reads them:
// extra-network tags in the prompts, the VAE setting, ControlNet units' models, embeddings the
// prompts mention, and upscaler choices. Pure: no I/O; resolving names is ./addon-resolution.ts.
import type { AddonType } from "../protocol/model-types";

export interface AddonReference {
  type: AddonType;
  /** The name as the request gives it (a ControlNet model without its ` [hash]` suffix). */
  name: string;
  /** Where the request names it, e.g. `prompt` or `alwayson_scripts.controlnet.args.0.model`. */
  path: string;
}

export const PROMPT_FIELDS = ["prompt", "negative_prompt", "hr_prompt", "hr_negative_prompt"] as const;
const UPSCALER_FIELDS = ["hr_upscaler", "upscaler_1", "upscaler_2"] as const;

/** sd-webui `modules/extra_networks.py` `re_extra_net = r"<(\w+):([^>]+)>"` (Python's \w is Unicode-aware). */
const EXTRA_NETWORK_TAG = /<([\p{L}\p{N}_]+):([^>]+)>/gu;
/** Tags the built-in Lora extension handles (`lyco` is its alias: `extensions-builtin/Lora/scripts/lora_script.py`). */
const LORA_TAGS = new Set(["lora", "lyco"]);
/** sd_vae values that are sd-webui's own choices, not files (`modules/sd_vae.py`, `modules/shared_items.py`). */
const BUILT_IN_VAE_CHOICES = new Set(["Automatic", "None"]);
/** ControlNet's "no model" (`internal_controlnet/external_code.py`). */
const NO_CONTROLNET_MODEL = "None";
/** The ` [hash]` suffix ControlNet's model list puts after a model's name. */
const HASH_SUFFIX = /\s*\[[0-9a-fA-F]{8,10}\]$/;

function stringAt(record: Record<string, unknown>, key: string): string | null {
  const value = record[key];
  return typeof value === "string" && value.trim() !== "" ? value.trim() : null;
}

function asRecord(value: unknown): Record<string, unknown> | null {
  return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

/**
 * The network names of a prompt's extra-network tags of the given kinds. As sd-webui's
 * `ExtraNetworkParams`, an argument with exactly one `=` is named, the rest positional; the name is
 * the first positional argument.
 */
export function extraNetworkNames(prompt: string, tags: ReadonlySet<string> = LORA_TAGS): string[] {
  const names: string[] = [];
  for (const match of prompt.matchAll(EXTRA_NETWORK_TAG)) {
    if (!tags.has(match[1]!)) continue;
    const positional = match[2]!.split(":").filter((item) => item.split("=").length !== 2);
    if (positional[0]) names.push(positional[0]);
  }
  return names;
}

/** The ControlNet model a unit names, or null when the unit is disabled or names none. */
function controlNetModel(unit: unknown): string | null {
  const record = asRecord(unit);
  if (!record || record.enabled === false) return null;
  const model = stringAt(record, "model");
  if (!model) return null;
  const name = model.replace(HASH_SUFFIX, "");
  return name === NO_CONTROLNET_MODEL ? null : name;
}

/**
 * Whether `name` occurs in `text` as a word of its own, as sd-webui's embedding lookup finds it
 * by the prompt's tokens (`modules/textual_inversion/textual_inversion.py`
 * `find_embedding_at_position`): not inside a longer word.
 */
export function mentionsWord(text: string, name: string): boolean {
  if (!name) return false;
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(?<![\\p{L}\\p{N}_])${escaped}(?![\\p{L}\\p{N}_])`, "u").test(text);
}

/**
 * Every add-on the request names. `embeddingNames` are the registered embeddings' names: an
 * embedding is only an add-on when it is registered (any other word is just a word).
 */
export function addonReferences(body: Record<string, unknown>, embeddingNames: readonly string[] = []): AddonReference[] {
  const refs: AddonReference[] = [];
  for (const field of PROMPT_FIELDS) {
    const prompt = stringAt(body, field);
    if (!prompt) continue;
    for (const name of extraNetworkNames(prompt)) refs.push({ type: "lora", name, path: field });
    // sd-webui strips the tags before it tokenizes the prompt.
    const words = prompt.replace(EXTRA_NETWORK_TAG, " ");
    for (const name of embeddingNames) if (mentionsWord(words, name)) refs.push({ type: "embedding", name, path: field });
  }
  const vae = stringAt(body, "sd_vae");
  if (vae && !BUILT_IN_VAE_CHOICES.has(vae)) refs.push({ type: "vae", name: vae, path: "sd_vae" });
  const overrides = asRecord(body.override_settings);
  const overrideVae = overrides ? stringAt(overrides, "sd_vae") : null;
  if (overrideVae && !BUILT_IN_VAE_CHOICES.has(overrideVae)) refs.push({ type: "vae", name: overrideVae, path: "override_settings.sd_vae" });
  const units = asRecord(asRecord(body.alwayson_scripts)?.controlnet)?.args;
  if (Array.isArray(units)) {
    units.forEach((unit, index) => {
      const name = controlNetModel(unit);
      if (name) refs.push({ type: "controlnet", name, path: `alwayson_scripts.controlnet.args.${index}.model` });
    });
  }
  for (const field of UPSCALER_FIELDS) {
    const name = stringAt(body, field);
    if (name) refs.push({ type: "upscaler", name, path: field });
  }
  return refs;
}

/** Copies of the containers on the way to `path`, so setting the leaf leaves `body` unchanged. */
function setAt(body: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const keys = path.split(".");
  const copy = (node: unknown, depth: number): unknown => {
    if (depth === keys.length) return value;
    const key = keys[depth]!;
    if (Array.isArray(node)) return node.map((item, i) => (String(i) === key ? copy(item, depth + 1) : item));
    const record = asRecord(node) ?? {};
    return { ...record, [key]: copy(record[key], depth + 1) };
  };
  return copy(body, 0) as Record<string, unknown>;
}

/** A prompt whose lora/lyco tags naming `from` name `to` instead, their other arguments kept. */
function renameInTags(prompt: string, from: string, to: string): string {
  return prompt.replace(EXTRA_NETWORK_TAG, (tag, kind: string, args: string) => {
    if (!LORA_TAGS.has(kind)) return tag;
    const items = args.split(":");
    const first = items.findIndex((item) => item.split("=").length !== 2);
    if (first < 0 || items[first] !== from) return tag;
    items[first] = to;
    return `<${kind}:${items.join(":")}>`;
  });
}

/**
 * The request with each add-on named as sd-webui on the node knows its file: sd-webui finds a
 * LoRA, ControlNet model or upscaler by the file's stem and a VAE by its file name, while a
 * request may name a registered add-on by its registered name.
 */
export function renameAddons(body: Record<string, unknown>, renames: ReadonlyArray<{ ref: AddonReference; to: string }>): Record<string, unknown> {
  let renamed = body;
  for (const { ref, to } of renames) {
    if (ref.name === to || ref.type === "embedding") continue;
    if (ref.type === "lora") {
      const prompt = stringAt(renamed, ref.path);
      if (prompt) renamed = { ...renamed, [ref.path]: renameInTags(prompt, ref.name, to) };
    } else {
      renamed = setAt(renamed, ref.path, to);
    }
  }
  return renamed;
}
