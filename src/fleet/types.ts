// What Fleet keeps about each node and answers over RPC, and its RPC methods (what its stub
// offers, without importing the Durable Object class).
import type { ClaimedTask, ClaimRequest, Heartbeat, Lease, RegisterBody, WebuiCatalog } from "../protocol/node";
import type { QueueSummary } from "../queue/types";

export type NodeState = "idle" | "busy" | "draining" | "lost";

export interface NodeRecord {
  nodeId: string;
  /** The agent process that registered last (null: an agent that does not send one, or a record from before agents did). */
  instanceId: string | null;
  agentVersion: string;
  gpuClass: string;
  gpuMemoryMb: number;
  loadedCheckpoint: string | null;
  cachedCheckpoints: string[];
  /** Registered add-on models (LoRA, VAE, ControlNet, …) whose files are on its disk. */
  cachedAddons: string[];
  status: NodeState;
  currentTaskId: string | null;
  servingSince: number | null;
  /** When it asked for work after its last task (null: busy, or not since a task); absent in records from before. */
  idleSince?: number | null;
  registeredAt: number;
  lastSeenAt: number;
  restartRequested: boolean;
  catalog: WebuiCatalog;
}

export type FleetClaim =
  | { outcome: "claimed"; task: ClaimedTask; lease: Lease }
  | { outcome: "none" }
  | { outcome: "unknown_node" }
  | { outcome: "replaced" }
  | { outcome: "node_id_taken" };
export type RegisterOutcome = { outcome: "registered"; webuiExtraArgs: string } | { outcome: "node_id_taken" };
export type HeartbeatOutcome =
  | { outcome: "noted"; restartWebui: boolean }
  | { outcome: "unknown_node" }
  | { outcome: "replaced" }
  | { outcome: "node_id_taken" };

/** Fleet's RPC methods (src/fleet/fleet.ts documents each). */
export interface FleetRpc {
  register(r: RegisterBody, keyId: string): Promise<RegisterOutcome>;
  heartbeat(nodeId: string, beat: Heartbeat, keyId: string): Promise<HeartbeatOutcome>;
  deregister(nodeId: string, keyId: string, instanceId?: string): Promise<"gone" | "unknown_node" | "replaced" | "node_id_taken">;
  remove(nodeId: string): Promise<"gone" | "unknown_node">;
  reportQueue(summary: QueueSummary): Promise<void>;
  claim(
    nodeId: string,
    waitMs: number,
    state: Pick<ClaimRequest, "loadedCheckpoint" | "cachedCheckpoints" | "cachedAddons" | "instanceId">,
    keyId: string,
  ): Promise<FleetClaim>;
  listNodes(): Promise<NodeRecord[]>;
  forgetQueue(checkpoint: string): Promise<void>;
  listQueues(): Promise<QueueSummary[]>;
  catalog(): Promise<WebuiCatalog>;
  requestRestart(): Promise<number>;
  recordModelFailure(nodeId: string, checkpoint: string): Promise<{ failedNodes: number; eligibleNodes: number }>;
  clearModelFailures(checkpoint: string): Promise<void>;
}
