// Stubs of the two Durable Object kinds: one Fleet, one CheckpointQueue per checkpoint.
// Typed as the classes themselves: every RPC method is async, so a call through the stub has
// the same signature (the generated stub types turn `unknown` payloads into `never`).
import type { CheckpointQueue } from "../queue/checkpoint-queue";
import type { Fleet } from "./fleet";

export const FLEET_NAME = "fleet";

export function fleetStub(env: Env): Fleet {
  return env.FLEET.get(env.FLEET.idFromName(FLEET_NAME)) as unknown as Fleet;
}

export function queueStub(env: Env, checkpoint: string): CheckpointQueue {
  return env.CHECKPOINT_QUEUE.get(env.CHECKPOINT_QUEUE.idFromName(checkpoint)) as unknown as CheckpointQueue;
}
