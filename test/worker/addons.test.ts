// Add-on models (LoRA, VAE, ControlNet, embeddings, upscalers): registered as the original
// solution registers them, checked at submit, carried to the node in the claim, listed on the
// sd-webui surface, and protected from deletion while tasks need them.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ADMIN, call, claim, createKey, createModel, json, registerNode, submit } from "./helpers";
import { registerNodeWithCatalog, TINY_PNG_BASE64 } from "./sdapi-support";

interface ModelView {
  name: string;
  type: string;
  folder: string;
  fileName: string;
  ossPath: string;
  sha256: string | null;
  sizeBytes: number | null;
  status: string;
}

interface Problem {
  code: string;
  detail: string;
  errors?: Array<{ path: string; message: string }>;
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Registers an add-on of `type` and uploads its file in one request. */
async function createAddon(name: string, type: string, fileName?: string, extra: Record<string, unknown> = {}): Promise<ModelView> {
  await json(await call("/models", { token: ADMIN, body: { name, type, ...(fileName ? { fileName } : {}), ...extra } }), 201);
  const res = await call(`/models/${encodeURIComponent(name)}/file`, { method: "PUT", token: ADMIN, body: new TextEncoder().encode(`${type} ${name}`) });
  return json<ModelView>(res, 200);
}

describe("registering add-ons", () => {
  it("takes the original's body {type, name, ossPath, etag}, hashes the object, keeps its file name and stores the type normalized", async () => {
    const content = "lora weights";
    const object = await env.BUCKET.put("nas/Lora/blingdbox_v1_mix.safetensors", content);
    const registered = await json<ModelView>(
      await call("/models", {
        token: ADMIN,
        body: { type: "lora", name: "blingdbox_v1_mix", ossPath: "nas/Lora/blingdbox_v1_mix.safetensors", etag: `"${object!.etag}"` },
      }),
      201,
    );
    expect(registered).toMatchObject({
      name: "blingdbox_v1_mix",
      type: "lora",
      folder: "models/Lora",
      fileName: "blingdbox_v1_mix.safetensors",
      sha256: await sha256Hex(content),
      sizeBytes: content.length,
      status: "unloaded",
    });
    const vae = await json<ModelView>(await call("/models", { token: ADMIN, body: { type: "sdVae", name: "orig-vae" } }), 201);
    expect(vae).toMatchObject({ type: "vae", folder: "models/VAE" });
    const cn = await json<ModelView>(await call("/models", { token: ADMIN, body: { type: "controlNet", name: "orig-cn", fileName: "orig-cn.pth" } }), 201);
    expect(cn).toMatchObject({ type: "controlnet", folder: "models/ControlNet", fileName: "orig-cn.pth" });
    const ckpt = await json<ModelView>(await call("/models", { token: ADMIN, body: { type: "stableDiffusion", name: "orig-ckpt" } }), 201);
    expect(ckpt).toMatchObject({ type: "checkpoint", folder: "models/Stable-diffusion" });

    const sameFile = await json<Problem>(
      await call("/models", { token: ADMIN, body: { type: "lycoris", name: "bling-copy", fileName: "blingdbox_v1_mix.safetensors" } }),
      409,
    );
    expect(sameFile.detail).toContain("blingdbox_v1_mix");
    const wrongEtag = await json<Problem>(
      await call("/models", { token: ADMIN, body: { type: "lora", name: "wrong-etag", ossPath: "nas/Lora/blingdbox_v1_mix.safetensors", etag: "nope" } }),
      422,
    );
    expect(wrongEtag.errors?.map((e) => e.path)).toEqual(["etag"]);
  });

  it("keeps a file's own extension, takes names in any script, and refuses path separators, '..' and control characters naming the field", async () => {
    expect(await json<ModelView>(await call("/models", { token: ADMIN, body: { name: "old-style.ckpt" } }), 201)).toMatchObject({
      fileName: "old-style.ckpt",
      ossPath: "models/old-style.ckpt/old-style.ckpt",
    });
    const unicode = await createModel("墨幽人造人_v1010");
    expect(unicode.sha256).toMatch(/^[0-9a-f]{64}$/);
    const listed = await json<ModelView[]>(await call("/models", { token: ADMIN }), 200);
    expect(listed.find((m) => m.name === "墨幽人造人_v1010")).toMatchObject({ fileName: "墨幽人造人_v1010.safetensors", status: "unloaded" });
    expect(await json<ModelView>(await call("/models", { token: ADMIN, body: { name: "emb", type: "embedding", fileName: "EasyNeg.pt" } }), 201)).toMatchObject(
      {
        fileName: "EasyNeg.pt",
        folder: "embeddings",
      },
    );

    for (const [body, field] of [
      [{ name: "a/b" }, "name"],
      [{ name: "a\\b" }, "name"],
      [{ name: "..up" }, "name"],
      [{ name: "bell\u0007" }, "name"],
      [{ name: "ok-name", fileName: "../escape.safetensors" }, "fileName"],
      [{ name: "ok-name", fileName: "weights.txt" }, "fileName"],
      [{ name: "ok-name", type: "hypernetwork" }, "type"],
      [{ name: "ok-name", type: "lora", folder: "models/SwinIR" }, "folder"],
    ] as const) {
      const problem = await json<Problem>(await call("/models", { token: ADMIN, body }), 422);
      expect(problem.code).toBe("validation_failed");
      expect(problem.errors?.map((e) => e.path)).toContain(field);
    }
    expect(
      await json<ModelView>(
        await call("/models", { token: ADMIN, body: { name: "swin", type: "upscaler", folder: "models/SwinIR", fileName: "swin.pth" } }),
        201,
      ),
    ).toMatchObject({
      folder: "models/SwinIR",
    });
  });

  it("uploads add-on files like checkpoints and filters the list by type, in our names or the original's", async () => {
    const lora = await createAddon("filter-lora", "lora");
    expect(lora).toMatchObject({ sha256: await sha256Hex("lora filter-lora"), status: "unloaded", folder: "models/Lora" });
    await createAddon("filter-vae", "vae", "filter-vae.pt");
    await createModel("filter-ckpt");
    const loras = await json<ModelView[]>(await call("/models?type=lora", { token: ADMIN }), 200);
    expect(loras.map((m) => m.name)).toContain("filter-lora");
    expect(loras.every((m) => m.type === "lora")).toBe(true);
    const vaes = await json<ModelView[]>(await call("/models?type=sdVae", { token: ADMIN }), 200);
    expect(vaes.map((m) => m.name)).toContain("filter-vae");
    expect(vaes.every((m) => m.type === "vae")).toBe(true);
    const checkpoints = await json<ModelView[]>(await call("/models?type=stableDiffusion", { token: ADMIN }), 200);
    expect(checkpoints.map((m) => m.name)).toContain("filter-ckpt");
    expect(checkpoints.map((m) => m.name)).not.toContain("filter-lora");
    expect((await json<Problem>(await call("/models?type=nonsense", { token: ADMIN }), 422)).errors?.[0]?.path).toBe("type");
  });

  it("uploads an add-on with a non-ASCII name in parts, and nodes download it with resume", async () => {
    const name = encodeURIComponent("多部分_lora");
    await json(await call("/models", { token: ADMIN, body: { name: "多部分_lora", type: "lycoris" } }), 201);
    const { uploadId } = await json<{ uploadId: string }>(await call(`/models/${name}/file/uploads`, { token: ADMIN, method: "POST" }), 201);
    const content = "lycoris weights in one part";
    const part = await json<{ partNumber: number; etag: string }>(
      await call(`/models/${name}/file/uploads/${uploadId}/parts/1`, { method: "PUT", token: ADMIN, body: new TextEncoder().encode(content) }),
      200,
    );
    const sha256 = await sha256Hex(content);
    const done = await json<ModelView>(await call(`/models/${name}/file/uploads/${uploadId}/complete`, { token: ADMIN, body: { parts: [part], sha256 } }), 200);
    expect(done).toMatchObject({ type: "lora", folder: "models/Lora", fileName: "多部分_lora.safetensors", sha256, sizeBytes: content.length });
    const node = await createKey("node");
    const ranged = await call(`/nodes/models/${name}/file`, { token: node, headers: { range: "bytes=9-" } });
    expect(ranged.status).toBe(206);
    expect(await ranged.text()).toBe(content.slice(9));
  });
});

describe("only checkpoints are checkpoints", () => {
  it("never lists, chooses, pools or runs on an add-on as a checkpoint", async () => {
    await createAddon("0-a-lora", "lora");
    await createModel("0-ckpt");
    const user = await createKey("user");
    const sdModels = await json<Array<{ name: string }>>(await call("/sdapi/v1/sd-models", { token: user }), 200);
    expect(sdModels.map((m) => m.name)).not.toContain("0-a-lora");
    const pools = await json<{ functions: Array<{ model: string }> }>(await call("/list/sdapi/functions", { token: ADMIN }), 200);
    expect(pools.functions.map((f) => f.model)).not.toContain("0-a-lora");

    const named = await json<Problem>(await submit(user, { prompt: "x", stable_diffusion_model: "0-a-lora" }), 422);
    expect(named.errors).toEqual([{ path: "stable_diffusion_model", message: "0-a-lora is a lora, not a checkpoint" }]);
    const sdapi = await json<{ detail: Array<{ loc: unknown[]; msg: string }> }>(
      await call("/sdapi/v1/txt2img", { token: user, body: { prompt: "x", override_settings: { sd_model_checkpoint: "0-a-lora.safetensors" } } }),
      422,
    );
    expect(sdapi.detail).toEqual([
      { loc: ["body", "override_settings", "sd_model_checkpoint"], msg: "0-a-lora is a lora, not a checkpoint", type: "value_error" },
    ]);
    const asDefault = await call("/options", { token: user, body: { data: { sd_model_checkpoint: "0-a-lora" } } });
    expect(asDefault.status).toBe(404);

    // Extras with no model name take a checkpoint, never the add-on that sorts first.
    const node = await createKey("node");
    await registerNode(node, "node-only-ckpt");
    await json(await submit(user, { image: TINY_PNG_BASE64, upscaler_1: "Lanczos" }, {}, "/extra_images"), 202);
    const claimed = (await claim(node, "node-only-ckpt"))!;
    expect(claimed.task.model.name).toBe("0-ckpt");
  });
});

describe("add-ons at submit", () => {
  it("refuses in one answer every add-on neither registered nor built into the nodes", async () => {
    await createModel("addon-refuse");
    const user = await createKey("user");
    const body = {
      stable_diffusion_model: "addon-refuse",
      prompt: "a cat <lora:nowhere:0.8> <lora:builtin-detail:1>",
      negative_prompt: "<lyco:gone:1>",
      sd_vae: "missing.vae.pt",
      alwayson_scripts: {
        controlnet: {
          args: [{ model: "control_v11p_sd15_canny [d14c016b]" }, { model: "control_missing [12345678]" }, { model: "control_off", enabled: false }],
        },
      },
      hr_upscaler: "Latent",
    };
    const node = await createKey("node");
    await registerNodeWithCatalog(node, "node-addon-catalog", {
      loras: [{ name: "builtin-detail", alias: "builtin-detail", path: "/x/builtin-detail.safetensors" }],
      "controlnet-models": ["control_v11p_sd15_canny [d14c016b]"] as unknown[],
    });
    const problem = await json<Problem>(await submit(user, body), 422);
    expect(problem.code).toBe("addon_not_found");
    expect(problem.errors?.map((e) => e.path)).toEqual(["prompt", "negative_prompt", "sd_vae", "alwayson_scripts.controlnet.args.1.model"]);
    for (const name of ["nowhere", "gone", "missing.vae.pt", "control_missing"]) expect(problem.detail).toContain(name);
    expect(problem.detail).not.toContain("builtin-detail");

    const sdapi = await json<{ detail: Array<{ loc: unknown[]; msg: string; type: string }> }>(
      await call("/sdapi/v1/txt2img", {
        token: user,
        body: { ...body, stable_diffusion_model: undefined, override_settings: { sd_model_checkpoint: "addon-refuse" } },
      }),
      422,
    );
    expect(sdapi.detail.map((d) => d.loc)).toEqual([
      ["body", "prompt"],
      ["body", "negative_prompt"],
      ["body", "sd_vae"],
      ["body", "alwayson_scripts", "controlnet", "args", 1, "model"],
    ]);
    expect(sdapi.detail[0]!.msg).toContain('"nowhere"');

    // A registered add-on whose file has not arrived is not ready.
    await json(await call("/models", { token: ADMIN, body: { name: "no-file-lora", type: "lora" } }), 201);
    const notReady = await json<Problem>(await submit(user, { stable_diffusion_model: "addon-refuse", prompt: "<lora:no-file-lora:1>" }), 409);
    expect(notReady).toMatchObject({ code: "model_file_missing", errors: [{ path: "prompt" }] });
    expect(notReady.detail).toContain("no-file-lora");
  });

  it("puts the registered add-ons in the claim and the task row; built-in ones stay out", async () => {
    await createModel("addon-claim");
    const lora = await createAddon("bling", "lora", "bling_v2_mix.safetensors");
    const vae = await createAddon("my-vae", "sdVae", "kl-f8-anime.pt");
    const cn = await createAddon("canny", "controlNet", "control_v11p_sd15_canny.pth");
    const emb = await createAddon("easyneg", "embedding", "EasyNegative.safetensors");
    const up = await createAddon("ultra", "upscaler", "4x-UltraSharp.pth", { folder: "models/RealESRGAN" });
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "node-addon-claim", "addon-claim");
    const submitted = await json<{ taskId: string }>(
      await submit(user, {
        stable_diffusion_model: "addon-claim",
        prompt: "a cat <lora:bling_v2_mix:0.7> <lora:bling:0.2>",
        negative_prompt: "EasyNegative, lowres",
        sd_vae: "my-vae",
        enable_hr: true,
        hr_upscaler: "ultra",
        alwayson_scripts: { controlnet: { args: [{ model: "control_v11p_sd15_canny [abcdef01]", module: "canny" }] } },
      }),
      202,
    );
    const claimed = (await claim(node, "node-addon-claim"))!;
    expect(claimed.task.id).toBe(submitted.taskId);
    const file = (m: ModelView, type: string) => ({ name: m.name, type, fileName: m.fileName, sha256: m.sha256, sizeBytes: m.sizeBytes, folder: m.folder });
    expect(claimed.task.addons).toEqual([
      file(lora, "lora"),
      file(emb, "embedding"),
      file(vae, "vae"),
      file(cn, "controlnet"),
      { ...file(up, "upscaler"), folder: "models/RealESRGAN" },
    ]);
    // sd-webui finds each by its file: a VAE by file name, the others by file stem.
    expect(claimed.task.vae).toBe("kl-f8-anime.pt");
    expect(claimed.task.payload).toMatchObject({
      prompt: "a cat <lora:bling_v2_mix:0.7> <lora:bling_v2_mix:0.2>",
      hr_upscaler: "4x-UltraSharp",
      alwayson_scripts: { controlnet: { args: [{ model: "control_v11p_sd15_canny [abcdef01]", module: "canny" }] } },
    });
    const row = await env.DB.prepare("SELECT addons FROM tasks WHERE uid = ?").bind(claimed.task.id).first<{ addons: string }>();
    expect(JSON.parse(row!.addons)).toEqual(["bling", "easyneg", "my-vae", "canny", "ultra"]);
  });
});

