// A placement trace: the fleet (nodes with what they have loaded and cached at t = 0), the
// checkpoints (pool settings and timings) and the arrivals. Times are milliseconds of virtual
// time from the start of the trace.
import { readFile } from "node:fs/promises";
import { z } from "zod";

const checkpointSchema = z.object({
  name: z.string().min(1),
  family: z.enum(["sd15", "sdxl"]),
  /** Mean time of one task; each arrival may carry its own. */
  inferenceMs: z.number().positive(),
  /** Loading it into sd-webui (the switch). */
  loadMs: z.number().nonnegative(),
  /** Extra when the file is not on the node's disk. */
  downloadMs: z.number().nonnegative(),
  /** Loading it from a node's RAM cache instead of disk; absent = derived from loadMs as Fleet does (ramLoadMsFor, src/fleet/placement.ts). */
  ramLoadMs: z.number().nonnegative().optional(),
  /** Its file's size, counted against a node's disk budget (0: not counted). */
  sizeMb: z.number().nonnegative().default(0),
  /** Pool settings, as in POST /batch_update_sd_resource. Absent cap = unlimited. */
  concurrencyCap: z.number().int().positive().optional(),
  minNodes: z.number().int().nonnegative().default(0),
  maxNodes: z.number().int().nonnegative().default(0),
  minGpuMemoryMb: z.number().int().nonnegative().default(0),
  gpuClass: z.string().nullable().default(null),
});

const nodeSchema = z.object({
  id: z.string().min(1),
  gpuMemoryMb: z.number().int().positive(),
  gpuClass: z.string().min(1),
  loaded: z.string().nullable(),
  cached: z.array(z.string()),
  cachedAddons: z.array(z.string()).default([]),
  /** Disk for checkpoints and add-ons together, least recently used evicted first; absent = unlimited. */
  diskBudgetMb: z.number().positive().optional(),
  /** Checkpoints sd-webui keeps in RAM besides the loaded one (least recently used evicted first); absent = none. */
  ramCacheCheckpoints: z.number().int().nonnegative().default(0),
});

/** An add-on model (LoRA, VAE, ControlNet) tasks may need beside their checkpoint. */
const addonSchema = z.object({
  name: z.string().min(1),
  type: z.enum(["lora", "vae", "controlnet"]),
  sizeMb: z.number().nonnegative(),
  /** Fetching it onto a node that lacks it (at the bandwidth the checkpoints' downloads assume). */
  downloadMs: z.number().nonnegative(),
});

const arrivalSchema = z.object({
  atMs: z.number().nonnegative(),
  checkpoint: z.string(),
  inferenceMs: z.number().positive().optional(),
  addons: z.array(z.string()).optional(),
});

export const traceSchema = z
  .object({
    name: z.string().min(1),
    description: z.string(),
    nodes: z.array(nodeSchema).min(1),
    checkpoints: z.array(checkpointSchema).min(1),
    addons: z.array(addonSchema).default([]),
    arrivals: z.array(arrivalSchema).min(1),
  })
  .superRefine((trace, ctx) => {
    const names = new Set(trace.checkpoints.map((c) => c.name));
    if (names.size !== trace.checkpoints.length) ctx.addIssue({ code: "custom", message: "duplicate checkpoint name" });
    if (new Set(trace.nodes.map((n) => n.id)).size !== trace.nodes.length) ctx.addIssue({ code: "custom", message: "duplicate node id" });
    for (const [i, node] of trace.nodes.entries()) {
      for (const name of [node.loaded, ...node.cached]) {
        if (name !== null && !names.has(name)) ctx.addIssue({ code: "custom", path: ["nodes", i], message: `unknown checkpoint ${name}` });
      }
    }
    const addonNames = new Set(trace.addons.map((a) => a.name));
    for (const [i, node] of trace.nodes.entries()) {
      for (const name of node.cachedAddons) if (!addonNames.has(name)) ctx.addIssue({ code: "custom", path: ["nodes", i], message: `unknown add-on ${name}` });
    }
    for (const [i, arrival] of trace.arrivals.entries()) {
      for (const name of arrival.addons ?? []) {
        if (!addonNames.has(name)) ctx.addIssue({ code: "custom", path: ["arrivals", i, "addons"], message: `unknown add-on ${name}` });
      }
      if (!names.has(arrival.checkpoint)) {
        ctx.addIssue({ code: "custom", path: ["arrivals", i, "checkpoint"], message: `unknown checkpoint ${arrival.checkpoint}` });
      }
      const previous = trace.arrivals[i - 1];
      if (previous && previous.atMs > arrival.atMs) ctx.addIssue({ code: "custom", path: ["arrivals", i, "atMs"], message: "arrivals must be in time order" });
    }
    for (const [i, c] of trace.checkpoints.entries()) {
      if (!trace.nodes.some((n) => n.gpuMemoryMb >= c.minGpuMemoryMb && (c.gpuClass === null || c.gpuClass === n.gpuClass))) {
        ctx.addIssue({ code: "custom", path: ["checkpoints", i], message: `no node may serve ${c.name}` });
      }
    }
  });

export type Trace = z.infer<typeof traceSchema>;
export type TraceCheckpoint = Trace["checkpoints"][number];
export type TraceNode = Trace["nodes"][number];
export type TraceAddon = Trace["addons"][number];

export async function loadTrace(path: string): Promise<Trace> {
  const raw: unknown = JSON.parse(await readFile(path, "utf8"));
  const parsed = traceSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`${path}: not a placement trace:\n${z.prettifyError(parsed.error)}`);
  return parsed.data;
}
