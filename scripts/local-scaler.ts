// The local scaler: what KEDA does for a Kubernetes node group, on one machine. It reads
// GET /autoscale with a scaler key and starts gpu-node agents (each supervising an sd-webui
// emulator) until the group has the desired count. It never stops one: the fleet picks the nodes
// that leave and tells them to drain, and each finishes its task, deregisters and exits.
import { DEV_ADMIN_TOKEN, type RunningAgent, startAgent } from "./local-stack.ts";

/** The local group: what the emulator nodes report, and settings that make the loop quick to watch. */
export const LOCAL_GROUP = "local-emulator";
export const LOCAL_GPU = { gpuClass: "emulator", gpuMemoryMb: 24_000 };

export interface LocalScalerOptions {
  gateway: string;
  scalerKey: string;
  nodeKey: string;
  /** How often /autoscale is read. */
  pollMs?: number;
  /** The group's settings (PUT /groups/{name}); absent fields keep their defaults. */
  group?: { idleSeconds?: number; targetWaitSeconds?: number; maxNodes?: number; bootSeconds?: number };
  /** Agent output: "inherit" shows it in this terminal. */
  stdio?: "inherit" | "pipe" | "ignore";
  stepMs?: number;
  loadMs?: number;
  /** Told of each node started and each that left. */
  onChange?: (event: { kind: "started" | "left"; nodeId: string; nodes: number }) => void;
}

export interface LocalScaler {
  /** Agents running now (booting, working or draining). */
  agents(): RunningAgent[];
  /** Every agent started so far, with the ones that have left. */
  started(): RunningAgent[];
  /** Stops reading /autoscale and drains every agent. */
  stop(): Promise<void>;
}

interface AutoscaleAnswer {
  groups: Record<string, { desired: number; leaving: string[] }>;
}

export async function putLocalGroup(gateway: string, settings: LocalScalerOptions["group"] = {}, adminToken = DEV_ADMIN_TOKEN): Promise<void> {
  const res = await fetch(`${gateway}/groups/${LOCAL_GROUP}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ ...LOCAL_GPU, ...settings }),
  });
  if (!res.ok) throw new Error(`PUT /groups/${LOCAL_GROUP} answered ${res.status}: ${await res.text()}`);
}

export async function startLocalScaler(options: LocalScalerOptions): Promise<LocalScaler> {
  await putLocalGroup(options.gateway, options.group);
  const running = new Map<string, RunningAgent>();
  const all: RunningAgent[] = [];
  /** Nodes the fleet chose to leave: still running their last task, no longer counted. */
  const leaving = new Set<string>();
  let next = 1;
  let stopped = false;

  const tick = async () => {
    const res = await fetch(`${options.gateway}/autoscale`, { headers: { authorization: `Bearer ${options.scalerKey}` } });
    if (!res.ok) throw new Error(`GET /autoscale answered ${res.status}: ${await res.text()}`);
    const figures = ((await res.json()) as AutoscaleAnswer).groups[LOCAL_GROUP];
    for (const nodeId of figures?.leaving ?? []) leaving.add(nodeId);
    const counted = [...running.keys()].filter((id) => !leaving.has(id)).length;
    for (let i = counted; i < (figures?.desired ?? 0) && !stopped; i++) {
      const nodeId = `local-auto-${next++}`;
      const agent = startAgent({
        gateway: options.gateway,
        token: options.nodeKey,
        nodeId,
        gpuClass: LOCAL_GPU.gpuClass,
        gpuMemoryMb: LOCAL_GPU.gpuMemoryMb,
        stdio: options.stdio ?? "pipe",
        stepMs: options.stepMs,
        loadMs: options.loadMs,
        extraArgs: ["--group", LOCAL_GROUP],
      });
      running.set(nodeId, agent);
      all.push(agent);
      options.onChange?.({ kind: "started", nodeId, nodes: running.size });
      void agent.exited.then(() => {
        running.delete(nodeId);
        leaving.delete(nodeId);
        options.onChange?.({ kind: "left", nodeId, nodes: running.size });
      });
    }
  };

  let timer: NodeJS.Timeout | null = null;
  let ticking: Promise<void> = Promise.resolve();
  const loop = () => {
    ticking = tick()
      .catch((error: unknown) => console.error(`local scaler: ${error instanceof Error ? error.message : String(error)}`))
      .finally(() => {
        if (!stopped) timer = setTimeout(loop, options.pollMs ?? 1000);
      });
  };
  loop();

  return {
    agents: () => [...running.values()],
    started: () => [...all],
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      await ticking;
      await Promise.all([...running.values()].map((agent) => agent.stop()));
    },
  };
}
