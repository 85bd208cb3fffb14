// The end-to-end suites' shared steps: a real Worker (workerd) with real agents and emulators.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { PNG } from "pngjs";
import { afterAll, beforeAll } from "vitest";
import {
  createKey,
  DEV_ADMIN_TOKEN,
  type DemoModel,
  type Gateway,
  type RunningAgent,
  registerModels,
  startAgent,
  startGateway,
} from "../../scripts/local-stack.ts";

/** Short leases and heartbeats so a dead agent is noticed within seconds. */
export const E2E_VARS = { LEASE_MS: "3000", HEARTBEAT_INTERVAL_MS: "1000", CLAIM_WAIT_MS: "5000", SYNC_WAIT_MS: "60000" };

export const E2E_MODELS: DemoModel[] = [
  { name: "e2e-a", sizeBytes: 64 * 1024, loadSeconds: 1, inferenceSeconds: 1 },
  { name: "e2e-b", sizeBytes: 96 * 1024, loadSeconds: 1, inferenceSeconds: 1 },
];

export interface Stack {
  gateway: Gateway;
  userKey: string;
  nodeKey: string;
  agents: RunningAgent[];
  addAgent(nodeId: string, options?: { stepMs?: number }): Promise<RunningAgent>;
  stop(): Promise<void>;
}

export async function startStack(agentCount: number): Promise<Stack> {
  const gateway = await startGateway({ vars: E2E_VARS });
  await registerModels(gateway.url, E2E_MODELS);
  const userKey = await createKey(gateway.url, "user", "e2e user");
  const nodeKey = await createKey(gateway.url, "node", "e2e node");
  const agents: RunningAgent[] = [];
  const addAgent = async (nodeId: string, options: { stepMs?: number } = {}) => {
    const agent = startAgent({
      gateway: gateway.url,
      token: nodeKey,
      nodeId,
      stepMs: options.stepMs ?? 30,
      loadMs: 200,
      logLevel: "info",
      stdio: "pipe",
      controlnet: true,
    });
    agents.push(agent);
    await waitFor(async () => (await nodeStatus(gateway.url, nodeId)) === "idle", 30_000, `${nodeId} to register`, agent);
    return agent;
  };
  for (let i = 1; i <= agentCount; i++) await addAgent(`e2e-node-${i}`);
  return {
    gateway,
    userKey,
    nodeKey,
    agents,
    addAgent,
    stop: async () => {
      await Promise.all(agents.map((a) => a.kill()));
      await gateway.stop();
    },
  };
}

/** One stack for the whole test file: started before its first test, stopped after its last. */
export function useStack(agentCount: number): () => Stack {
  let stack: Stack | undefined;
  beforeAll(async () => {
    stack = await startStack(agentCount);
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });
  return () => {
    if (!stack) throw new Error("the stack did not start");
    return stack;
  };
}

export async function nodeStatus(gateway: string, nodeId: string): Promise<string | null> {
  const res = await fetch(`${gateway}/nodes`, { headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}` } });
  const nodes = (await res.json()) as Array<{ nodeId: string; status: string }>;
  return nodes.find((n) => n.nodeId === nodeId)?.status ?? null;
}

export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string, agent?: RunningAgent): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${agent ? `\nagent output:\n${agent.output().slice(-3000)}` : ""}`);
}

export async function callApi<T = Record<string, unknown>>(
  stack: Stack,
  route: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${stack.gateway.url}${route}`, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers: { authorization: `Bearer ${stack.userKey}`, "content-type": "application/json", ...(init.headers ?? {}) },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

export async function fetchPng(url: string): Promise<PNG> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}`);
  return PNG.sync.read(Buffer.from(await res.arrayBuffer()));
}

/** The sd-webui emulators an agent process started; any other child it has at that moment is not counted. */
export function emulatorPids(agentPid: number): number[] {
  let children: number[];
  try {
    children = execFileSync("pgrep", ["-P", String(agentPid)], { encoding: "utf8" })
      .trim()
      .split("\n")
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
  return children.filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("emulator/main.ts");
    } catch {
      return false; // gone meanwhile
    }
  });
}
