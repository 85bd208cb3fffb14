// Per-checkpoint counts over Fleet's live nodes — how many have it loaded, how many have its file
// on disk, how many fetch it in the background, and how many nodes of each GPU kind there are — kept up to date as node records change
// (register, heartbeat, claim, lost, deregister), so a claim's placement view costs O(queues),
// not O(nodes × queues).
import { fitsPool } from "./placement";
import type { NodeRecord } from "./types";

type Counted = Pick<NodeRecord, "status" | "loadedCheckpoint" | "cachedCheckpoints" | "fetchingCheckpoint" | "gpuMemoryMb" | "gpuClass">;

function bump(counts: Map<string, number>, key: string, delta: number): void {
  const next = (counts.get(key) ?? 0) + delta;
  if (next === 0) counts.delete(key);
  else counts.set(key, next);
}

/** The checkpoints whose file the node has (cached, or loaded). */
function held(node: Counted): Set<string> {
  const files = new Set(node.cachedCheckpoints);
  if (node.loadedCheckpoint) files.add(node.loadedCheckpoint);
  return files;
}

/** The checkpoint whose file the node fetches in the background and does not have yet, or null. */
function coming(node: Counted): string | null {
  const checkpoint = node.fetchingCheckpoint ?? null;
  return checkpoint !== null && !held(node).has(checkpoint) ? checkpoint : null;
}

const live = (node: Counted | undefined): node is Counted => node !== undefined && node.status !== "lost";

export class CheckpointCounts {
  private readonly loaded = new Map<string, number>();
  private readonly holding = new Map<string, number>();
  private readonly fetching = new Map<string, number>();
  private readonly kinds = new Map<string, { gpuMemoryMb: number; gpuClass: string; count: number }>();

  /** A node's record went from `before` to `after` (undefined: no record). */
  update(before: Counted | undefined, after: Counted | undefined): void {
    if (live(before)) this.apply(before, -1);
    if (live(after)) this.apply(after, 1);
  }

  private apply(node: Counted, delta: number): void {
    if (node.loadedCheckpoint) bump(this.loaded, node.loadedCheckpoint, delta);
    for (const checkpoint of held(node)) bump(this.holding, checkpoint, delta);
    const fetched = coming(node);
    if (fetched !== null) bump(this.fetching, fetched, delta);
    const key = `${node.gpuMemoryMb}|${node.gpuClass}`;
    const kind = this.kinds.get(key) ?? { gpuMemoryMb: node.gpuMemoryMb, gpuClass: node.gpuClass, count: 0 };
    kind.count += delta;
    if (kind.count === 0) this.kinds.delete(key);
    else this.kinds.set(key, kind);
  }

  /** Live nodes other than `self` with `checkpoint` loaded. */
  loadedOn(checkpoint: string, self: Counted): number {
    return (this.loaded.get(checkpoint) ?? 0) - (live(self) && self.loadedCheckpoint === checkpoint ? 1 : 0);
  }

  /** Live nodes other than `self` with `checkpoint`'s file (cached or loaded). */
  heldBy(checkpoint: string, self: Counted): number {
    return (this.holding.get(checkpoint) ?? 0) - (live(self) && held(self).has(checkpoint) ? 1 : 0);
  }

  /** Live nodes. */
  liveNodes(): number {
    let count = 0;
    for (const kind of this.kinds.values()) count += kind.count;
    return count;
  }

  /** Live nodes other than `self` fetching `checkpoint`'s file in the background (not on their disk yet). */
  fetchingOn(checkpoint: string, self: Counted): number {
    return (this.fetching.get(checkpoint) ?? 0) - (live(self) && coming(self) === checkpoint ? 1 : 0);
  }

  /** Live nodes whose GPU meets the pool's constraints. */
  eligible(pool: Parameters<typeof fitsPool>[1]): number {
    let count = 0;
    for (const kind of this.kinds.values()) if (fitsPool(kind, pool)) count += kind.count;
    return count;
  }
}
