// Versioned SQLite storage of a Durable Object: its schema is an ordered list of upgrade steps,
// and the object stores how many it has run. Each object runs the steps it lacks when it starts,
// so a deploy can add a table or column to objects that already hold data.

/** Each step is SQL run once, in order; step 1 uses IF NOT EXISTS so objects that predate versioning adopt it. */
export type StorageSteps = readonly string[];

/** Brings the storage up to the last step, atomically; answers the version it is at. */
export function migrateSqlStorage(storage: DurableObjectStorage, steps: StorageSteps): number {
  return storage.transactionSync(() => {
    const sql = storage.sql;
    sql.exec("CREATE TABLE IF NOT EXISTS schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)");
    const current = sql.exec<{ version: number }>("SELECT version FROM schema_version WHERE id = 1").toArray()[0]?.version ?? 0;
    // A version beyond the steps means newer code ran here and was rolled back: its additions stay.
    if (current >= steps.length) return current;
    for (const step of steps.slice(current)) sql.exec(step);
    sql.exec("INSERT INTO schema_version (id, version) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET version = excluded.version", steps.length);
    return steps.length;
  });
}
