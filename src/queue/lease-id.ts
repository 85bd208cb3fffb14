// A lease id names the queue that granted it, so a node's calls about its task go straight to
// that queue with no lookup. Nothing is trusted from it: the queue checks the whole id against
// the task's current lease, so an altered id only reaches a queue that refuses it.
import { randomId } from "../crypto";

const SEPARATOR = "@"; // in neither random ids nor checkpoint names

export function newLeaseId(checkpoint: string): string {
  return `${randomId("lease_")}${SEPARATOR}${checkpoint}`;
}

/** The checkpoint whose queue granted the lease, or null for an id no queue made. */
export function checkpointOfLease(leaseId: string): string | null {
  const at = leaseId.lastIndexOf(SEPARATOR);
  return at > 0 && at < leaseId.length - 1 ? leaseId.slice(at + 1) : null;
}
