// Where a replay's node time goes, so the live stack and the simulator can be compared on the
// same trace: nodes × makespan = inference + checkpoint loads + per-task overhead + idle while
// work waited + idle with nothing waiting. A node is busy from the claim that gave it a task to
// that task's end; before sd-webui starts it loads (download and load), then sd-webui works; what
// is left of the claim → end span is overhead (claim answer, image upload, completion). Idle time
// with a task waiting is time placement held the node back (batching, spare) or, live, the round
// trip between one task's completion and the next claim: idle spells up to HANDOFF_MAX_MS count
// as handoffs, longer ones as holds.

/** Longest idle spell with work waiting that counts as a handoff (completion → next claim), not a hold. */
export const HANDOFF_MAX_MS = 100;

export interface ReplayedTask {
  nodeId: string;
  /** Times in ms since the replay's start. */
  arrivalMs: number;
  claimMs: number;
  endMs: number;
  /** Download and checkpoint load before inference (0 when the checkpoint was loaded). */
  loadMs: number;
  inferenceMs: number;
}

export interface NodeTimeAccount {
  makespanMs: number;
  inferenceMs: number;
  loads: number;
  loadMs: number;
  overheadMs: number;
  idleWhileWaitingMs: number;
  /** Of idleWhileWaitingMs: spells up to HANDOFF_MAX_MS, and how many. */
  handoffMs: number;
  handoffs: number;
  /** The longer spells (holds), each in ms. */
  holdSpellsMs: number[];
  idleNothingWaitingMs: number;
}

export function accountNodeTime(tasks: readonly ReplayedTask[], nodeIds: readonly string[]): NodeTimeAccount {
  const makespanMs = Math.ceil(Math.max(0, ...tasks.map((t) => t.endMs)));
  // Per millisecond: how many tasks wait (arrived, not claimed), and which nodes are busy.
  const waitingDelta = new Int32Array(makespanMs + 2);
  for (const t of tasks) {
    waitingDelta[Math.max(0, Math.round(t.arrivalMs))]! += 1;
    waitingDelta[Math.max(0, Math.round(t.claimMs))]! -= 1;
  }
  const account: NodeTimeAccount = {
    makespanMs,
    inferenceMs: 0,
    loads: 0,
    loadMs: 0,
    overheadMs: 0,
    idleWhileWaitingMs: 0,
    handoffMs: 0,
    handoffs: 0,
    holdSpellsMs: [],
    idleNothingWaitingMs: 0,
  };
  for (const t of tasks) {
    account.inferenceMs += t.inferenceMs;
    account.loadMs += t.loadMs;
    if (t.loadMs > 0) account.loads += 1;
    account.overheadMs += t.endMs - t.claimMs - t.loadMs - t.inferenceMs;
  }
  for (const nodeId of nodeIds) {
    const busyDelta = new Int32Array(makespanMs + 2);
    for (const t of tasks.filter((task) => task.nodeId === nodeId)) {
      busyDelta[Math.max(0, Math.round(t.claimMs))]! += 1;
      busyDelta[Math.round(t.endMs)]! -= 1;
    }
    let waiting = 0;
    let busy = 0;
    let spellMs = 0;
    const endSpell = () => {
      if (spellMs > 0 && spellMs <= HANDOFF_MAX_MS) {
        account.handoffMs += spellMs;
        account.handoffs += 1;
      } else if (spellMs > HANDOFF_MAX_MS) account.holdSpellsMs.push(spellMs);
      spellMs = 0;
    };
    for (let ms = 0; ms < makespanMs; ms++) {
      waiting += waitingDelta[ms]!;
      busy += busyDelta[ms]!;
      if (busy === 0 && waiting > 0) {
        account.idleWhileWaitingMs += 1;
        spellMs += 1;
        continue;
      }
      endSpell();
      if (busy === 0) account.idleNothingWaitingMs += 1;
    }
    endSpell();
  }
  return account;
}
