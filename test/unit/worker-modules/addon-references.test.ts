// Working out the add-ons a request names (src/tasks/addon-references.ts), resolving them against
// the registry and the nodes' catalogs (src/tasks/addon-resolution.ts), and the merged add-on
// lists the sd-webui surface answers (src/sdapi/addon-lists.ts).
import { describe, expect, it } from "vitest";
import type { ModelRow } from "../../../src/db/models";
import type { WebuiCatalog } from "../../../src/protocol/node";
import { controlNetModelList, embeddingList, loraList, upscalerList, vaeList } from "../../../src/sdapi/addon-lists";
import { addonReferences, extraNetworkNames, mentionsWord, renameAddons } from "../../../src/tasks/addon-references";
import { embeddingNames, resolveAddons } from "../../../src/tasks/addon-resolution";

const SHA = "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa";

function model(name: string, type: string, fileName: string, sha256: string | null = SHA, folder: string | null = null): ModelRow {
  return {
    name,
    type,
    fileName,
    ossPath: `models/${name}/${fileName}`,
    etag: null,
    sha256,
    sizeBytes: 10,
    folder,
    failedReason: null,
    failedAt: null,
    loadSeconds: 8,
    inferenceSeconds: 3,
    registeredAt: 0,
    updatedAt: 0,
  };
}

describe("extraNetworkNames", () => {
  it("takes the name of each lora and lyco tag, whatever the weights and named arguments", () => {
    expect(extraNetworkNames("a cat <lora:blingdbox_v1_mix:1>, <lora:detail:0.5:lbw=0,1,1> <lyco:hada-style:0.8> <hypernet:hn:1>")).toEqual([
      "blingdbox_v1_mix",
      "detail",
      "hada-style",
    ]);
  });

  it("reads names in any script, and skips named arguments to find the first positional one", () => {
    expect(extraNetworkNames("<lora:墨幽人造人_v1010:0.7> <lora:te=0.5:real_name:1>")).toEqual(["墨幽人造人_v1010", "real_name"]);
  });

  it("ignores text that is not a tag", () => {
    expect(extraNetworkNames("a <lora> tag, lora:x:1, <:x:1>")).toEqual([]);
  });
});

describe("mentionsWord", () => {
  it("finds an embedding name as a word of its own, not inside another word", () => {
    expect(mentionsWord("a photo, easynegative, blurry", "easynegative")).toBe(true);
    expect(mentionsWord("(easynegative:1.2)", "easynegative")).toBe(true);
    expect(mentionsWord("noteasynegative", "easynegative")).toBe(false);
    expect(mentionsWord("easynegative_v2", "easynegative")).toBe(false);
  });
});

describe("addonReferences", () => {
  it("finds LoRAs in every prompt field, VAEs, ControlNet models without their hash, and upscalers", () => {
    const refs = addonReferences(
      {
        prompt: "<lora:a:1> a cat",
        negative_prompt: "<lyco:b:0.5>",
        hr_prompt: "<lora:c:1>",
        hr_negative_prompt: "<lora:d:1>",
        sd_vae: "vae-ft-mse.safetensors",
        override_settings: { sd_vae: "kl-f8.safetensors" },
        alwayson_scripts: {
          controlnet: {
            args: [
              { model: "control_v11p_sd15_canny [d14c016b]", enabled: true },
              { model: "control_v11f1p_sd15_depth", enabled: false },
              { model: "None" },
              { model: "control_v11p_sd15_openpose" },
            ],
          },
        },
        hr_upscaler: "Latent",
        upscaler_1: "4x-UltraSharp",
        upscaler_2: "None",
      },
      [],
    );
    expect(refs).toEqual([
      { type: "lora", name: "a", path: "prompt" },
      { type: "lora", name: "b", path: "negative_prompt" },
      { type: "lora", name: "c", path: "hr_prompt" },
      { type: "lora", name: "d", path: "hr_negative_prompt" },
      { type: "vae", name: "vae-ft-mse.safetensors", path: "sd_vae" },
      { type: "vae", name: "kl-f8.safetensors", path: "override_settings.sd_vae" },
      { type: "controlnet", name: "control_v11p_sd15_canny", path: "alwayson_scripts.controlnet.args.0.model" },
      { type: "controlnet", name: "control_v11p_sd15_openpose", path: "alwayson_scripts.controlnet.args.3.model" },
      { type: "upscaler", name: "Latent", path: "hr_upscaler" },
      { type: "upscaler", name: "4x-UltraSharp", path: "upscaler_1" },
      { type: "upscaler", name: "None", path: "upscaler_2" },
    ]);
  });

  it("treats Automatic and None as sd-webui's own VAE choices", () => {
    expect(addonReferences({ sd_vae: "Automatic", override_settings: { sd_vae: "None" } })).toEqual([]);
  });

  it("names only registered embeddings, and not the text inside a tag", () => {
    const refs = addonReferences({ prompt: "a cat, easynegative <lora:badhands:1>", negative_prompt: "badhands" }, ["easynegative", "badhands", "unused"]);
    expect(refs).toEqual([
      { type: "lora", name: "badhands", path: "prompt" },
      { type: "embedding", name: "easynegative", path: "prompt" },
      { type: "embedding", name: "badhands", path: "negative_prompt" },
    ]);
  });

  it("finds nothing in a request without add-ons or with malformed fields", () => {
    expect(addonReferences({ prompt: "a cat", steps: 20, alwayson_scripts: { controlnet: { args: "nope" } } })).toEqual([]);
    expect(addonReferences({ prompt: 3, alwayson_scripts: { controlnet: { args: [null, 4] } } })).toEqual([]);
  });
});

