// A task from submission to result, driven through the node protocol as a gpu-node would.
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, claim, createKey, createModel, finishTask, json, largePngBase64, registerNode, submit, TINY_PNG } from "./helpers";

interface Submitted {
  taskId: string;
  status: string;
  ossUrl: string[];
}
interface Result {
  taskId: string;
  status: string;
  images: string[];
  ossUrl: string[];
  parameters: Record<string, unknown>;
  info: Record<string, unknown>;
  attempts: number;
  message?: string;
}

describe("task life", () => {
  it("async submit → claim → progress → upload → complete → result → signed PNG", async () => {
    await createModel("life-a");
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "node-life-a");
    const submitted = await json<Submitted>(
      await submit(user, { stable_diffusion_model: "life-a", prompt: "a cat", steps: 20, unknown_field: { kept: true } }),
      202,
    );
    expect(submitted).toMatchObject({ status: "waiting", ossUrl: [] });

    const waiting = await json<{ status: string; queuePosition: number }>(await call(`/tasks/${submitted.taskId}/progress`, { token: user }), 200);
    expect(waiting).toMatchObject({ status: "waiting", queuePosition: 1 });

    const claimed = (await claim(node, "node-life-a"))!;
    expect(claimed.task.kind).toBe("txt2img");
    expect(claimed.task.model.name).toBe("life-a");
    expect(claimed.task.payload).toMatchObject({ prompt: "a cat", steps: 20, unknown_field: { kept: true } });
    expect(claimed.task.payload).not.toHaveProperty("stable_diffusion_model");
    expect(claimed.task.attempt).toBe(1);

    const progressed = await json<{ cancel: boolean }>(
      await call(`/nodes/tasks/${claimed.task.id}/progress`, {
        token: node,
        body: { leaseId: claimed.lease.id, progress: 0.4, etaRelative: 2, state: { sampling_step: 8 }, currentImage: "iVBORw0KGgo=" },
      }),
      200,
    );
    expect(progressed.cancel).toBe(false);
    const running = await json<{ status: string; progress: number; currentImage: string }>(
      await call(`/tasks/${submitted.taskId}/progress`, { token: user }),
      200,
    );
    expect(running).toMatchObject({ status: "running", progress: 0.4, currentImage: "iVBORw0KGgo=" });

    await finishTask(node, claimed, 2);
    const result = await json<Result>(await call(`/tasks/${submitted.taskId}/result`, { token: user }), 200);
    expect(result.status).toBe("succeeded");
    expect(result.images).toEqual([`images/${await ownerOf(user)}/${submitted.taskId}_0.png`, `images/${await ownerOf(user)}/${submitted.taskId}_1.png`]);
    expect(result.info).toEqual({ seed: 1 });
    expect(result.attempts).toBe(1);
    const image = await call(new URL(result.ossUrl[0]!).pathname + new URL(result.ossUrl[0]!).search);
    expect(image.status).toBe(200);
    expect(image.headers.get("content-type")).toBe("image/png");
    expect(new Uint8Array(await image.arrayBuffer())).toEqual(TINY_PNG);
    const done = await json<{ progress: number; status: string }>(await call(`/tasks/${submitted.taskId}/progress`, { token: user }), 200);
    expect(done).toMatchObject({ status: "succeeded", progress: 1 });
  });

  it("takes images and completion in one multipart request, fenced by the lease", async () => {
    await createModel("life-multi");
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "node-life-multi", "life-multi");
    const submitted = await json<Submitted>(await submit(user, { stable_diffusion_model: "life-multi" }), 202);
    const claimed = (await claim(node, "node-life-multi"))!;
    const deliver = (leaseId: string, images: number) => {
      const form = new FormData();
      form.append("result", JSON.stringify({ leaseId, imageCount: images, info: { seed: 5 } }));
      for (let i = 0; i < images; i++) form.append("image", new Blob([TINY_PNG], { type: "image/png" }), `${i}.png`);
      return exports.default.fetch(`http://sdgate.test/nodes/tasks/${claimed.task.id}/result`, {
        method: "POST",
        headers: { authorization: `Bearer ${node}` },
        body: form,
      });
    };
    expect((await deliver("lease_not_it", 1)).status).toBe(409);
    expect((await deliver(claimed.lease.id, 2)).status).toBe(200);
    const result = await json<Result>(await call(`/tasks/${submitted.taskId}/result`, { token: user }), 200);
    expect(result).toMatchObject({ status: "succeeded", info: { seed: 5 } });
    expect(result.images).toHaveLength(2);
    const image = new URL(result.ossUrl[1]!);
    expect(new Uint8Array(await (await call(image.pathname + image.search)).arrayBuffer())).toEqual(TINY_PNG);
  });

  it("sync submit waits for the node and answers {taskId,status,ossUrl}", async () => {
    await createModel("life-sync");
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "node-life-sync");
    const pending = call("/txt2img", { token: user, body: { stable_diffusion_model: "life-sync", prompt: "sync" } });
    const claimed = (await claim(node, "node-life-sync", 3000))!;
    await finishTask(node, claimed);
    const answer = await json<Submitted>(await pending, 200);
    expect(answer.status).toBe("succeeded");
    expect(answer.ossUrl).toHaveLength(1);
    expect(answer.ossUrl[0]).toMatch(/\/images\/.+_0\.png\?exp=\d+&sig=/);
  });

  it("keeps queue positions in priority and FIFO order", async () => {
    await createModel("life-order");
    const user = await createKey("user");
    const first = await json<Submitted>(await submit(user, { stable_diffusion_model: "life-order" }), 202);
    const second = await json<Submitted>(await submit(user, { stable_diffusion_model: "life-order" }), 202);
    const urgent = await json<Submitted>(await submit(user, { stable_diffusion_model: "life-order" }, { "task-priority": "5" }), 202);
    const position = async (id: string) => (await json<{ queuePosition: number }>(await call(`/tasks/${id}/progress`, { token: user }), 200)).queuePosition;
    expect([await position(urgent.taskId), await position(first.taskId), await position(second.taskId)]).toEqual([1, 2, 3]);
    const node = await createKey("node");
    await registerNode(node, "node-life-order");
    const claimed = (await claim(node, "node-life-order"))!;
    const row = await env.DB.prepare("SELECT task_id FROM tasks WHERE uid = ?").bind(claimed.task.id).first<{ task_id: string }>();
    expect(row!.task_id).toBe(urgent.taskId);
  });

  it("moves large inline images to R2 and gives the node their keys", async () => {
    await createModel("life-img");
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, "node-life-img");
    const big = largePngBase64();
    const small = btoa(String.fromCharCode(...TINY_PNG));
    const submitted = await json<Submitted>(
      await submit(
        user,
        {
          stable_diffusion_model: "life-img",
          init_images: [`data:image/png;base64,${big}`, small],
          alwayson_scripts: { controlnet: { args: [{ image: big }] } },
        },
        {},
        "/img2img",
      ),
      202,
    );
    const claimed = (await claim(node, "node-life-img"))!;
    expect(claimed.task.inputs.map((i) => i.pointer).sort()).toEqual(["/alwayson_scripts/controlnet/args/0/image", "/init_images/0"]);
    expect(claimed.task.payload.init_images).toEqual([claimed.task.inputs.find((i) => i.pointer === "/init_images/0")!.key, small]);
    const stored = await env.DB.prepare("SELECT request FROM tasks WHERE task_id = ?").bind(submitted.taskId).first<{ request: string }>();
    expect(stored!.request.length).toBeLessThan(2000);
    const input = claimed.task.inputs[0]!;
    const read = await call(`/nodes/tasks/${claimed.task.id}/inputs/${input.key}`, { token: node, headers: { "lease-id": claimed.lease.id } });
    expect(read.status).toBe(200);
    expect(btoa(String.fromCharCode(...new Uint8Array(await read.arrayBuffer())))).toBe(big);
    expect((await call(`/nodes/tasks/${claimed.task.id}/inputs/${input.key}`, { token: node, headers: { "lease-id": "lease_wrong" } })).status).toBe(409);
    expect((await call(`/nodes/tasks/${claimed.task.id}/inputs/inputs/other/x.png`, { token: node, headers: { "lease-id": claimed.lease.id } })).status).toBe(
      403,
    );
  });

  it("accepts the key of an earlier upload, but only the caller's own", async () => {
    await createModel("life-upload");
    const alice = await createKey("user");
    const bob = await createKey("user");
    const uploaded = await json<{ key: string }>(await call("/uploads", { token: alice, body: TINY_PNG, headers: { "content-type": "image/png" } }), 201);
    expect(uploaded.key).toMatch(/^inputs\/.+\.png$/);
    await json(await submit(alice, { stable_diffusion_model: "life-upload", init_images: [uploaded.key] }, {}, "/img2img"), 202);
    const stolen = await json<{ code: string; detail: string }>(
      await submit(bob, { stable_diffusion_model: "life-upload", init_images: [uploaded.key] }, {}, "/img2img"),
      422,
    );
    expect(stolen.code).toBe("validation_failed");
    expect(stolen.detail).toContain(uploaded.key);
    const jsonUpload = await json<{ key: string }>(
      await call("/uploads", { token: bob, body: { image: `data:image/png;base64,${btoa(String.fromCharCode(...TINY_PNG))}` } }),
      201,
    );
    expect(jsonUpload.key).toContain("inputs/");
  });

  it("resolves the checkpoint from the key's options when the request names none", async () => {
    await createModel("life-default");
    const user = await createKey("user");
    const none = await json<{ code: string }>(await submit(user, { prompt: "x" }), 422);
    expect(none.code).toBe("no_default_model");
    await json(await call("/options", { token: user, body: { data: { sd_model_checkpoint: "life-default", CLIP_stop_at_last_layers: 2 } } }), 200);
    const submitted = await json<Submitted>(await submit(user, { prompt: "x", override_settings: { CLIP_stop_at_last_layers: 1 } }), 202);
    const row = await env.DB.prepare("SELECT checkpoint, request FROM tasks WHERE task_id = ?")
      .bind(submitted.taskId)
      .first<{ checkpoint: string; request: string }>();
    expect(row!.checkpoint).toBe("life-default");
    expect(JSON.parse(row!.request).override_settings).toEqual({ CLIP_stop_at_last_layers: 1 });
    const options = await json<{ data: Record<string, unknown> }>(await call("/options", { token: user }), 200);
    expect(options.data).toEqual({ sd_model_checkpoint: "life-default", CLIP_stop_at_last_layers: 2 });
    const unknown = await json<{ code: string }>(await call("/options", { token: user, body: { data: { sd_model_checkpoint: "nope" } } }), 404);
    expect(unknown.code).toBe("model_not_found");
  });
});

async function ownerOf(token: string): Promise<string> {
  const rows = await env.DB.prepare("SELECT id, token_hash FROM api_keys").all<{ id: string; token_hash: string }>();
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token));
  const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return rows.results.find((r) => r.token_hash === hex)!.id;
}
