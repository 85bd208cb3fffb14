// CheckpointQueue's SQLite tables, as upgrade steps (see src/sql-storage-migrations.ts): live
// tasks, the pool's settings and the checkpoint file marked failed, tasks ended unqueued (./checkpoint-queue.ts), the D1 outbox (./d1-outbox.ts) and
// webhook deliveries (./webhook-outbox.ts). Append a step to change them; never edit one.
import type { StorageSteps } from "../sql-storage-migrations";

export const QUEUE_STORAGE_STEPS: StorageSteps = [
  `
CREATE TABLE IF NOT EXISTS live_tasks (
  uid TEXT PRIMARY KEY, task_id TEXT NOT NULL, owner TEXT NOT NULL, priority INTEGER NOT NULL,
  seq INTEGER NOT NULL, enqueued_at INTEGER NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
  lease_id TEXT, lease_expires_at INTEGER, node_id TEXT, cancel_requested INTEGER NOT NULL DEFAULT 0,
  claim TEXT NOT NULL, progress TEXT, last_error TEXT);
CREATE INDEX IF NOT EXISTS live_tasks_order ON live_tasks(status, priority DESC, seq);
CREATE TABLE IF NOT EXISTS pool (id INTEGER PRIMARY KEY CHECK (id = 1), settings TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS d1_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, uid TEXT NOT NULL, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS webhooks (uid TEXT PRIMARY KEY, url TEXT NOT NULL, origin TEXT NOT NULL, owner TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
  id TEXT PRIMARY KEY, url TEXT NOT NULL, origin TEXT NOT NULL, owner TEXT NOT NULL, event TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL, last_error TEXT);`,
  "CREATE TABLE IF NOT EXISTS failed_file (id INTEGER PRIMARY KEY CHECK (id = 1), sha256 TEXT NOT NULL, reason TEXT NOT NULL);",
  // Tasks ended without ever being queued (endUnqueued): their late enqueue is refused.
  "CREATE TABLE IF NOT EXISTS unqueued_ended (uid TEXT PRIMARY KEY, ended_at INTEGER NOT NULL);",
  // Runs of a task lost to the infrastructure (lease-policy.ts), bounded apart from its own failures.
  "ALTER TABLE live_tasks ADD COLUMN infra_losses INTEGER NOT NULL DEFAULT 0;",
  // The lease (and its node) a waiting task lost by expiry: its node's late result is still taken.
  "ALTER TABLE live_tasks ADD COLUMN lost_lease_id TEXT; ALTER TABLE live_tasks ADD COLUMN lost_node_id TEXT;",
];