describe("renameAddons", () => {
  it("names each add-on as sd-webui knows its file, keeping weights, other tags and the original body", () => {
    const body = {
      prompt: "<lora:bling:0.7:lbw=1> <lora:other:1> <lyco:te=1:bling:0.2> bling",
      hr_upscaler: "ultra",
      override_settings: { sd_vae: "my-vae", CLIP_stop_at_last_layers: 2 },
      alwayson_scripts: { controlnet: { args: [{ model: "None" }, { model: "canny", weight: 0.5 }] } },
    };
    const refs = addonReferences(body);
    const to: Record<string, string> = { bling: "blingdbox_v1_mix", ultra: "4x-UltraSharp", "my-vae": "kl-f8.pt", canny: "control_v11p_sd15_canny" };
    const renamed = renameAddons(
      body,
      refs.filter((ref) => ref.name in to).map((ref) => ({ ref, to: to[ref.name]! })),
    );
    expect(renamed).toEqual({
      prompt: "<lora:blingdbox_v1_mix:0.7:lbw=1> <lora:other:1> <lyco:te=1:blingdbox_v1_mix:0.2> bling",
      hr_upscaler: "4x-UltraSharp",
      override_settings: { sd_vae: "kl-f8.pt", CLIP_stop_at_last_layers: 2 },
      alwayson_scripts: { controlnet: { args: [{ model: "None" }, { model: "control_v11p_sd15_canny", weight: 0.5 }] } },
    });
    expect(body.alwayson_scripts.controlnet.args[1]!.model).toBe("canny");
    expect(body.prompt).toContain("<lora:bling:0.7");
  });
});

describe("resolveAddons", () => {
  const catalog: WebuiCatalog = {
    loras: [{ name: "builtin-lora", alias: "builtin-alias", path: "/x/builtin-lora.safetensors" }],
    "sd-vae": [{ model_name: "vae-ft-mse.safetensors", filename: "/x/vae-ft-mse.safetensors" }],
    "controlnet-models": ["control_v11p_sd15_canny [d14c016b]"],
    upscalers: [{ name: "R-ESRGAN 4x+" }],
  };
  const registry = [
    model("bling", "lora", "blingdbox_v1_mix.safetensors"),
    model("my-vae", "sdVae", "my-vae.pt"),
    model("openpose", "controlNet", "control_v11p_sd15_openpose.pth"),
    model("pending-lora", "lora", "pending-lora.safetensors", null),
    model("ultra", "upscaler", "4x-UltraSharp.pth", SHA, "models/ESRGAN"),
  ];

  it("matches registered add-ons by name, file stem or file name, each once", () => {
    const refs = addonReferences({
      prompt: "<lora:bling:1> <lora:blingdbox_v1_mix:0.5>",
      sd_vae: "my-vae.pt",
      alwayson_scripts: { controlnet: { args: [{ model: "control_v11p_sd15_openpose [abcdef12]" }] } },
      upscaler_1: "4x-UltraSharp",
    });
    const resolved = resolveAddons(refs, registry, {});
    expect(resolved.registered.map((m) => m.name)).toEqual(["bling", "my-vae", "openpose", "ultra"]);
    expect(resolved.missing).toEqual([]);
  });

  it("accepts what the nodes have built in, and the upscalers every sd-webui has", () => {
    const refs = addonReferences({
      prompt: "<lora:builtin-alias:1>",
      sd_vae: "vae-ft-mse.safetensors",
      alwayson_scripts: { controlnet: { args: [{ model: "control_v11p_sd15_canny" }] } },
      hr_upscaler: "Latent (nearest-exact)",
      upscaler_1: "R-ESRGAN 4x+",
      upscaler_2: "Lanczos",
    });
    expect(resolveAddons(refs, registry, catalog)).toEqual({ registered: [], missing: [], notReady: [] });
  });

  it("lists every name that is neither registered nor built in, and registered ones without a file", () => {
    const refs = addonReferences({
      prompt: "<lora:nowhere:1> <lora:pending-lora:1>",
      sd_vae: "missing-vae.safetensors",
      alwayson_scripts: { controlnet: { args: [{ model: "control_v11p_sd15_depth [12345678]" }] } },
      upscaler_1: "ESRGAN_4x",
    });
    const resolved = resolveAddons(refs, registry, catalog);
    expect(resolved.missing.map((r) => `${r.type}:${r.name}@${r.path}`)).toEqual([
      "lora:nowhere@prompt",
      "vae:missing-vae.safetensors@sd_vae",
      "controlnet:control_v11p_sd15_depth@alwayson_scripts.controlnet.args.0.model",
      "upscaler:ESRGAN_4x@upscaler_1",
    ]);
    expect(resolved.notReady.map((n) => n.model.name)).toEqual(["pending-lora"]);
  });

  it("does not take a checkpoint or another type's model for an add-on", () => {
    const refs = addonReferences({ prompt: "<lora:sd15:1> <lora:my-vae:1>" });
    const resolved = resolveAddons(refs, [...registry, model("sd15", "checkpoint", "sd15.safetensors")], {});
    expect(resolved.missing.map((r) => r.name)).toEqual(["sd15", "my-vae"]);
  });

  it("finds registered embeddings by their file's stem, as sd-webui names them", () => {
    const names = embeddingNames([model("easyneg", "textualInversion", "EasyNegative.safetensors"), model("bling", "lora", "bling.safetensors")]);
    expect(names).toEqual(["EasyNegative"]);
  });
});

