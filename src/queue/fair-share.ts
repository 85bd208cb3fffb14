// Fair share of one checkpoint queue among the keys (owners) with work in it (issue 14): stride
// scheduling. Each owner has a *pass*; the queue hands out the next task of the owner with the
// lowest pass (higher priority classes first), and that owner's pass grows by its stride, the
// task's cost over its weight. A task costs one unit: tasks of one checkpoint run for similar
// times, and the queue has no better estimate at claim time. An owner with nothing waiting
// falls out of the race, and one that starts waiting again begins at its class's virtual time
// (the pass last served), so idleness banks no credit. Task-Priority only orders an owner's own
// tasks (the queue picks the owner here, then the owner's first task).
//
// Pure, no imports (unit tests run it in Node): the CheckpointQueue Durable Object keeps these
// counters in its owners table.
export interface OwnerShare {
  owner: string;
  weight: number;
  priorityClass: number;
  maxRunning: number | null;
  waiting: number;
  running: number;
  pass: number;
  /** Orders owners at the same pass: the one that started waiting first goes first. */
  activeSince: number;
}

/** How far an owner's pass moves for one task; `weight` > 0 (TenantShare). */
export function strideOf(weight: number): number {
  return 1 / weight;
}

export function atRunningLimit(owner: OwnerShare): boolean {
  return owner.maxRunning !== null && owner.running >= owner.maxRunning;
}

/** Whether `a` is served before `b` when both have work waiting. */
function servedFirst(a: OwnerShare, b: OwnerShare): boolean {
  if (a.priorityClass !== b.priorityClass) return a.priorityClass > b.priorityClass;
  if (a.pass !== b.pass) return a.pass < b.pass;
  return a.activeSince < b.activeSince;
}

/** The owner whose task goes out next: waiting work, under its running limit, not `excluded`. */
export function nextOwner(owners: readonly OwnerShare[], excluded: ReadonlySet<string> = new Set()): OwnerShare | null {
  let best: OwnerShare | null = null;
  for (const owner of owners) {
    if (owner.waiting === 0 || atRunningLimit(owner) || excluded.has(owner.owner)) continue;
    if (!best || servedFirst(owner, best)) best = owner;
  }
  return best;
}

/**
 * About how many waiting tasks go out before one of `target`'s that has `ownAhead` of its
 * owner's own tasks before it: other owners' tasks whose turn (pass) comes first, every task of
 * a higher class, and the owner's own. Running limits are left out (they only delay).
 */
export function tasksServedBefore(owners: readonly OwnerShare[], target: OwnerShare, ownAhead: number): number {
  // Guards the integer tests below against float error in passes.
  const epsilon = 1e-9;
  const turn = target.pass + ownAhead * strideOf(target.weight);
  let before = ownAhead;
  for (const other of owners) {
    if (other.owner === target.owner || other.waiting === 0 || other.priorityClass < target.priorityClass) continue;
    if (other.priorityClass > target.priorityClass) {
      before += other.waiting;
      continue;
    }
    // other's j-th task goes out at pass other.pass + j × stride: count those before `turn`.
    const turns = (turn - other.pass) / strideOf(other.weight);
    if (turns < -epsilon) continue;
    const counted = other.activeSince < target.activeSince ? Math.floor(turns + epsilon) + 1 : Math.ceil(turns - epsilon);
    before += Math.min(other.waiting, Math.max(0, counted));
  }
  return before;
}
