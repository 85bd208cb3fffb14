// GET /autoscale and node groups through the Worker: who may read it, and figures that follow
// the nodes and the backlog — a group grows from zero when work waits, a node chosen to leave
// gets no more work and is told to drain.
import { describe, expect, it } from "vitest";
import type { AutoscaleAnswer } from "../../src/fleet/autoscale-answer";
import { ADMIN, call, claim, createKey, createModel, finishTask, json, submit } from "./helpers";

const autoscale = async (token: string) => json<AutoscaleAnswer>(await call("/autoscale", { token }), 200);

describe("GET /autoscale access", () => {
  it("answers admin and scaler keys; a scaler key reads nothing else, user and node keys are refused", async () => {
    const scaler = await createKey("scaler");
    expect(scaler.startsWith("sdg_scaler_")).toBe(true);
    const user = await createKey("user");
    const node = await createKey("node");
    await autoscale(ADMIN);
    await autoscale(scaler);
    for (const token of [user, node]) expect((await call("/autoscale", { token })).status).toBe(403);
    expect((await call("/autoscale")).status).toBe(401);
    const elsewhere: Array<[string, Record<string, unknown>?]> = [
      ["/nodes"],
      ["/metrics"],
      ["/groups"],
      ["/keys"],
      ["/tasks"],
      ["/models"],
      ["/txt2img", { prompt: "x" }],
    ];
    for (const [path, body] of elsewhere) {
      const res = await call(path, { token: scaler, ...(body ? { body } : {}) });
      expect(res.status, path).toBe(403);
    }
    expect((await call("/groups/any", { method: "PUT", token: scaler, body: { maxNodes: 1 } })).status).toBe(403);
  });
});

describe("node groups and scaling", () => {
  it("grows a group from zero when work waits, counts its nodes as they boot and work, and drains the idle one it lets go", async () => {
    const scaler = await createKey("scaler");
    const user = await createKey("user");
    const node = await createKey("node");
    const put = await call("/groups/as-g", { method: "PUT", token: ADMIN, body: { gpuClass: "as-gpu", gpuMemoryMb: 24_000, idleSeconds: 0, bootSeconds: 30 } });
    expect(await json(put, 200)).toMatchObject({ name: "as-g", configured: true, gpuClass: "as-gpu", bootSeconds: 30, bootSamples: 0 });
    expect((await autoscale(scaler)).groups["as-g"]).toMatchObject({ desired: 0, current: 0 });

    await createModel("as-m");
    await json(await submit(user, { stable_diffusion_model: "as-m", prompt: "one" }), 202);
    const waiting = (await autoscale(scaler)).groups["as-g"]!;
    expect(waiting).toMatchObject({ desired: 1, current: 0, booting: 0 });
    expect(waiting.reasons.join(" ")).toContain("as-m: 1 waiting");

    const register = { nodeId: "as-n1", group: "as-g", loadedCheckpoint: null, cachedCheckpoints: [], gpuClass: "as-gpu", gpuMemoryMb: 24_000 };
    await json(await call("/nodes/register", { token: node, body: register }), 200);
    expect((await autoscale(scaler)).groups["as-g"]).toMatchObject({ desired: 1, current: 1, booting: 1, ready: 0 });

    const claimed = (await claim(node, "as-n1"))!;
    expect(claimed.task.model.name).toBe("as-m");
    expect((await autoscale(scaler)).groups["as-g"]).toMatchObject({ desired: 1, current: 1, booting: 0, ready: 1, busy: 1, leaving: [] });
    // Its registration → first claim is the group's first boot measured.
    expect(await json(await call("/groups/as-g", { token: ADMIN }), 200)).toMatchObject({ bootSamples: 1 });

    await finishTask(node, claimed);
    expect(await claim(node, "as-n1", 0)).toBeNull();
    // A /metrics scrape shows the figures but decides nothing: the node is not let go.
    expect(await (await call("/metrics", { token: ADMIN })).text()).toContain('sdgate_autoscale_desired_nodes{group="as-g"} 0');
    expect(
      await json(
        await call("/nodes/as-n1/heartbeat", {
          token: node,
          body: { status: "idle", currentTaskId: null, loadedCheckpoint: "as-m", cachedCheckpoints: ["as-m"], gpuClass: "as-gpu", gpuMemoryMb: 24_000 },
        }),
        200,
      ),
    ).toMatchObject({ drain: false });
    // Idle (for the group's idle time, 0 here) with nothing to do: it leaves.
    expect((await autoscale(scaler)).groups["as-g"]).toMatchObject({ desired: 0, leaving: ["as-n1"] });
    expect((await autoscale(scaler)).groups["as-g"]).toMatchObject({ desired: 0, current: 0, draining: 1, leaving: [] });
    const beat = { status: "idle", currentTaskId: null, loadedCheckpoint: "as-m", cachedCheckpoints: ["as-m"], gpuClass: "as-gpu", gpuMemoryMb: 24_000 };
    expect(await json(await call("/nodes/as-n1/heartbeat", { token: node, body: beat }), 200)).toMatchObject({ drain: true });

    // Work that comes now is not given to the leaving node: the group asks for another.
    await json(await submit(user, { stable_diffusion_model: "as-m", prompt: "two" }), 202);
    expect(await claim(node, "as-n1", 0)).toBeNull();
    expect((await autoscale(scaler)).groups["as-g"]).toMatchObject({ desired: 1, current: 0, draining: 1 });

    const metrics = await (await call("/metrics", { token: ADMIN })).text();
    expect(metrics).toContain('sdgate_autoscale_desired_nodes{group="as-g"} 1');
    expect(metrics).toContain('sdgate_autoscale_draining_nodes{group="as-g"} 1');
  });

  it("puts a node that names no group in the one its GPU implies, and refuses bad settings", async () => {
    const node = await createKey("node");
    const body = { nodeId: "as-n2", loadedCheckpoint: null, cachedCheckpoints: [], gpuClass: "NVIDIA L4", gpuMemoryMb: 23_034 };
    await json(await call("/nodes/register", { token: node, body }), 200);
    expect(await json(await call("/groups/nvidia-l4-22gb", { token: ADMIN }), 200)).toMatchObject({
      configured: false,
      gpuClass: "NVIDIA L4",
      gpuMemoryMb: 23_034,
    });
    expect((await autoscale(ADMIN)).groups["nvidia-l4-22gb"]).toMatchObject({ current: 1, booting: 1 });
    expect((await call("/groups/nope", { token: ADMIN })).status).toBe(404);
    const bad = await call("/groups/x", { method: "PUT", token: ADMIN, body: { minNodes: 3, maxNodes: 2 } });
    expect(bad.status).toBe(422);
    expect((await call("/groups/x", { method: "PUT", token: ADMIN, body: { idleSeconds: -1 } })).status).toBe(422);
  });
});
