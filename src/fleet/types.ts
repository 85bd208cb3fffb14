// What Fleet keeps about each node and answers over RPC, and its RPC methods (what its stub
// offers, without importing the Durable Object class).
import type { ClaimedTask, ClaimRequest, Heartbeat, Lease, RegisterBody, WebuiCatalog } from "../protocol/node";
import type { QueueSummary } from "../queue/types";
import type { GroupSettings, NodeGroupRecord } from "./node-groups";
import type { GroupScaling } from "./scaling";

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
  /** Checkpoints sd-webui holds in RAM besides the loaded one: a switch to one is a RAM load. */
  ramCheckpoints: string[];
  status: NodeState;
  currentTaskId: string | null;
  servingSince: number | null;
  registeredAt: number;
  lastSeenAt: number;
  restartRequested: boolean;
  catalog: WebuiCatalog;
  /** Its node group (src/fleet/node-groups.ts); absent on records from before groups. */
  group?: string;
  /** Chosen to leave by the scaling policy: no more work, and told to drain. */
  leaving?: boolean;
  /** Since when it has asked for work without getting any (null while busy or booting; absent in records from before): placement's spare nodes, scaling's idle time. */
  idleSince?: number | null;
  /** Its first claim since it registered: null while it boots. */
  firstClaimAt?: number | null;
  /** The heartbeat interval it was last told (heartbeat-interval.ts); absent: the configured one. */
  heartbeatIntervalMs?: number;
  /** The checkpoint file it fetches in the background (the prefetch it was last told of, until it reports), null or absent: none. */
  fetchingCheckpoint?: string | null;
}

export type FleetClaim =
  | { outcome: "claimed"; task: ClaimedTask; lease: Lease }
  | { outcome: "none" }
  | { outcome: "unknown_node" }
  | { outcome: "replaced" }
  | { outcome: "node_id_taken" };
export type RegisterOutcome = { outcome: "registered"; webuiExtraArgs: string; heartbeatIntervalMs: number } | { outcome: "node_id_taken" };
export type HeartbeatOutcome =
  | {
      outcome: "noted";
      restartWebui: boolean;
      drain: boolean;
      /** A checkpoint file to fetch in the background (placement.ts prefetchFor). */
      prefetch: string | null;
      /** Until the next heartbeat (heartbeat-interval.ts). */
      heartbeatIntervalMs: number;
    }
  | { outcome: "unknown_node" }
  | { outcome: "replaced" }
  | { outcome: "node_id_taken" };

/** GET /autoscale: each known group's figures, and checkpoints with work no group may serve. */
export interface AutoscaleView {
  groups: GroupScaling[];
  unservedCheckpoints: string[];
}

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
    state: Pick<ClaimRequest, "loadedCheckpoint" | "cachedCheckpoints" | "cachedAddons" | "ramCheckpoints" | "instanceId">,
    keyId: string,
  ): Promise<FleetClaim>;
  listNodes(): Promise<NodeRecord[]>;
  forgetQueue(checkpoint: string): Promise<void>;
  listQueues(): Promise<QueueSummary[]>;
  catalog(): Promise<WebuiCatalog>;
  requestRestart(): Promise<number>;
  recordModelFailure(nodeId: string, checkpoint: string): Promise<{ failedNodes: number; eligibleNodes: number }>;
  clearModelFailures(checkpoint: string): Promise<void>;
  autoscale(apply?: boolean): Promise<AutoscaleView>;
  listGroups(): Promise<NodeGroupRecord[]>;
  putGroup(name: string, settings: GroupSettings): Promise<NodeGroupRecord>;
}
