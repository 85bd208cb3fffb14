// Stubs of the two Durable Object kinds: one Fleet, one CheckpointQueue per checkpoint.
// Typed by their RPC interfaces, which the classes implement: every RPC method is async, so a
// call through the stub has the same signature (the generated stub types turn `unknown`
// payloads into `never`).
import type { CheckpointQueueRpc } from "../queue/types";
import type { FleetRpc } from "./types";

export const FLEET_NAME = "fleet";

export function fleetStub(env: Env): FleetRpc {
  return env.FLEET.get(env.FLEET.idFromName(FLEET_NAME)) as unknown as FleetRpc;
}

export function queueStub(env: Env, checkpoint: string): CheckpointQueueRpc {
  return env.CHECKPOINT_QUEUE.get(env.CHECKPOINT_QUEUE.idFromName(checkpoint)) as unknown as CheckpointQueueRpc;
}
