// Fleet's parked claims (long polls waiting for work), grouped by their node's GPU kind, so that
// a queue's new work looks only at claims whose nodes may run its pool: with 1,000 nodes of
// other pools parked, every submission's report otherwise looked at each of them (issue 17).
import { fitsPool } from "./placement";

type GpuKind = { gpuClass: string; gpuMemoryMb: number };

export class ParkedClaims<Wake> {
  /** Each claim's node, and the key of its node's GPU kind. */
  private readonly claims = new Map<Wake, { nodeId: string; kindKey: string }>();
  private readonly kinds = new Map<string, { kind: GpuKind; claims: Map<Wake, string> }>();

  get size(): number {
    return this.claims.size;
  }

  /** The nodes asking, one per claim. */
  *values(): IterableIterator<string> {
    for (const { nodeId } of this.claims.values()) yield nodeId;
  }

  /** Every parked claim and its node. */
  entries(): [Wake, string][] {
    return [...this.claims].map(([wake, { nodeId }]) => [wake, nodeId]);
  }

  /** `kind`: the node's GPU as it parks (Fleet wakes the claim when a heartbeat changes it). */
  park(wake: Wake, nodeId: string, kind: GpuKind): void {
    const kindKey = `${kind.gpuMemoryMb}|${kind.gpuClass}`;
    const group = this.kinds.get(kindKey) ?? { kind: { gpuClass: kind.gpuClass, gpuMemoryMb: kind.gpuMemoryMb }, claims: new Map() };
    group.claims.set(wake, nodeId);
    this.kinds.set(kindKey, group);
    this.claims.set(wake, { nodeId, kindKey });
  }

  /** Answers whether the claim was parked. */
  delete(wake: Wake): boolean {
    const claim = this.claims.get(wake);
    if (!claim) return false;
    this.claims.delete(wake);
    const group = this.kinds.get(claim.kindKey)!;
    group.claims.delete(wake);
    if (group.claims.size === 0) this.kinds.delete(claim.kindKey);
    return true;
  }

  /** Unparks every claim, answering them. */
  takeAll(): Wake[] {
    const wakes = [...this.claims.keys()];
    this.claims.clear();
    this.kinds.clear();
    return wakes;
  }

  /** The parked claims whose node's GPU meets the pool's constraints, and their nodes. */
  fitting(pool: Parameters<typeof fitsPool>[1]): [Wake, string][] {
    const fit: [Wake, string][] = [];
    for (const { kind, claims } of this.kinds.values()) if (fitsPool(kind, pool)) fit.push(...claims);
    return fit;
  }
}
