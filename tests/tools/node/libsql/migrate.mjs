// @libsql/client's migrate() (a batch with foreign keys off, as drizzle's migrator uses it),
// then a table rebuild through it: usage `node migrate.mjs <url>`; prints one JSON line.
// Run over http:// and ws://. An unhandled rejection (a refused PRAGMA step) would kill node.
import assert from "node:assert/strict";
import { createClient } from "@libsql/client";

const url = process.argv[2];
const client = createClient({ url, intMode: "bigint" });

await client.migrate([
  "CREATE TABLE owners (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
  "CREATE TABLE pets (id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL REFERENCES owners(id) ON DELETE CASCADE, name TEXT, chip BLOB, weight REAL, tag INTEGER)",
  "CREATE TABLE visits (id INTEGER PRIMARY KEY, pet_id INTEGER NOT NULL REFERENCES pets(id) ON DELETE CASCADE, note TEXT)",
  "CREATE INDEX pets_owner ON pets(owner_id)",
  "CREATE INDEX visits_pet ON visits(pet_id)",
]);
const BIG = 2n ** 60n + 7n;
await client.batch(
  [
    "INSERT INTO owners VALUES (1, 'ann'), (2, 'ben')",
    { sql: "INSERT INTO pets VALUES (1, 1, 'rex', ?, 12.5, ?)", args: [new Uint8Array([0, 255, 7]), BIG] },
    { sql: "INSERT INTO pets VALUES (2, 2, NULL, NULL, NULL, NULL)", args: [] },
    "INSERT INTO visits VALUES (1, 1, 'checkup'), (2, 1, 'teeth'), (3, 2, NULL)",
  ],
  "write",
);

// A rebuild of pets (the parent of visits) under migrate(): foreign keys are off for it, so
// DROP TABLE pets must not cascade into visits.
await client.migrate([
  "CREATE TABLE new_pets (id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL REFERENCES owners(id) ON DELETE RESTRICT, name TEXT, chip BLOB, weight REAL, tag INTEGER)",
  "INSERT INTO new_pets SELECT * FROM pets",
  "DROP TABLE pets",
  "ALTER TABLE new_pets RENAME TO pets",
  "CREATE INDEX pets_owner ON pets(owner_id)",
]);
const visits = await client.execute("SELECT count(*) AS n FROM visits");
assert.equal(visits.rows[0].n, 3n);
const rex = await client.execute("SELECT chip, weight, tag, name FROM pets WHERE id = 1");
assert.deepEqual([...new Uint8Array(rex.rows[0].chip)], [0, 255, 7]);
assert.equal(rex.rows[0].weight, 12.5);
assert.equal(rex.rows[0].tag, BIG);
const nulls = await client.execute("SELECT name, chip, weight, tag FROM pets WHERE id = 2");
assert.deepEqual(Object.values(nulls.rows[0]).slice(0, 4), [null, null, null, null]);
// Foreign keys are back on for this client afterwards.
const fk = await client.execute("PRAGMA foreign_keys");
assert.equal(fk.rows[0].foreign_keys, 1n);
await assert.rejects(client.execute("INSERT INTO visits VALUES (9, 99, 'orphan')"), /FOREIGN KEY/);
client.close();
console.log(JSON.stringify({ ok: true, visits: 3 }));
