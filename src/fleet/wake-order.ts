// Which parked claims a queue's new work wakes (issue 17): only as many as could take it, those
// whose node has the checkpoint loaded first, then those with its file on disk, then the rest;
// within each, those holding more of the next task's add-ons first (./addon-preference.ts). A
// woken claim that does not take the work wakes the next one (Fleet), so none is left waiting.
//
// Pure: Fleet picks from its parked claims with it.
import { byAddonsHeld } from "./addon-preference.ts";

/** What of a parked claim's node decides its turn. */
export interface WakeCandidate {
  loadedCheckpoint: string | null;
  cachedCheckpoints: readonly string[];
  cachedAddons: readonly string[];
}

/** Tasks the queue could hand out now: waiting, up to its concurrency cap. */
export function claimableWork(q: { waiting: number; running: number; concurrencyCap: number }): number {
  return Math.max(0, Math.min(q.waiting, q.concurrencyCap - q.running));
}

/** Up to `count` of `parked`, in the order they should get `checkpoint`'s new work. */
export function claimsToWake<T>(
  parked: readonly T[],
  nodeOf: (claim: T) => WakeCandidate,
  checkpoint: string,
  neededAddons: readonly string[],
  count: number,
): T[] {
  const residency = (node: WakeCandidate) => (node.loadedCheckpoint === checkpoint ? 0 : node.cachedCheckpoints.includes(checkpoint) ? 1 : 2);
  const heldOf = (claim: T) => nodeOf(claim).cachedAddons;
  const inOrder = [0, 1, 2].flatMap((rank) =>
    byAddonsHeld(
      parked.filter((claim) => residency(nodeOf(claim)) === rank),
      heldOf,
      neededAddons,
    ),
  );
  return inOrder.slice(0, Math.max(0, count));
}
