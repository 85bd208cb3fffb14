// Pools: per-checkpoint settings, exposed as the original solution's "functions" API
// (functionName = sd_<sha256(model name)>).
import { createRoute } from "@hono/zod-openapi";
import { z } from "zod";
import { requireRole } from "../auth/middleware";
import { sha256Hex } from "../crypto";
import { listModels, type ModelRow } from "../db/models";
import { deletePool, listPools, type PoolRow, savePools } from "../db/pools";
import { fleetStub, queueStub } from "../fleet/stub";
import { defaultPoolRow, poolSettings } from "../pools/settings";
import { bearerSecurity, jsonContent, openApiApp, problemResponses } from "./openapi-app";

export async function functionName(model: string): Promise<string> {
  return `sd_${await sha256Hex(model)}`;
}

const admin = [requireRole("admin")];
/** Queue `configure` calls in flight at once during a batch update. */
const CONFIGURE_AT_ONCE = 25;

const batchUpdateSchema = z
  .looseObject({
    models: z.array(z.string()).optional().describe("Models to update; all when absent"),
    concurrencyCap: z.number().int().min(1).max(10_000).optional().describe("Tasks of the checkpoint running at once (the original's `control`)"),
    timeout: z.number().int().min(1).max(86_400).optional().describe("Seconds one run may take"),
    extraArgs: z.string().max(2000).optional().describe("Extra sd-webui command-line arguments"),
    env: z.record(z.string(), z.string()).optional(),
    gpuMemorySize: z.number().int().min(0).optional().describe("Minimum GPU memory (MB) of nodes that serve it"),
    instanceType: z.string().max(64).optional().describe("GPU class nodes must report to serve it"),
    minNodes: z.number().int().min(0).max(10_000).optional(),
    maxNodes: z.number().int().min(0).max(10_000).optional().describe("0 means no limit"),
  })
  .openapi("BatchUpdateSdResourceRequest");

type BatchUpdate = z.infer<typeof batchUpdateSchema>;

function applyUpdate(model: ModelRow, current: PoolRow | null, update: BatchUpdate): PoolRow {
  const base = current ?? defaultPoolRow(model.name);
  return {
    checkpoint: model.name,
    concurrencyCap: update.concurrencyCap ?? base.concurrencyCap,
    timeoutSeconds: update.timeout ?? base.timeoutSeconds,
    extraArgs: update.extraArgs ?? base.extraArgs,
    env: update.env ?? base.env,
    minGpuMemoryMb: update.gpuMemorySize ?? base.minGpuMemoryMb,
    gpuClass: update.instanceType ?? base.gpuClass,
    minNodes: update.minNodes ?? base.minNodes,
    maxNodes: update.maxNodes ?? base.maxNodes,
    updatedAt: Date.now(),
  };
}

export const poolRoutes = openApiApp();

poolRoutes.openapi(
  createRoute({
    method: "get",
    path: "/list/sdapi/functions",
    summary: "Pools (one per checkpoint) with queue depth, running tasks and nodes (admin)",
    tags: ["pools"],
    security: bearerSecurity,
    middleware: admin,
    responses: {
      200: jsonContent(z.object({ status: z.string(), functions: z.array(z.record(z.string(), z.unknown())) }).openapi("ListSDFunctionResponse"), "Pools"),
      ...problemResponses,
    },
  }),
  async (c) => {
    const fleet = fleetStub(c.env);
    const [allModels, queues, nodes, poolRows] = await Promise.all([
      listModels(c.env.DB, "checkpoint"),
      fleet.listQueues(),
      fleet.listNodes(),
      listPools(c.env.DB),
    ]);
    const functions = await Promise.all(
      allModels.map(async (model) => {
        const pool = poolRows.find((p) => p.checkpoint === model.name) ?? null;
        const settings = poolSettings(model, pool);
        const queue = queues.find((q) => q.checkpoint === model.name);
        return {
          functionName: await functionName(model.name),
          model: model.name,
          concurrencyCap: settings.concurrencyCap,
          timeout: settings.timeoutSeconds,
          extraArgs: settings.extraArgs,
          env: pool?.env ?? {},
          gpuMemorySize: settings.minGpuMemoryMb,
          instanceType: settings.gpuClass,
          minNodes: settings.minNodes,
          maxNodes: settings.maxNodes,
          queueDepth: queue?.waiting ?? 0,
          running: queue?.running ?? 0,
          nodes: nodes.filter((n) => n.status !== "lost" && n.loadedCheckpoint === model.name).map((n) => n.nodeId),
        };
      }),
    );
    return c.json({ status: "success", functions }, 200);
  },
);