describe("re-uploaded add-ons", () => {
  it("reach the tasks already waiting for them: the claim names the new file, not the one submitted with", async () => {
    await createModel("addon-reup-ckpt");
    await createAddon("reup-lora", "lora");
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "addon-reup-node", "addon-reup-ckpt");
    await json(await submit(user, { stable_diffusion_model: "addon-reup-ckpt", prompt: "a cat <lora:reup-lora:0.7>" }), 202);

    const newer = "retrained lora weights";
    const res = await call("/models/reup-lora/file", { method: "PUT", token: ADMIN, body: new TextEncoder().encode(newer) });
    const reuploaded = await json<ModelView>(res, 200);
    expect(reuploaded.sha256).toBe(await sha256Hex(newer));

    const claimed = (await claim(node, "addon-reup-node"))!;
    expect(claimed.task.addons).toEqual([
      { name: "reup-lora", type: "lora", fileName: "reup-lora.safetensors", folder: "models/Lora", sha256: await sha256Hex(newer), sizeBytes: newer.length },
    ]);
  });
});

describe("deleting add-ons", () => {
  it("refuses while a waiting or running task needs the add-on; force cancels those tasks", async () => {
    await createModel("addon-del-ckpt");
    const busy = await createAddon("busy-lora", "lora");
    const user = await createKey("user");
    const waiting = await json<{ taskId: string }>(await submit(user, { stable_diffusion_model: "addon-del-ckpt", prompt: "<lora:busy-lora:1>" }), 202);
    const refused = await json<Problem>(await call("/models/busy-lora", { method: "DELETE", token: ADMIN }), 409);
    expect(refused.code).toBe("model_in_use");
    expect(refused.detail).toContain("1 waiting and 0 running");
    await json(await call("/models/busy-lora", { token: ADMIN }), 200);

    const deleted = await json<{ cancelledTasks: number }>(await call("/models/busy-lora?force=true", { method: "DELETE", token: ADMIN }), 200);
    expect(deleted.cancelledTasks).toBe(1);
    expect((await call("/models/busy-lora", { token: ADMIN })).status).toBe(404);
    expect(await env.BUCKET.head(busy.ossPath)).toBeNull();
    const ended = await json<{ status: string }>(await call(`/tasks/${waiting.taskId}/result`, { token: user }), 200);
    expect(ended.status).toBe("cancelled");
    // The checkpoint's other work is untouched.
    await json(await submit(user, { stable_diffusion_model: "addon-del-ckpt", prompt: "plain" }), 202);
  });

  it("deletes an add-on no live task needs", async () => {
    await createAddon("idle-vae", "vae");
    expect(await json(await call("/models/idle-vae", { method: "DELETE", token: ADMIN }), 200)).toMatchObject({ deleted: true, cancelledTasks: 0 });
  });
});

