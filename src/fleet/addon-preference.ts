// Add-on affinity (issue 12): among the nodes that could take a checkpoint's next task, the one
// that already holds the add-ons (LoRA, VAE, ControlNet, …) it needs asks first, so it runs the
// task without downloading them. Only an order, never a wait: a node without them still gets
// the work when no holder takes it.
//
// Pure: the Fleet Durable Object orders its parked claims with it, and bench/placement orders
// its idle nodes with it.

/** How many of the `needed` add-ons a node with `held` on its disk already has. */
export function addonsHeld(held: readonly string[], needed: readonly string[]): number {
  if (needed.length === 0 || held.length === 0) return 0;
  const have = new Set(held);
  let count = 0;
  for (const name of needed) if (have.has(name)) count += 1;
  return count;
}

/** `waiters` with those holding more of `needed` first; ties keep their order. */
export function byAddonsHeld<T>(waiters: readonly T[], heldOf: (waiter: T) => readonly string[], needed: readonly string[]): T[] {
  if (needed.length === 0) return [...waiters];
  return waiters
    .map((waiter, index) => ({ waiter, index, held: addonsHeld(heldOf(waiter), needed) }))
    .sort((a, b) => b.held - a.held || a.index - b.index)
    .map((entry) => entry.waiter);
}

/**
 * The waiter that holds the most of `needed`, if it holds more than the asking node does: the
 * asker lets it go first (once), then asks again.
 */
export function betterHolder<T>(
  askerHeld: readonly string[],
  waiters: readonly T[],
  heldOf: (waiter: T) => readonly string[],
  needed: readonly string[],
): T | null {
  let best: T | null = null;
  let bestHeld = addonsHeld(askerHeld, needed);
  for (const waiter of waiters) {
    const held = addonsHeld(heldOf(waiter), needed);
    if (held > bestHeld) {
      best = waiter;
      bestHeld = held;
    }
  }
  return best;
}