poolRoutes.openapi(
  createRoute({
    method: "post",
    path: "/batch_update_sd_resource",
    summary: "Update pools' settings, for listed models or all (admin)",
    tags: ["pools"],
    security: bearerSecurity,
    middleware: admin,
    request: { body: { content: { "application/json": { schema: batchUpdateSchema } }, required: true } },
    responses: {
      200: jsonContent(
        z.object({ status: z.string(), failFuncList: z.array(z.string()), errMsg: z.string() }).openapi("BatchUpdateSdResourceResponse"),
        "All updated",
      ),
      500: jsonContent(z.object({ status: z.string(), failFuncList: z.array(z.string()), errMsg: z.string() }), "Some failed (as the original answers)"),
      ...problemResponses,
    },
  }),
  async (c) => {
    const update = c.req.valid("json");
    const [allModels, poolRows] = await Promise.all([listModels(c.env.DB, "checkpoint"), listPools(c.env.DB)]);
    const modelsByName = new Map(allModels.map((m) => [m.name, m]));
    const poolsByName = new Map(poolRows.map((p) => [p.checkpoint, p]));
    const wanted = update.models ?? allModels.map((m) => m.name);
    const failFuncList: string[] = [];
    const errors: string[] = [];
    const updates: Array<{ model: ModelRow; row: PoolRow }> = [];
    for (const name of wanted) {
      const model = modelsByName.get(name);
      if (!model) {
        failFuncList.push(name);
        errors.push(`${name}: no such checkpoint`);
        continue;
      }
      const row = applyUpdate(model, poolsByName.get(name) ?? null, update);
      if (row.maxNodes > 0 && row.minNodes > row.maxNodes) {
        failFuncList.push(name);
        errors.push(`${name}: minNodes ${row.minNodes} is above maxNodes ${row.maxNodes}`);
        continue;
      }
      updates.push({ model, row });
    }
    await savePools(
      c.env.DB,
      updates.map((u) => u.row),
    );
    // Queues hear of their settings a bounded number at a time: hundreds of pools in one request.
    for (let i = 0; i < updates.length; i += CONFIGURE_AT_ONCE) {
      const chunk = updates.slice(i, i + CONFIGURE_AT_ONCE);
      const outcomes = await Promise.allSettled(chunk.map(({ model, row }) => queueStub(c.env, model.name).configure(poolSettings(model, row))));
      outcomes.forEach((outcome, j) => {
        if (outcome.status === "fulfilled") return;
        const name = chunk[j]!.model.name;
        failFuncList.push(name);
        errors.push(`${name}: saved, but its queue did not take the settings (${String(outcome.reason).slice(0, 200)}); send the update again`);
      });
    }
    const body = { status: failFuncList.length === 0 ? "success" : "fail", failFuncList, errMsg: errors.join("; ") };
    return c.json(body, failFuncList.length === 0 ? 200 : 500);
  },
);

poolRoutes.openapi(
  createRoute({
    method: "post",
    path: "/del/sd/functions",
    summary: "Reset pools to the defaults, by function name or model name (admin)",
    tags: ["pools"],
    security: bearerSecurity,
    middleware: admin,
    request: {
      body: {
        content: { "application/json": { schema: z.object({ functions: z.array(z.string()).min(1) }).openapi("DelSDFunctionRequest") } },
        required: true,
      },
    },
    responses: {
      200: jsonContent(
        z.object({ status: z.string(), fails: z.array(z.object({ functionName: z.string(), errMsg: z.string() })) }).openapi("DelSDFunctionResponse"),
        "Deleted",
      ),
      500: jsonContent(z.object({ status: z.string(), fails: z.array(z.object({ functionName: z.string(), errMsg: z.string() })) }), "Some failed"),
      ...problemResponses,
    },
  }),
  async (c) => {
    const allModels = await listModels(c.env.DB, "checkpoint");
    const byFunction = new Map(await Promise.all(allModels.map(async (m) => [await functionName(m.name), m] as const)));
    const fails: Array<{ functionName: string; errMsg: string }> = [];
    for (const name of c.req.valid("json").functions) {
      const model = byFunction.get(name) ?? allModels.find((m) => m.name === name);
      if (!model) {
        fails.push({ functionName: name, errMsg: "no such function" });
        continue;
      }
      await deletePool(c.env.DB, model.name);
      await queueStub(c.env, model.name).configure(poolSettings(model, null));
    }
    return c.json({ status: fails.length === 0 ? "success" : "fail", fails }, fails.length === 0 ? 200 : 500);
  },
);
