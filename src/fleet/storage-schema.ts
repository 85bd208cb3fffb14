// Fleet's SQLite tables, as upgrade steps (see src/sql-storage-migrations.ts): the nodes and
// the queue summaries it keeps (./fleet.ts), the (checkpoint, node) pairs that failed, and which
// node key each node id is bound to, and the node groups (./node-groups.ts). Append a step to change them; never edit one.
import type { StorageSteps } from "../sql-storage-migrations";

export const FLEET_STORAGE_STEPS: StorageSteps = [
  `
CREATE TABLE IF NOT EXISTS nodes (node_id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS queues (checkpoint TEXT PRIMARY KEY, data TEXT NOT NULL);`,
  `
CREATE TABLE model_failures (checkpoint TEXT NOT NULL, node_id TEXT NOT NULL, failed_at INTEGER NOT NULL, PRIMARY KEY (checkpoint, node_id));`,
  `
CREATE TABLE node_keys (node_id TEXT PRIMARY KEY, key_id TEXT NOT NULL);`,
  `
CREATE TABLE node_groups (name TEXT PRIMARY KEY, data TEXT NOT NULL);`,
];
