// Discrete-event simulator of a GPU fleet in virtual time (no timers): nodes that serve one
// checkpoint at a time, switch costs (load, plus download when the file is not on the node's
// disk; once downloaded it stays cached; a checkpoint held in the node's RAM cache loads at its
// own, lower cost), the add-ons a task needs (downloaded before it runs
// when the node lacks them), a disk budget per node shared by checkpoints and add-ons (least
// recently used evicted first; unlimited when the trace sets none), per-checkpoint FIFO queues
// with concurrency caps, and the arrivals of a trace. A policy answers "what should this idle node serve?"; the simulator
// does the rest the way sdgate does: the node claims the task at once (the lease covers its
// download and load), switches if needed, runs it, and asks again.
//
// Idle nodes are asked again on every event, at the instant the policy says its answer may next
// change (policy.askAgainAtMs, as Fleet asks a parked claim's placement again), and, one node, when
// a background download lands on its disk. Every HEARTBEAT_INTERVAL_MS each node, busy or not, may
// be told to fetch a file in the background (policy.prefetch, as a heartbeat's answer does): it is
// on the node's disk after its download time, costs no GPU time and never evicts another file.
import { ramLoadMsFor } from "../../src/fleet/placement.ts";
import type { Trace, TraceCheckpoint } from "./trace.ts";

/** Nodes heartbeat this often (the Worker's default HEARTBEAT_INTERVAL_MS); the answer may name files to prefetch. */
export const HEARTBEAT_INTERVAL_MS = 5_000;

export interface SimTask {
  id: number;
  checkpoint: string;
  arrivalMs: number;
  inferenceMs: number;
  /** Add-on names it needs beside its checkpoint. */
  addons: readonly string[];
  /** When a node claimed it (its lease starts; download and load follow), null while waiting. */
  claimMs: number | null;
  /** When inference started (after any download and load), null while waiting. */
  startMs: number | null;
  endMs: number | null;
  nodeId: string | null;
}

export interface SimNode {
  id: string;
  gpuMemoryMb: number;
  gpuClass: string;
  /** The checkpoint loaded, or being loaded (a switching node counts as serving its target). */
  loaded: string | null;
  cached: Set<string>;
  cachedAddons: Set<string>;
  diskBudgetMb: number | null;
  /** Checkpoints held in RAM besides the loaded one, by when last loaded (at most ramSlots). */
  ram: Map<string, number>;
  ramSlots: number;
  /** Files on its disk (`checkpoint:`/`addon:` + name) by when last used, for LRU eviction. */
  lastUsedMs: Map<string, number>;
  /** When it started serving `loaded` (set at the claim that switched, as Fleet does). */
  servingSinceMs: number | null;
  busyUntilMs: number | null;
  /** Since when it has had nothing to run (null while busy). */
  idleSinceMs: number | null;
  task: SimTask | null;
  /** The file it is fetching in the background (one at a time, as the agent does), and when it is on its disk. */
  fetching: { checkpoint: string; readyMs: number } | null;
}

export interface SimQueue {
  spec: TraceCheckpoint;
  /** FIFO: tasks before `head` have been claimed. */
  tasks: SimTask[];
  head: number;
  running: number;
}

export interface SimState {
  nowMs: number;
  nodes: readonly SimNode[];
  queues: ReadonlyMap<string, SimQueue>;
}

export interface SimChoice {
  checkpoint: string;
  /** Why, for the report (affinity gives its placement reason). */
  reason?: string;
}

export interface SimPolicy {
  name: string;
  /** An idle node asks; null = wait. A choice with nothing to claim only switches (pre-warm). */
  choose(node: SimNode, state: SimState): SimChoice | null;
  /** The order idle nodes ask in at one instant (default: the fleet's order). */
  order?(idle: readonly SimNode[], state: SimState): SimNode[];
  /** A checkpoint file a node, busy or not, should fetch in the background (its GPU stays free), or null. */
  prefetch?(node: SimNode, state: SimState): string | null;
  /** When this idle node's answer may change with nothing else happening (absent: it changes only on events). */
  askAgainAtMs?(node: SimNode, state: SimState): number;
}

