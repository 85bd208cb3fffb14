// Refuses JSON bodies nested deeper than a stated depth before anything walks them recursively
// (inline-image moving, option merging, the queue's RPC serialization overflow the stack at
// about two thousand levels).
import { ApiError } from "./errors";

/** Deepest nesting of arrays and objects a JSON body may have; no request needs more than a dozen. */
export const MAX_JSON_DEPTH = 64;

/** Whether `value` nests arrays or objects more than `maxDepth` levels deep; iterative, so any depth is safe to ask about. */
export function nestsDeeperThan(value: unknown, maxDepth: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (current === null || typeof current !== "object") continue;
    if (depth + 1 > maxDepth) return true;
    for (const child of Object.values(current)) if (child !== null && typeof child === "object") stack.push([child, depth + 1]);
  }
  return false;
}

export function refuseDeepJson(value: unknown): void {
  if (nestsDeeperThan(value, MAX_JSON_DEPTH))
    throw new ApiError("validation_failed", `The body nests arrays or objects more than ${MAX_JSON_DEPTH} levels deep`, [
      { path: "(body)", message: `nested more than ${MAX_JSON_DEPTH} levels deep` },
    ]);
}
