// The sd-webui surface as sd-webui's own clients see it: every option the nodes report, values
// coerced as sd-webui's pydantic models coerce them, Basic challenges on 401, and the script and
// catalog reads answered from the nodes' catalogs without a task.
import { describe, expect, it } from "vitest";
import { call, claim, createKey, createModel, json, registerNode } from "./helpers";
import { basic, taskIds } from "./sdapi-support";

async function registerWithCatalog(node: string, nodeId: string, catalog: Record<string, unknown>): Promise<void> {
  const body = { nodeId, loadedCheckpoint: null, cachedCheckpoints: [], gpuClass: "test-gpu", gpuMemoryMb: 24_000, catalog };
  await json(await call("/nodes/register", { token: node, body }), 200);
}

describe("sd-webui options", () => {
  it("answers every option the nodes report, with the caller's own values over them", async () => {
    const user = await createKey("user");
    const node = await createKey("node");
    await registerWithCatalog(node, "fid-options", {
      options: { fid_node_option: 42, fid_list_option: ["a", "b"], sd_model_checkpoint: "on-that-node.safetensors [0123456789]" },
    });
    const fresh = await json<Record<string, unknown>>(await call("/sdapi/v1/options", { token: user }), 200);
    expect(fresh).toMatchObject({ fid_node_option: 42, fid_list_option: ["a", "b"], samples_format: "png", sd_model_checkpoint: null });

    // Posting back what was read stores nothing; a changed value is the caller's own.
    await json(await call("/sdapi/v1/options", { token: user, body: { ...fresh, fid_node_option: 7 } }), 200);
    expect((await json<{ data: Record<string, unknown> }>(await call("/options", { token: user }), 200)).data).toEqual({ fid_node_option: 7 });
    expect((await json<Record<string, unknown>>(await call("/sdapi/v1/options", { token: user }), 200)).fid_node_option).toBe(7);
  });
});

describe("pydantic's lax coercion", () => {
  it("runs a txt2img whose numbers and booleans came as strings, with them coerced", async () => {
    await createModel("fid-coerce");
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "fid-coerce-n", "fid-coerce");
    const body = { stable_diffusion_model: "fid-coerce", steps: "4", restore_faces: "true", cfg_scale: "7", seed: "-1", tiling: 0, width: 512.0 };
    await json(await call("/sdapi/v1/txt2img", { token: user, body, headers: { "request-type": "async" } }), 202);
    const claimed = (await claim(node, "fid-coerce-n"))!;
    expect(claimed.task.payload).toMatchObject({ steps: 4, restore_faces: true, cfg_scale: 7, seed: -1, tiling: false, width: 512 });
  });

  it("still refuses what pydantic refuses, in FastAPI's shape", async () => {
    const user = await createKey("user");
    for (const [field, value, msg, type] of [
      ["steps", "four", "value is not a valid integer", "type_error.integer"],
      ["steps", "4.5", "value is not a valid integer", "type_error.integer"],
      ["restore_faces", "maybe", "value could not be parsed to a boolean", "type_error.bool"],
      ["cfg_scale", "seven", "value is not a valid float", "type_error.float"],
    ] as const) {
      const refused = await json<{ detail: Array<{ loc: Array<string | number>; msg: string; type: string }> }>(
        await call("/sdapi/v1/txt2img", { token: user, body: { stable_diffusion_model: "fid-none", [field]: value } }),
        422,
      );
      expect(refused.detail).toContainEqual({ loc: ["body", field], msg, type });
    }
  });
});

describe("sd-webui authentication", () => {
  it("challenges with WWW-Authenticate: Basic on the sd-webui surface only", async () => {
    for (const path of ["/sdapi/v1/options", "/controlnet/model_list"]) {
      const anonymous = await call(path);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get("www-authenticate")).toBe("Basic");
    }
    const wrong = await call("/sdapi/v1/sd-models", { headers: basic("me", "not-a-key") });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("www-authenticate")).toBe("Basic");
    const original = await call("/models");
    expect(original.status).toBe(401);
    expect(original.headers.get("www-authenticate")).toBeNull();
  });
});

describe("sd-webui catalog reads", () => {
  it("answers scripts, script-info and the other lists from the nodes' catalogs, without a task", async () => {
    const user = await createKey("user");
    const node = await createKey("node");
    const scriptInfo = { name: "fid x/y/z plot", is_alwayson: false, is_img2img: false, args: [] };
    const catalog = {
      scripts: { txt2img: ["fid x/y/z plot"], img2img: ["fid loopback"] },
      "script-info": [scriptInfo],
      hypernetworks: [{ name: "fid-hn", path: "/models/hypernetworks/fid-hn.pt" }],
      "face-restorers": [{ name: "fid-CodeFormer", cmd_dir: null }],
      "prompt-styles": [{ name: "fid-style", prompt: "x", negative_prompt: "" }],
      schedulers: [{ name: "fid-karras", label: "Karras", aliases: null, default_rho: 7, need_inner_model: false }],
      "latent-upscale-modes": [{ name: "fid-Latent" }],
    };
    await registerWithCatalog(node, "fid-catalog", catalog);
    const scripts = await json<{ txt2img: string[]; img2img: string[] }>(await call("/sdapi/v1/scripts", { token: user }), 200);
    expect(scripts.txt2img).toContain("fid x/y/z plot");
    expect(scripts.img2img).toContain("fid loopback");
    expect(await json(await call("/sdapi/v1/script-info", { token: user }), 200)).toContainEqual(scriptInfo);
    for (const list of ["hypernetworks", "face-restorers", "prompt-styles", "schedulers", "latent-upscale-modes"] as const) {
      expect(await json(await call(`/sdapi/v1/${list}`, { token: user }), 200)).toContainEqual(catalog[list][0]);
    }
    expect(await taskIds(user)).toEqual([]);
    expect(await claim(node, "fid-catalog", 100)).toBeNull();
  });
});