export interface SimResult {
  policy: string;
  tasks: SimTask[];
  makespanMs: number;
  switches: number;
  downloads: number;
  /** Switches served from the node's RAM cache. */
  ramSwitches: number;
  /** Node time spent downloading and loading (from disk or RAM). */
  switchingMs: number;
  /** Add-on files fetched onto nodes that lacked them, and the node time that took. */
  addonDownloads: number;
  addonDownloadMs: number;
  /** Switches by the reason the policy gave. */
  switchReasons: Record<string, number>;
  /** Checkpoint files fetched in the background on the policy's word. */
  prefetches: number;
}

export function waitingCount(q: SimQueue): number {
  return q.tasks.length - q.head;
}

export function oldestWaiting(q: SimQueue): SimTask | undefined {
  return q.tasks[q.head];
}

export function capOf(spec: TraceCheckpoint): number {
  return spec.concurrencyCap ?? Infinity;
}

export function nodeFits(node: SimNode, spec: TraceCheckpoint): boolean {
  return node.gpuMemoryMb >= spec.minGpuMemoryMb && (spec.gpuClass === null || spec.gpuClass === node.gpuClass);
}

export function hasClaimableWork(q: SimQueue): boolean {
  return waitingCount(q) > 0 && q.running < capOf(q.spec);
}

export function nodesServing(state: SimState, checkpoint: string, except?: SimNode): number {
  return state.nodes.filter((n) => n !== except && n.loaded === checkpoint).length;
}

/** Min-heap of node-free events, ordered by time then insertion. */
class EventHeap {
  private items: { atMs: number; seq: number; node: SimNode }[] = [];
  private seq = 0;
  get size(): number {
    return this.items.length;
  }
  peekMs(): number {
    return this.items[0]?.atMs ?? Infinity;
  }
  push(atMs: number, node: SimNode): void {
    const items = this.items;
    items.push({ atMs, seq: this.seq++, node });
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }
  pop(): SimNode | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined) return undefined;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && this.less(l, m)) m = l;
        if (r < items.length && this.less(r, m)) m = r;
        if (m === i) break;
        [items[i], items[m]] = [items[m]!, items[i]!];
        i = m;
      }
    }
    return top.node;
  }
  private less(a: number, b: number): boolean {
    const x = this.items[a]!;
    const y = this.items[b]!;
    return x.atMs < y.atMs || (x.atMs === y.atMs && x.seq < y.seq);
  }
}

/** What a switch to a checkpoint held in RAM costs. */
export function ramLoadMs(spec: TraceCheckpoint): number {
  return spec.ramLoadMs ?? ramLoadMsFor(spec.loadMs);
}

/** sd-webui's checkpoint cache: the checkpoint it switches away from stays in RAM, least recently loaded evicted first. */
function keepInRam(node: SimNode, checkpoint: string | null, nowMs: number): void {
  if (checkpoint === null || node.ramSlots === 0) return;
  node.ram.set(checkpoint, nowMs);
  while (node.ram.size > node.ramSlots) {
    let oldest: string | null = null;
    for (const [name, atMs] of node.ram) if (oldest === null || atMs < node.ram.get(oldest)!) oldest = name;
    node.ram.delete(oldest!);
  }
}