describe("add-on lists on the sd-webui surface", () => {
  it("merge registered add-ons with what nodes have built in, without running a task", async () => {
    await createAddon("list-lora", "lora");
    await createAddon("list-vae", "vae", "list-vae.safetensors");
    await createAddon("list-up", "esrgan", "4x-List.pth");
    await createAddon("list-emb", "textualInversion", "ListEmb.pt");
    await createAddon("list-cn", "controlnet", "control_list.safetensors");
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNodeWithCatalog(node, "node-addon-lists", {
      loras: [{ name: "node-lora", alias: "node-lora", path: "/x/node-lora.safetensors" }],
      "controlnet-models": ["control_v11p_sd15_canny [d14c016b]"] as unknown[],
    });
    expect(await json(await call("/sdapi/v1/loras", { token: user }), 200)).toEqual(
      expect.arrayContaining([
        { name: "node-lora", alias: "node-lora", path: "/x/node-lora.safetensors", metadata: {} },
        { name: "list-lora", alias: "list-lora", path: "models/Lora/list-lora.safetensors", metadata: {} },
      ]),
    );
    expect(await json(await call("/sdapi/v1/sd-vae", { token: user }), 200)).toContainEqual({
      model_name: "list-vae.safetensors",
      filename: "models/VAE/list-vae.safetensors",
    });
    expect(await json(await call("/sdapi/v1/upscalers", { token: user }), 200)).toContainEqual({
      name: "4x-List",
      model_name: "ESRGAN",
      model_path: "models/ESRGAN/4x-List.pth",
      model_url: null,
      scale: 4,
    });
    const embeddings = await json<{ loaded: Record<string, unknown>; skipped: Record<string, unknown> }>(
      await call("/sdapi/v1/embeddings", { token: user }),
      200,
    );
    expect(Object.keys(embeddings.loaded)).toContain("ListEmb");
    expect(embeddings.skipped).toEqual({});
    const controlnet = await json<{ model_list: string[] }>(await call("/controlnet/model_list", { token: user }), 200);
    expect(controlnet.model_list).toEqual(expect.arrayContaining(["control_v11p_sd15_canny [d14c016b]", "control_list"]));
  });
});
