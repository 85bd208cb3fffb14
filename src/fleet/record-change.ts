// Whether a node's record changed in more than when it was last heard from: an idle node's next
// long poll says nothing new, and Fleet need not store its record again for it.
import type { NodeRecord } from "./types";

export const sameValue = (a: unknown, b: unknown): boolean =>
  a === b || (Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, i) => item === b[i]));

/** `after` differs from `before` only in lastSeenAt (arrays compared item by item, objects by identity). */
export function onlyLastSeenChanged(before: NodeRecord, after: NodeRecord): boolean {
  const keys = Object.keys(after) as (keyof NodeRecord)[];
  return keys.length === Object.keys(before).length && keys.every((key) => key === "lastSeenAt" || sameValue(before[key], after[key]));
}
