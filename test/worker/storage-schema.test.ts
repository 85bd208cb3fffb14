// The Durable Objects' SQLite tables are versioned: an object created before versioning (its
// tables there, no version) adopts it with its rows kept, a fresh one gets every table, running
// the steps again changes nothing, and a step added later runs once on an object that has data.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { FLEET_STORAGE_STEPS } from "../../src/fleet/storage-schema";
import { QUEUE_STORAGE_STEPS } from "../../src/queue/storage-schema";
import { migrateSqlStorage } from "../../src/sql-storage-migrations";
import { queueOf } from "./helpers";

const QUEUE_TABLES = [
  "class_clocks",
  "d1_outbox",
  "failed_file",
  "live_tasks",
  "owner_priorities",
  "owners",
  "pool",
  "queue_counters",
  "schema_version",
  "unqueued_ended",
  "webhook_deliveries",
  "webhooks",
];
const FLEET_TABLES = ["model_failures", "node_groups", "node_keys", "nodes", "queues", "schema_version"];

function tables(storage: DurableObjectStorage): string[] {
  return storage.sql
    .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' ORDER BY name")
    .toArray()
    .map((row) => row.name);
}

function dropAll(storage: DurableObjectStorage): void {
  for (const name of tables(storage)) storage.sql.exec(`DROP TABLE ${name}`);
}

function version(storage: DurableObjectStorage): number | undefined {
  return storage.sql.exec<{ version: number }>("SELECT version FROM schema_version").toArray()[0]?.version;
}

const fleetOf = (name: string) => env.FLEET.get(env.FLEET.idFromName(name));

describe("Durable Object storage schema", () => {
  it("a queue from before versioning adopts the versions with its rows kept", async () => {
    await runInDurableObject(queueOf("schema-unversioned"), (_queue, state) => {
      const storage = state.storage;
      dropAll(storage);
      // What the code before versioning created: the same tables, no version.
      storage.sql.exec(QUEUE_STORAGE_STEPS[0]!);
      storage.sql.exec('INSERT INTO pool (id, settings) VALUES (1, \'{"checkpoint":"old"}\')');
      storage.sql.exec("INSERT INTO d1_outbox (uid, record) VALUES ('t1', '{}')");

      expect(migrateSqlStorage(storage, QUEUE_STORAGE_STEPS)).toBe(QUEUE_STORAGE_STEPS.length);
      expect(version(storage)).toBe(QUEUE_STORAGE_STEPS.length);
      expect(tables(storage)).toEqual(QUEUE_TABLES);
      expect(storage.sql.exec("SELECT settings FROM pool").one().settings).toBe('{"checkpoint":"old"}');
      expect(storage.sql.exec("SELECT COUNT(*) AS n FROM d1_outbox").one().n).toBe(1);
    });
  });

  it("a fresh queue gets every table, and running the steps again changes nothing", async () => {
    await runInDurableObject(queueOf("schema-fresh"), (_queue, state) => {
      const storage = state.storage;
      dropAll(storage);
      expect(migrateSqlStorage(storage, QUEUE_STORAGE_STEPS)).toBe(QUEUE_STORAGE_STEPS.length);
      expect(tables(storage)).toEqual(QUEUE_TABLES);
      storage.sql.exec("INSERT INTO d1_outbox (uid, record) VALUES ('t1', '{}')");

      expect(migrateSqlStorage(storage, QUEUE_STORAGE_STEPS)).toBe(QUEUE_STORAGE_STEPS.length);
      expect(version(storage)).toBe(QUEUE_STORAGE_STEPS.length);
      expect(storage.sql.exec("SELECT COUNT(*) AS n FROM d1_outbox").one().n).toBe(1);
    });
  });

  it("a step added later adds a column to a live queue once", async () => {
    await runInDurableObject(queueOf("schema-upgrade"), (_queue, state) => {
      const storage = state.storage;
      storage.sql.exec("INSERT INTO d1_outbox (uid, record) VALUES ('t1', '{}')");
      // Not IF NOT EXISTS: a second run of this step would fail.
      const later = [...QUEUE_STORAGE_STEPS, "ALTER TABLE d1_outbox ADD COLUMN note TEXT NOT NULL DEFAULT 'none'"];

      expect(migrateSqlStorage(storage, later)).toBe(later.length);
      expect(migrateSqlStorage(storage, later)).toBe(later.length);
      expect(storage.sql.exec("SELECT uid, note FROM d1_outbox").toArray()).toEqual([{ uid: "t1", note: "none" }]);
      // The code before the step (a rollback) leaves the newer storage as it is.
      expect(migrateSqlStorage(storage, QUEUE_STORAGE_STEPS)).toBe(later.length);
    });
  });

  it("Fleet's storage is versioned the same way", async () => {
    await runInDurableObject(fleetOf("schema-fleet"), (_fleet, state) => {
      const storage = state.storage;
      expect(version(storage)).toBe(FLEET_STORAGE_STEPS.length);
      dropAll(storage);
      storage.sql.exec(FLEET_STORAGE_STEPS[0]!);
      storage.sql.exec("INSERT INTO nodes (node_id, data) VALUES ('n1', '{}')");

      expect(migrateSqlStorage(storage, FLEET_STORAGE_STEPS)).toBe(FLEET_STORAGE_STEPS.length);
      expect(migrateSqlStorage(storage, FLEET_STORAGE_STEPS)).toBe(FLEET_STORAGE_STEPS.length);
      expect(tables(storage)).toEqual(FLEET_TABLES);
      expect(storage.sql.exec("SELECT node_id FROM nodes").toArray()).toEqual([{ node_id: "n1" }]);
    });
  });
});
