// Node groups (issue 15): nodes of one kind (GPU class and memory) that scale together. A node
// names its group when it registers, or gets the one its GPU implies. Each group has settings
// (an admin's, else the defaults) and what Fleet learned of it: the GPU its nodes report (so a
// group scaled to zero still knows which pools it may serve) and how long its new nodes take to
// boot, measured by Fleet from a node's registration to its first claim (the agent registers,
// then starts sd-webui, then claims), smoothed over the last few boots.
import { z } from "zod";
import type { ScalingGroup } from "./scaling.ts";

export const groupNameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9._-]+$/);

export const groupSettingsSchema = z.object({
  /** The GPU the group's nodes have; learned from its nodes when not set. */
  gpuClass: z.string().min(1).max(128).nullable().default(null),
  gpuMemoryMb: z.number().int().nonnegative().nullable().default(null),
  minNodes: z.number().int().min(0).max(10_000).default(0),
  /** 0 = no limit. */
  maxNodes: z.number().int().min(0).max(10_000).default(0),
  /** A node idle this long may leave (scale in). */
  idleSeconds: z.number().int().min(0).max(86_400).default(120),
  /** How long waiting work may wait for a node before the group grows. */
  targetWaitSeconds: z.number().int().min(1).max(86_400).default(60),
  /** Boot time assumed until the group's nodes have been measured. */
  bootSeconds: z.number().int().min(0).max(3_600).default(120),
});
export type GroupSettings = z.output<typeof groupSettingsSchema>;

export const DEFAULT_GROUP_SETTINGS: GroupSettings = groupSettingsSchema.parse({});

export interface NodeGroupRecord {
  name: string;
  /** Null: never set by an admin (the defaults apply). */
  settings: GroupSettings | null;
  /** The GPU its nodes last reported. */
  seenGpuClass: string | null;
  seenGpuMemoryMb: number | null;
  /** Smoothed registration → first claim of its nodes, and how many were measured. */
  learnedBootMs: number | null;
  bootSamples: number;
}

/** Weight of the newest boot in the smoothed estimate. */
const BOOT_SMOOTHING = 0.3;

/** `<gpu class>-<GB>gb`, e.g. `nvidia-l4-24gb`: what a node that names no group belongs to. */
export function defaultGroupName(gpuClass: string, gpuMemoryMb: number): string {
  const slug = gpuClass
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 48);
  return `${slug || "gpu"}-${Math.round(gpuMemoryMb / 1024)}gb`;
}

export function newGroupRecord(name: string): NodeGroupRecord {
  return { name, settings: null, seenGpuClass: null, seenGpuMemoryMb: null, learnedBootMs: null, bootSamples: 0 };
}

export function withBootSample(record: NodeGroupRecord, bootMs: number): NodeGroupRecord {
  const learned = record.learnedBootMs === null ? bootMs : record.learnedBootMs + BOOT_SMOOTHING * (bootMs - record.learnedBootMs);
  return { ...record, learnedBootMs: Math.round(learned), bootSamples: record.bootSamples + 1 };
}

/** The group as the scaling policy sees it; null while its GPU is unknown (no settings, no node seen). */
export function scalingGroup(record: NodeGroupRecord): ScalingGroup | null {
  const s = record.settings ?? DEFAULT_GROUP_SETTINGS;
  const gpuClass = s.gpuClass ?? record.seenGpuClass;
  const gpuMemoryMb = s.gpuMemoryMb ?? record.seenGpuMemoryMb;
  if (gpuClass === null || gpuMemoryMb === null) return null;
  return {
    name: record.name,
    gpuClass,
    gpuMemoryMb,
    minNodes: s.minNodes,
    maxNodes: s.maxNodes,
    idleMs: s.idleSeconds * 1000,
    targetWaitMs: s.targetWaitSeconds * 1000,
    bootMs: record.learnedBootMs ?? s.bootSeconds * 1000,
    configured: record.settings !== null,
  };
}