export function simulate(trace: Trace, policy: SimPolicy): SimResult {
  const queues = new Map<string, SimQueue>(trace.checkpoints.map((spec) => [spec.name, { spec, tasks: [], head: 0, running: 0 }]));
  const nodes: SimNode[] = trace.nodes.map((n) => {
    const cached = new Set(n.loaded ? [...n.cached, n.loaded] : n.cached);
    return {
      id: n.id,
      gpuMemoryMb: n.gpuMemoryMb,
      gpuClass: n.gpuClass,
      loaded: n.loaded,
      cached,
      cachedAddons: new Set(n.cachedAddons),
      diskBudgetMb: n.diskBudgetMb ?? null,
      ram: new Map(),
      ramSlots: n.ramCacheCheckpoints,
      lastUsedMs: new Map([...[...cached].map((c) => `checkpoint:${c}`), ...n.cachedAddons.map((a) => `addon:${a}`)].map((key) => [key, 0])),
      servingSinceMs: n.loaded ? 0 : null,
      busyUntilMs: null,
      idleSinceMs: 0,
      task: null,
      fetching: null,
    };
  });
  const addonSpecs = new Map(trace.addons.map((a) => [a.name, a]));
  const sizeMb = (key: string) => {
    const name = key.slice(key.indexOf(":") + 1);
    return (key.startsWith("addon:") ? addonSpecs.get(name)?.sizeMb : queues.get(name)?.spec.sizeMb) ?? 0;
  };
  const diskUsedMb = (node: SimNode) => {
    let totalMb = 0;
    for (const key of node.lastUsedMs.keys()) totalMb += sizeMb(key);
    return totalMb;
  };
  /** Marks files used now and, past the node's budget, evicts the least recently used others. */
  const use = (node: SimNode, keys: readonly string[]) => {
    for (const key of keys) node.lastUsedMs.set(key, state.nowMs);
    if (node.diskBudgetMb === null) return;
    let totalMb = diskUsedMb(node);
    const oldestFirst = [...node.lastUsedMs].filter(([key]) => !keys.includes(key)).sort((a, b) => a[1] - b[1]);
    for (const [key] of oldestFirst) {
      if (totalMb <= node.diskBudgetMb) break;
      totalMb -= sizeMb(key);
      node.lastUsedMs.delete(key);
      if (key.startsWith("addon:")) node.cachedAddons.delete(key.slice("addon:".length));
      else node.cached.delete(key.slice("checkpoint:".length));
    }
  };
  /** A checkpoint's file fits on the node's disk without evicting anything (as the agent prefetches). */
  const fitsWithoutEvicting = (node: SimNode, name: string) =>
    node.diskBudgetMb === null || diskUsedMb(node) + sizeMb(`checkpoint:${name}`) <= node.diskBudgetMb;
  const tasks: SimTask[] = trace.arrivals.map((a, id) => ({
    id,
    checkpoint: a.checkpoint,
    arrivalMs: a.atMs,
    inferenceMs: a.inferenceMs ?? queues.get(a.checkpoint)!.spec.inferenceMs,
    addons: a.addons ?? [],
    claimMs: null,
    startMs: null,
    endMs: null,
    nodeId: null,
  }));
  const state: SimState = { nowMs: 0, nodes, queues };
  const frees = new EventHeap();
  const result: SimResult = {
    policy: policy.name,
    tasks,
    makespanMs: 0,
    switches: 0,
    downloads: 0,
    ramSwitches: 0,
    switchingMs: 0,
    addonDownloads: 0,
    addonDownloadMs: 0,
    switchReasons: {},
    prefetches: 0,
  };

  // A stalled policy (work waiting that it never places) must not loop forever.
  const totalWorkMs = tasks.reduce((sum, t) => sum + t.inferenceMs, 0);
  const lastArrivalMs = tasks[tasks.length - 1]?.arrivalMs ?? 0;
  const giveUpMs = lastArrivalMs + 100 * (totalWorkMs + trace.checkpoints.reduce((s, c) => s + c.loadMs + c.downloadMs, 0));

  let nextArrival = 0;
  let completed = 0;
  let nextPollMs = Infinity;

  const place = (node: SimNode, choice: SimChoice): boolean => {
    const q = queues.get(choice.checkpoint);
    if (!q) throw new Error(`${policy.name}: unknown checkpoint ${choice.checkpoint}`);
    if (!nodeFits(node, q.spec)) throw new Error(`${policy.name}: ${node.id} may not serve ${q.spec.name}`);
    const switching = node.loaded !== q.spec.name;
    const claim = hasClaimableWork(q);
    if (!switching && !claim) return false;
    if (switching && q.spec.maxNodes > 0 && nodesServing(state, q.spec.name, node) >= q.spec.maxNodes) {
      throw new Error(`${policy.name}: ${node.id} would exceed maxNodes of ${q.spec.name}`);
    }
    let readyMs = state.nowMs;
    if (switching) {
      const download = !node.cached.has(q.spec.name);
      const fromRam = node.ram.delete(q.spec.name);
      const costMs = fromRam ? ramLoadMs(q.spec) : q.spec.loadMs + (download ? q.spec.downloadMs : 0);
      result.switches += 1;
      if (download) result.downloads += 1;
      if (fromRam) result.ramSwitches += 1;
      keepInRam(node, node.loaded, state.nowMs);
      result.switchingMs += costMs;
      const reason = choice.reason ?? "switch";
      result.switchReasons[reason] = (result.switchReasons[reason] ?? 0) + 1;
      node.loaded = q.spec.name;
      node.cached.add(q.spec.name);
      use(node, [`checkpoint:${q.spec.name}`]);
      node.servingSinceMs = state.nowMs;
      readyMs += costMs;
    }
    if (claim) {
      const task = q.tasks[q.head]!;
      q.head += 1;
      q.running += 1;
      for (const name of task.addons) {
        if (node.cachedAddons.has(name)) continue;
        const downloadMs = addonSpecs.get(name)!.downloadMs;
        result.addonDownloads += 1;
        result.addonDownloadMs += downloadMs;
        readyMs += downloadMs;
        node.cachedAddons.add(name);
      }
      use(node, [`checkpoint:${q.spec.name}`, ...task.addons.map((a) => `addon:${a}`)]);
      task.claimMs = state.nowMs;
      task.startMs = readyMs;
      task.endMs = readyMs + task.inferenceMs;
      task.nodeId = node.id;
      node.task = task;
      readyMs = task.endMs;
    }
    node.busyUntilMs = readyMs;
    node.idleSinceMs = null;
    frees.push(readyMs, node);
    return true;
  };

  let nextFetchMs = Infinity;
  let nextBeatMs = policy.prefetch ? 0 : Infinity;
  while (completed < tasks.length) {
    const nextAskMs = Math.min(tasks[nextArrival]?.arrivalMs ?? Infinity, frees.peekMs(), nextPollMs);
    const nowMs = Math.min(nextAskMs, nextFetchMs, nextBeatMs);
    if (!Number.isFinite(nowMs) || nowMs > giveUpMs) {
      throw new Error(`${policy.name}: stalled at ${state.nowMs} ms with ${tasks.length - completed} tasks unfinished`);
    }
    state.nowMs = nowMs;
    if (nextPollMs <= nowMs) nextPollMs = Infinity;
    // Idle nodes whose own files changed at this instant: they ask again (Fleet wakes a parked
    // claim whose node's heartbeat reports other files).
    const refreshed: SimNode[] = [];
    if (nextFetchMs <= nowMs) {
      nextFetchMs = Infinity;
      for (const node of nodes) {
        const fetch = node.fetching;
        if (fetch === null) continue;
        if (fetch.readyMs > nowMs) {
          nextFetchMs = Math.min(nextFetchMs, fetch.readyMs);
          continue;
        }
        node.fetching = null;
        // Other files may have filled the disk meanwhile: a prefetch never evicts.
        if (!fitsWithoutEvicting(node, fetch.checkpoint)) continue;
        node.cached.add(fetch.checkpoint);
        node.lastUsedMs.set(`checkpoint:${fetch.checkpoint}`, nowMs);
        if (node.busyUntilMs === null) refreshed.push(node);
      }
    }
    while (frees.peekMs() <= nowMs) {
      const node = frees.pop()!;
      if (node.task) {
        queues.get(node.task.checkpoint)!.running -= 1;
        completed += 1;
        result.makespanMs = Math.max(result.makespanMs, node.task.endMs!);
        node.task = null;
      }
      node.busyUntilMs = null;
      node.idleSinceMs = nowMs;
    }
    while (nextArrival < tasks.length && tasks[nextArrival]!.arrivalMs <= nowMs) {
      const task = tasks[nextArrival]!;
      queues.get(task.checkpoint)!.tasks.push(task);
      nextArrival += 1;
    }
    // Heartbeats alone do not make idle nodes ask again.
    const idleNodes = nowMs < nextAskMs ? refreshed : nodes.filter((n) => n.busyUntilMs === null);
    for (const node of policy.order ? policy.order(idleNodes, state) : idleNodes) {
      if (node.busyUntilMs !== null) continue;
      const choice = policy.choose(node, state);
      if (choice) place(node, choice);
    }
    if (policy.prefetch && nextBeatMs <= nowMs) {
      nextBeatMs = nowMs + HEARTBEAT_INTERVAL_MS;
      // As the agent does with its heartbeat's answer: one background download at a time, busy or not.
      for (const node of nodes) {
        if (node.fetching !== null) continue;
        const name = policy.prefetch(node, state);
        if (name === null || node.cached.has(name) || !fitsWithoutEvicting(node, name)) continue;
        node.fetching = { checkpoint: name, readyMs: nowMs + queues.get(name)!.spec.downloadMs };
        result.prefetches += 1;
        nextFetchMs = Math.min(nextFetchMs, node.fetching.readyMs);
      }
    }
    if (policy.askAgainAtMs) {
      nextPollMs = Infinity;
      for (const node of nodes) if (node.busyUntilMs === null) nextPollMs = Math.min(nextPollMs, policy.askAgainAtMs(node, state));
    }
  }
  return result;
}
