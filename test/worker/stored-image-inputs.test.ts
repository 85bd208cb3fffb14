// Stored images as inputs: a caller's earlier result (or upload) named by its key in init_images,
// mask, an extras image or a ControlNet unit reaches the node; a key that is missing or another
// caller's is refused at submit, naming it.
import { describe, expect, it } from "vitest";
import type { ClaimResponse } from "../../src/protocol/node";
import { call, claim, createKey, createModel, finishTask, json, registerNode, submit, TINY_PNG } from "./helpers";

interface Submitted {
  taskId: string;
}
interface Problem {
  code: string;
  detail: string;
  errors?: Array<{ path: string; message: string }>;
}

async function previousResult(user: string, node: string, model: string): Promise<string> {
  const { taskId } = await json<Submitted>(await submit(user, { stable_diffusion_model: model, prompt: "first" }), 202);
  await finishTask(node, (await claim(node, `${model}-n`))!);
  const { images } = await json<{ status: string; images: string[] }>(await call(`/tasks/${taskId}/result`, { token: user }), 200);
  expect(images).toHaveLength(1);
  return images[0]!;
}

async function readInput(node: string, claimed: ClaimResponse, key: string): Promise<Response> {
  return call(`/nodes/tasks/${claimed.task.id}/inputs/${key}`, { token: node, headers: { "lease-id": claimed.lease.id } });
}

describe("stored images as inputs", () => {
  it("runs an img2img on the caller's previous result, and the node receives its bytes", async () => {
    const model = "stored-own";
    await createModel(model);
    const user = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, `${model}-n`, model);
    const key = await previousResult(user, node, model);
    expect(key).toMatch(/^images\//);

    const body = {
      stable_diffusion_model: model,
      init_images: [key],
      mask: key,
      alwayson_scripts: { controlnet: { args: [{ image: key, module: "canny" }] } },
    };
    const { taskId } = await json<Submitted>(await submit(user, body, {}, "/img2img"), 202);
    const claimed = (await claim(node, `${model}-n`))!;
    expect(claimed.task.inputs.map((input) => input.pointer).sort()).toEqual(["/alwayson_scripts/controlnet/args/0/image", "/init_images/0", "/mask"]);
    expect(claimed.task.inputs.every((input) => input.key === key)).toBe(true);
    const read = await readInput(node, claimed, key);
    expect(read.status).toBe(200);
    expect(new Uint8Array(await read.arrayBuffer())).toEqual(TINY_PNG);
    // Only the results the task names: another of the caller's outputs is not an input of it.
    expect((await readInput(node, claimed, key.replace(/_0\.png$/, "_1.png"))).status).toBe(403);
    await finishTask(node, claimed);
    expect((await json<{ status: string }>(await call(`/tasks/${taskId}/result`, { token: user }), 200)).status).toBe("succeeded");
  });

  it("refuses another caller's result and a missing key at submit, naming them, on both surfaces", async () => {
    const model = "stored-refused";
    await createModel(model);
    const alice = await createKey("user");
    const bob = await createKey("user");
    const node = await createKey("node");
    await registerNode(node, `${model}-n`, model);
    const alices = await previousResult(alice, node, model);
    const missing = alices.replace(/_0\.png$/, "_7.png");

    const stolen = await json<Problem>(await submit(bob, { stable_diffusion_model: model, init_images: [alices] }, {}, "/img2img"), 422);
    expect(stolen.errors).toEqual([{ path: "init_images.0", message: expect.stringContaining(alices) }]);
    const gone = await json<Problem>(await submit(alice, { stable_diffusion_model: model, image: missing }, {}, "/extra_images"), 422);
    expect(gone.errors).toEqual([{ path: "image", message: expect.stringContaining(missing) }]);
    const sdapi = await json<{ detail: Array<{ loc: Array<string | number>; msg: string }> }>(
      await call("/sdapi/v1/img2img", { token: bob, body: { stable_diffusion_model: model, init_images: [alices] } }),
      422,
    );
    expect(sdapi.detail[0]!.loc).toEqual(["body", "init_images", 0]);
    expect(sdapi.detail[0]!.msg).toContain(alices);
    // Nothing was queued: the node finds no work.
    expect(await claim(node, `${model}-n`, 200)).toBeNull();
  });
});
