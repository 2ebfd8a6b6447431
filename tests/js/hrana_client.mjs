// Drives @libsql/client against an edgestore server: node hrana_client.mjs <url> [authToken]
// Works for http:// (Hrana v2 pipeline with batons) and ws:// (Hrana over WebSocket).
// Prints one JSON line {"ok": true, ...} on success; any failed check exits non-zero.
import assert from "node:assert/strict";
import { createClient } from "@libsql/client";

const url = process.argv[2];
const authToken = process.argv[3] || undefined;
const client = createClient({ url, authToken, intMode: "bigint" });
const T = url.startsWith("ws") ? "js_ws" : "js_http";
const report = { url };

async function count(where = "1") {
  const rs = await client.execute(`SELECT count(*) AS c FROM ${T} WHERE ${where}`);
  return rs.rows[0].c;
}

// --- execute, every value type, positional and named args -------------------------------
await client.execute(`DROP TABLE IF EXISTS ${T}`);
await client.execute(
  `CREATE TABLE ${T}(id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INTEGER, f REAL, b BLOB)`,
);
const big = 9223372036854775807n;
let rs = await client.execute({
  sql: `INSERT INTO ${T}(name, n, f, b) VALUES (?, ?, ?, ?)`,
  args: ["alpha", big, 1.5, new Uint8Array([0, 1, 2, 255])],
});
assert.equal(rs.rowsAffected, 1);
assert.equal(rs.lastInsertRowid, 1n);
rs = await client.execute({
  sql: `SELECT id, name, n, f, b, NULL AS z FROM ${T} WHERE name = :name`,
  args: { name: "alpha" },
});
assert.deepEqual(rs.columns, ["id", "name", "n", "f", "b", "z"]);
assert.equal(rs.columnTypes[1], "TEXT");
const row = rs.rows[0];
assert.equal(row.name, "alpha");
assert.equal(row.n, big);
assert.equal(row.f, 1.5);
assert.deepEqual([...new Uint8Array(row.b)], [0, 1, 2, 255]);
assert.equal(row.z, null);
rs = await client.execute({ sql: `SELECT n FROM ${T} WHERE n = $n`, args: { $n: big } });
assert.equal(rs.rows.length, 1);

// --- batches: write, read, deferred; a failing batch rolls back ---------------------------
let results = await client.batch(
  [
    { sql: `INSERT INTO ${T}(name) VALUES (?)`, args: ["beta"] },
    `SELECT count(*) AS c FROM ${T}`,
  ],
  "write",
);
assert.equal(results[1].rows[0].c, 2n);
results = await client.batch([`SELECT count(*) AS c FROM ${T}`, `SELECT 1 AS one`], "read");
assert.equal(results[0].rows[0].c, 2n);
await assert.rejects(
  client.batch([`INSERT INTO ${T}(name) VALUES ('x')`], "read"),
  (e) => typeof e.code === "string",
);
results = await client.batch(
  [{ sql: `INSERT INTO ${T}(name) VALUES (?)`, args: ["gamma"] }],
  "deferred",
);
assert.equal(results[0].rowsAffected, 1);
let err = null;
try {
  await client.batch(
    [`INSERT INTO ${T}(name) VALUES ('delta')`, `INSERT INTO ${T}(name) VALUES ('alpha')`],
    "write",
  );
} catch (e) {
  err = e;
}
assert.ok(err, "a batch with a failing step must fail");
assert.equal(err.code, "SQLITE_CONSTRAINT");
assert.equal(await count("name = 'delta'"), 0n, "the failed batch must roll back");
report.constraintCode = err.code;

// --- interactive transactions across several requests --------------------------------------
let tx = await client.transaction("write");
await tx.execute({ sql: `INSERT INTO ${T}(name) VALUES (?)`, args: ["tx-commit"] });
rs = await tx.execute(`SELECT count(*) AS c FROM ${T} WHERE name = 'tx-commit'`);
assert.equal(rs.rows[0].c, 1n);
await tx.execute({ sql: `UPDATE ${T} SET n = ? WHERE name = ?`, args: [42, "tx-commit"] });
await tx.commit();
assert.equal(await count("name = 'tx-commit' AND n = 42"), 1n);

tx = await client.transaction("write");
await tx.execute(`INSERT INTO ${T}(name) VALUES ('tx-rollback')`);
rs = await tx.execute(`SELECT count(*) AS c FROM ${T} WHERE name = 'tx-rollback'`);
assert.equal(rs.rows[0].c, 1n);
await tx.rollback();
assert.equal(await count("name = 'tx-rollback'"), 0n);

tx = await client.transaction("read");
rs = await tx.execute(`SELECT count(*) AS c FROM ${T}`);
assert.ok(rs.rows[0].c >= 4n);
await tx.commit();

tx = await client.transaction("deferred");
await tx.batch([`INSERT INTO ${T}(name) VALUES ('tx-batch-1')`, `INSERT INTO ${T}(name) VALUES ('tx-batch-2')`]);
await tx.commit();
assert.equal(await count("name LIKE 'tx-batch-%'"), 2n);

// --- executeMultiple (the sequence request) ------------------------------------------------
await client.executeMultiple(`
  DROP TABLE IF EXISTS ${T}_m;
  CREATE TABLE ${T}_m(x INTEGER);
  INSERT INTO ${T}_m VALUES (1); -- a comment; with a semicolon
  INSERT INTO ${T}_m VALUES (2);
`);
rs = await client.execute(`SELECT sum(x) AS s FROM ${T}_m`);
assert.equal(rs.rows[0].s, 3n);

// --- errors carry codes -----------------------------------------------------------------------
await assert.rejects(client.execute("SELEC 1"), (e) => {
  report.syntaxCode = e.code;
  return typeof e.code === "string" && e.code.length > 0;
});
await assert.rejects(client.execute(`SELECT * FROM no_such_table`), (e) => {
  report.noTableCode = e.code;
  return e.code === "SQLITE_ERROR";
});

client.close();
report.ok = true;
console.log(JSON.stringify(report));
