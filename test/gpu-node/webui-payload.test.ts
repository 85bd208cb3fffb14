// The sd-webui request a claimed task becomes: route, body, input images written back in.
import { describe, expect, it } from "vitest";
import { buildWebuiRequest, InvalidTaskError } from "../../gpu-node/webui/payload.ts";
import type { ClaimedTask } from "../../src/protocol/node.ts";

function task(fields: Partial<ClaimedTask>): ClaimedTask {
  return {
    id: "task-1",
    kind: "txt2img",
    model: { name: "alpha", fileName: "alpha.safetensors", sha256: "a".repeat(64), sizeBytes: 10 },
    vae: null,
    addons: [],
    payload: {},
    inputs: [],
    passthrough: null,
    attempt: 1,
    timeoutSeconds: 60,
    keepInterruptedImages: false,
    ...fields,
  };
}

const png = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
const pngBase64 = Buffer.from(png).toString("base64");

describe("buildWebuiRequest", () => {
  it("sends txt2img to sd-webui's txt2img route with the task id forced, so its progress can be followed", () => {
    const request = buildWebuiRequest(task({ payload: { prompt: "a red barn", steps: 3 } }), []);
    expect(request).toEqual({
      method: "POST",
      path: "/sdapi/v1/txt2img",
      body: { prompt: "a red barn", steps: 3, force_task_id: "task-1" },
      isGeneration: true,
    });
  });

  it("forces the task's own id even when the client sent a force_task_id", () => {
    const request = buildWebuiRequest(task({ payload: { prompt: "x", force_task_id: "someone-else" } }), []);
    expect(request.body.force_task_id).toBe("task-1");
  });

  it("writes each input image as base64 where the Worker took it out, and leaves the task's payload alone", () => {
    const payload = { prompt: "snow", init_images: [null], mask: "keep" };
    const claimed = task({ kind: "img2img", payload, inputs: [{ key: "in-0", pointer: "/init_images/0" }] });
    const request = buildWebuiRequest(claimed, [{ key: "in-0", pointer: "/init_images/0", bytes: png }]);
    expect(request.path).toBe("/sdapi/v1/img2img");
    expect(request.body).toEqual({ prompt: "snow", init_images: [pngBase64], mask: "keep", force_task_id: "task-1" });
    expect(payload.init_images).toEqual([null]);
  });

  it("places an image deep in an extension's arguments, creating what is missing and reading ~1 as a slash", () => {
    const request = buildWebuiRequest(task({ kind: "img2img", payload: { alwayson_scripts: {} } }), [
      { key: "cn", pointer: "/alwayson_scripts/control~1net/args/0/image", bytes: png },
    ]);
    expect(request.body.alwayson_scripts).toEqual({ "control/net": { args: [{ image: pngBase64 }] } });
  });

  it("appends with the - pointer token", () => {
    const request = buildWebuiRequest(task({ kind: "extras_batch", payload: { imageList: [{ data: "first" }] } }), [
      { key: "b", pointer: "/imageList/-", bytes: png },
    ]);
    expect(request.body.imageList).toEqual([{ data: "first" }, pngBase64]);
  });

  it("sends extras to their routes without a forced task id: they are not generations", () => {
    const single = buildWebuiRequest(task({ kind: "extras", payload: { upscaling_resize: 2 } }), []);
    expect(single).toEqual({ method: "POST", path: "/sdapi/v1/extra-single-image", body: { upscaling_resize: 2 }, isGeneration: false });
    const batch = buildWebuiRequest(task({ kind: "extras_batch", payload: {} }), []);
    expect(batch).toMatchObject({ path: "/sdapi/v1/extra-batch-images", isGeneration: false });
    expect(batch.body).not.toHaveProperty("force_task_id");
  });

  it("sends a passthrough task to the method and route it carries", () => {
    const request = buildWebuiRequest(task({ kind: "passthrough", payload: { name: "x" }, passthrough: { method: "PUT", path: "/controlnet/settings" } }), []);
    expect(request).toEqual({ method: "PUT", path: "/controlnet/settings", body: { name: "x" }, isGeneration: false });
  });

  it("refuses a passthrough task without a route", () => {
    expect(() => buildWebuiRequest(task({ kind: "passthrough", passthrough: null }), [])).toThrow(
      new InvalidTaskError("passthrough task without a method and path"),
    );
  });

  it("refuses an input whose pointer cannot be followed, naming the input", () => {
    const place = (pointer: string) => () => buildWebuiRequest(task({ payload: { init_images: [] } }), [{ key: "in-7", pointer, bytes: png }]);
    expect(place("/init_images/3")).toThrow(InvalidTaskError);
    expect(place("/init_images/3")).toThrow(/^cannot place input in-7: .*past the end/);
    expect(place("/init_images/first")).toThrow(/cannot place input in-7: .*not an array index/);
    expect(place("/__proto__/polluted")).toThrow(/cannot place input in-7: .*forbidden/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
