// The fleet's sd-webui lists (src/fleet/catalog.ts): the union of what every live node reported,
// each item once by name.
// test/unit/worker-modules: pure functions of Worker modules, run in Node but type-checked with the
// Worker's tsconfig.json, whose globals (D1Database) and extensionless imports these modules use.
import { describe, expect, it } from "vitest";
import { mergeCatalogs } from "../../../src/fleet/catalog";
import type { WebuiCatalog } from "../../../src/protocol/node";

describe("mergeCatalogs", () => {
  it("is empty for no nodes", () => {
    expect(mergeCatalogs([])).toEqual({});
  });

  it("is one node's catalog as it is", () => {
    const only: WebuiCatalog = { samplers: [{ name: "Euler" }, { name: "DPM++ 2M" }], loras: [] };
    expect(mergeCatalogs([only])).toEqual(only);
  });

  it("takes the union, in the order first reported", () => {
    const merged = mergeCatalogs([{ samplers: [{ name: "Euler" }, { name: "DDIM" }] }, { samplers: [{ name: "DDIM" }, { name: "UniPC" }, { name: "Euler" }] }]);
    expect(merged.samplers).toEqual([{ name: "Euler" }, { name: "DDIM" }, { name: "UniPC" }]);
  });

  it("keeps the first node's version of an item both report", () => {
    const merged = mergeCatalogs([{ samplers: [{ name: "Euler", aliases: ["euler"] }] }, { samplers: [{ name: "Euler", aliases: ["k_euler"], options: {} }] }]);
    expect(merged.samplers).toEqual([{ name: "Euler", aliases: ["euler"] }]);
  });

  it("includes a list only some nodes report", () => {
    const merged = mergeCatalogs([{ samplers: [{ name: "Euler" }] }, { upscalers: [{ name: "Lanczos" }] }]);
    expect(merged).toEqual({ samplers: [{ name: "Euler" }], upscalers: [{ name: "Lanczos" }] });
  });

  it("keeps a list that is reported empty", () => {
    expect(mergeCatalogs([{ loras: [] }, { loras: [] }])).toEqual({ loras: [] });
  });

  it("drops duplicates within one node's list too", () => {
    expect(mergeCatalogs([{ "prompt-styles": [{ name: "cinematic" }, { name: "cinematic" }] }])["prompt-styles"]).toEqual([{ name: "cinematic" }]);
  });

  it("identifies items by model_name or title when they have no name", () => {
    const merged = mergeCatalogs([
      { "sd-vae": [{ model_name: "vae-ft-mse", filename: "/a/vae-ft-mse.pt" }], "face-restorers": [{ title: "CodeFormer" }] },
      { "sd-vae": [{ model_name: "vae-ft-mse", filename: "/b/vae-ft-mse.pt" }], "face-restorers": [{ title: "CodeFormer" }, { title: "GFPGAN" }] },
    ]);
    expect(merged["sd-vae"]).toEqual([{ model_name: "vae-ft-mse", filename: "/a/vae-ft-mse.pt" }]);
    expect(merged["face-restorers"]).toEqual([{ title: "CodeFormer" }, { title: "GFPGAN" }]);
  });

  it("prefers name over model_name and title to identify an item", () => {
    const merged = mergeCatalogs([
      { upscalers: [{ name: "R-ESRGAN 4x+", model_name: "RealESRGAN_x4plus" }] },
      { upscalers: [{ name: "R-ESRGAN 4x+", model_name: "other" }] },
    ]);
    expect(merged.upscalers).toEqual([{ name: "R-ESRGAN 4x+", model_name: "RealESRGAN_x4plus" }]);
  });

  it("compares nameless items by their whole value", () => {
    const merged = mergeCatalogs([{ "latent-upscale-modes": ["Latent", { mode: 1 }] }, { "latent-upscale-modes": ["Latent", { mode: 1 }, { mode: 2 }] }]);
    expect(merged["latent-upscale-modes"]).toEqual(["Latent", { mode: 1 }, { mode: 2 }]);
  });

  it("leaves the nodes' catalogs untouched", () => {
    const a: WebuiCatalog = { samplers: [{ name: "Euler" }] };
    const b: WebuiCatalog = { samplers: [{ name: "DDIM" }] };
    mergeCatalogs([a, b]);
    expect(a).toEqual({ samplers: [{ name: "Euler" }] });
    expect(b).toEqual({ samplers: [{ name: "DDIM" }] });
  });
});

describe("mergeCatalogs with dicts", () => {
  it("merges options key by key, the first node's value winning", () => {
    const merged = mergeCatalogs([{ options: { samples_format: "png", sd_vae: "Automatic" } }, { options: { samples_format: "jpg", eta_ddim: 0 } }]);
    expect(merged.options).toEqual({ samples_format: "png", sd_vae: "Automatic", eta_ddim: 0 });
  });

  it("unions the script lists of each mode", () => {
    const merged = mergeCatalogs([
      { scripts: { txt2img: ["prompt matrix"], img2img: ["loopback"] } },
      { scripts: { txt2img: ["prompt matrix", "x/y/z plot"], img2img: [] } },
    ]);
    expect(merged.scripts).toEqual({ txt2img: ["prompt matrix", "x/y/z plot"], img2img: ["loopback"] });
  });
});
