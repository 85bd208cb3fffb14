// The queue's outbox to D1. A transition writes its D1 record here in the same synchronous step
// that changes the live row, so both are committed together; `drain` then applies pending records
// to D1 in order, several per D1 batch. Nobody has to wait for D1 for a transition to count: if
// D1 fails, the records stay and the queue's alarm drains them again. The task's D1 row is never
// left behind the queue for good, and never goes back in time.
import { applyTaskRecords, type TaskRecord } from "../db/task-records";

/** Most records applied in one D1 batch. */
const BATCH_SIZE = 50;

export class D1Outbox {
  private draining: Promise<void> | null = null;

  constructor(
    private readonly sql: SqlStorage,
    /** The database; a function so tests can put a failing one in its place. */
    private readonly db: () => D1Database,
  ) {}

  /** Records a transition; call in the same synchronous step as the change it mirrors. */
  add(record: TaskRecord): void {
    this.sql.exec("INSERT INTO d1_outbox (uid, record) VALUES (?, ?)", record.uid, JSON.stringify(record));
  }

  get pending(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM d1_outbox").one().n;
  }

  /** Whether a record of this task (of this kind, when given) has not reached D1 yet. */
  holds(uid: string, kind?: TaskRecord["kind"]): boolean {
    const query = kind
      ? this.sql.exec("SELECT 1 FROM d1_outbox WHERE uid = ? AND json_extract(record, '$.kind') = ? LIMIT 1", uid, kind)
      : this.sql.exec("SELECT 1 FROM d1_outbox WHERE uid = ? LIMIT 1", uid);
    return query.toArray().length > 0;
  }

  /**
   * Applies every pending record to D1, in order. Resolves once the outbox is empty (records
   * added meanwhile included); rejects when D1 fails, leaving the rest for the next drain.
   */
  drain(): Promise<void> {
    this.draining ??= this.applyAll().finally(() => (this.draining = null));
    return this.draining;
  }

  private async applyAll(): Promise<void> {
    for (;;) {
      const rows = this.sql.exec<{ seq: number; record: string }>("SELECT seq, record FROM d1_outbox ORDER BY seq LIMIT ?", BATCH_SIZE).toArray();
      if (rows.length === 0) return;
      await applyTaskRecords(
        this.db(),
        rows.map((row) => JSON.parse(row.record) as TaskRecord),
      );
      this.sql.exec("DELETE FROM d1_outbox WHERE seq <= ?", rows[rows.length - 1]!.seq);
    }
  }
}