describe("add-on lists", () => {
  const registry = [
    model("bling", "lora", "blingdbox_v1_mix.safetensors"),
    model("shared-lora", "lora", "shared.safetensors"),
    model("no-file", "lora", "no-file.safetensors", null),
    model("my-vae", "vae", "my-vae.pt"),
    model("ultra", "upscaler", "4x-UltraSharp.pth", SHA, "models/RealESRGAN"),
    model("easyneg", "embedding", "EasyNegative.safetensors"),
    model("openpose", "controlnet", "control_v11p_sd15_openpose.pth"),
    model("canny", "controlnet", "control_v11p_sd15_canny.pth"),
    model("sd15", "checkpoint", "sd15.safetensors"),
  ];
  const catalog: WebuiCatalog = {
    loras: [{ name: "shared", alias: "shared", path: "/data/models/Lora/shared.safetensors" }],
    "sd-vae": [{ model_name: "vae-ft-mse.safetensors", filename: "/data/models/VAE/vae-ft-mse.safetensors" }],
    upscalers: [{ name: "None", model_name: null, model_path: null, model_url: null, scale: 4 }],
    embeddings: { loaded: { builtin: { step: 1, sd_checkpoint: null, sd_checkpoint_name: null, shape: 768, vectors: 1 } }, skipped: {} },
    "controlnet-models": ["control_v11p_sd15_canny [d14c016b]"],
  };

  it("merge registered add-ons with files into the nodes' lists in sd-webui's item shapes", () => {
    expect(loraList(registry, catalog)).toEqual([
      { name: "shared", alias: "shared", path: "/data/models/Lora/shared.safetensors", metadata: {} },
      { name: "blingdbox_v1_mix", alias: "blingdbox_v1_mix", path: "models/Lora/blingdbox_v1_mix.safetensors", metadata: {} },
    ]);
    expect(vaeList(registry, catalog)).toEqual([
      { model_name: "vae-ft-mse.safetensors", filename: "/data/models/VAE/vae-ft-mse.safetensors" },
      { model_name: "my-vae.pt", filename: "models/VAE/my-vae.pt" },
    ]);
    expect(upscalerList(registry, catalog)).toEqual([
      { name: "None", model_name: null, model_path: null, model_url: null, scale: 4 },
      { name: "4x-UltraSharp", model_name: "RealESRGAN", model_path: "models/RealESRGAN/4x-UltraSharp.pth", model_url: null, scale: 4 },
    ]);
    expect(Object.keys(embeddingList(registry, catalog).loaded)).toEqual(["builtin", "EasyNegative"]);
    expect(controlNetModelList(registry, catalog)).toEqual({ model_list: ["control_v11p_sd15_canny [d14c016b]", "control_v11p_sd15_openpose"] });
  });
});
