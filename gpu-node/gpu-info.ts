// What GPU this machine has, for placement: the first GPU's name and memory from nvidia-smi.
// Without nvidia-smi (no NVIDIA GPU, or a dev machine running the emulator) the answer is
// "unknown" / 0 and the operator can say it with --gpu-class / --gpu-memory-mb.
import { execFile } from "node:child_process";

export interface GpuInfo {
  gpuClass: string;
  gpuMemoryMb: number;
}

export const UNKNOWN_GPU: GpuInfo = { gpuClass: "unknown", gpuMemoryMb: 0 };

/** Parses `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits`. */
export function parseNvidiaSmi(output: string): GpuInfo | null {
  const first = output.split(/\r?\n/).find((line) => line.trim() !== "");
  if (!first) return null;
  const comma = first.lastIndexOf(",");
  if (comma < 0) return null;
  const name = first.slice(0, comma).trim();
  const memory = Number(first.slice(comma + 1).trim());
  if (!name || !Number.isFinite(memory) || memory < 0) return null;
  return { gpuClass: name, gpuMemoryMb: Math.round(memory) };
}

export function detectGpu(timeoutMs = 10_000): Promise<GpuInfo | null> {
  return new Promise((resolve) => {
    execFile("nvidia-smi", ["--query-gpu=name,memory.total", "--format=csv,noheader,nounits"], { timeout: timeoutMs, windowsHide: true }, (error, stdout) =>
      resolve(error ? null : parseNvidiaSmi(String(stdout))),
    );
  });
}
