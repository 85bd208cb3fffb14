// CheckpointQueue's SQLite tables, as upgrade steps (see src/sql-storage-migrations.ts): live
// tasks, the pool's settings and the checkpoint file marked failed, tasks ended unqueued, the
// owners' fair-share counters and the queue's own counters (./checkpoint-queue.ts), the D1 outbox
// (./d1-outbox.ts) and webhook deliveries (./webhook-outbox.ts). Append a step to change them; never edit one.
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
  // Fair share (./fair-share.ts) and costs that do not grow with the backlog: each owner's counters
  // and pass, its waiting tasks per Task-Priority, each priority class's virtual time, the queue's sequence and arrivals, a task's
  // place among its owner's own (owner_seq), and indexes for every lookup by owner, age, lease
  // and task. Counters of tasks already queued are filled from them.
  `
CREATE TABLE owners (
  owner TEXT PRIMARY KEY, weight REAL NOT NULL DEFAULT 1, priority_class INTEGER NOT NULL DEFAULT 0, max_running INTEGER,
  waiting INTEGER NOT NULL DEFAULT 0, running INTEGER NOT NULL DEFAULT 0, pass REAL NOT NULL DEFAULT 0,
  active_since INTEGER NOT NULL DEFAULT 0, enqueued INTEGER NOT NULL DEFAULT 0);
CREATE TABLE owner_priorities (owner TEXT NOT NULL, priority INTEGER NOT NULL, waiting INTEGER NOT NULL, PRIMARY KEY (owner, priority));
CREATE TABLE class_clocks (priority_class INTEGER PRIMARY KEY, virtual_time REAL NOT NULL);
CREATE TABLE queue_counters (id INTEGER PRIMARY KEY CHECK (id = 1), next_seq INTEGER NOT NULL, arrivals INTEGER NOT NULL);
ALTER TABLE live_tasks ADD COLUMN owner_seq INTEGER NOT NULL DEFAULT 0;
INSERT INTO queue_counters (id, next_seq, arrivals) SELECT 1, COALESCE(MAX(seq), 0) + 1, 0 FROM live_tasks;
UPDATE live_tasks SET owner_seq = ranked.n
  FROM (SELECT uid, ROW_NUMBER() OVER (PARTITION BY owner ORDER BY seq) AS n FROM live_tasks) AS ranked WHERE ranked.uid = live_tasks.uid;
INSERT INTO owners (owner, waiting, running, active_since, enqueued)
  SELECT owner, SUM(status = 'waiting'), SUM(status = 'running'), MIN(seq), COUNT(*) FROM live_tasks GROUP BY owner;
INSERT INTO owner_priorities (owner, priority, waiting) SELECT owner, priority, COUNT(*) FROM live_tasks WHERE status = 'waiting' GROUP BY owner, priority;
CREATE INDEX live_tasks_owner_order ON live_tasks(owner, status, priority DESC, seq);
CREATE INDEX live_tasks_owner_seq ON live_tasks(owner, status, priority, owner_seq);
CREATE INDEX live_tasks_waiting_since ON live_tasks(status, enqueued_at);
CREATE INDEX live_tasks_leases ON live_tasks(status, lease_expires_at);
CREATE INDEX live_tasks_node ON live_tasks(node_id);
CREATE INDEX d1_outbox_uid ON d1_outbox(uid);`,
];
