// kysely + @libsql/kysely-libsql against edgestore: usage `node app.mjs <url>`; one JSON line.
// Migrator up / down / up, then queries, joins, updates, deletes, transactions and a batch-like
// multi-row insert, with 64-bit integers, blobs, NULLs and floats.
import assert from "node:assert/strict";
import { Kysely, Migrator, sql } from "kysely";
import { LibsqlDialect } from "@libsql/kysely-libsql";

const url = process.argv[2];
const db = new Kysely({ dialect: new LibsqlDialect({ url, intMode: "bigint" }) });

const migrations = {
  "0001_shop": {
    async up(db) {
      await db.schema
        .createTable("customers")
        .addColumn("id", "integer", (c) => c.primaryKey())
        .addColumn("email", "text", (c) => c.notNull().unique())
        .execute();
      await db.schema
        .createTable("orders")
        .addColumn("id", "integer", (c) => c.primaryKey())
        .addColumn("customer_id", "integer", (c) => c.notNull().references("customers.id").onDelete("cascade"))
        .addColumn("total", "real")
        .addColumn("ref", "integer")
        .execute();
      await db.schema
        .createTable("lines")
        .addColumn("id", "integer", (c) => c.primaryKey())
        .addColumn("order_id", "integer", (c) => c.notNull().references("orders.id").onDelete("cascade"))
        .addColumn("sku", "text", (c) => c.notNull())
        .addColumn("payload", "blob")
        .execute();
      await db.schema.createIndex("orders_customer").on("orders").column("customer_id").execute();
      await db.schema.createIndex("lines_order").on("lines").column("order_id").execute();
    },
    async down(db) {
      await db.schema.dropTable("lines").execute();
      await db.schema.dropTable("orders").execute();
      await db.schema.dropTable("customers").execute();
    },
  },
  "0002_note": {
    async up(db) {
      await db.schema.alterTable("orders").addColumn("note", "text").execute();
    },
    async down(db) {
      await db.schema.alterTable("orders").dropColumn("note").execute();
    },
  },
};
const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
const ok = (r) => {
  if (r.error) throw r.error;
  return r.results.map((m) => `${m.direction}:${m.migrationName}:${m.status}`);
};
const steps = [];
steps.push(...ok(await migrator.migrateToLatest()));
steps.push(...ok(await migrator.migrateDown()));
steps.push(...ok(await migrator.migrateDown()));
steps.push(...ok(await migrator.migrateToLatest()));

// Schema introspection as kysely sees it: only the shop's tables (no edgestore internals).
const tables = (await db.introspection.getTables()).map((t) => t.name).sort();
assert.deepEqual(tables, ["customers", "lines", "orders"]);

const BIG = 2n ** 63n - 2n;
await db.insertInto("customers").values([{ id: 1, email: "a@x" }, { id: 2, email: "b@x" }]).execute();
await db
  .insertInto("orders")
  .values([
    { id: 1, customer_id: 1, total: 19.99, ref: BIG, note: null },
    { id: 2, customer_id: 2, total: null, ref: -BIG, note: "gift" },
  ])
  .execute();
await db
  .insertInto("lines")
  .values([
    { order_id: 1, sku: "A", payload: new Uint8Array([1, 2, 3]) },
    { order_id: 1, sku: "B", payload: null },
    { order_id: 2, sku: "C", payload: new Uint8Array([]) },
  ])
  .execute();
const joined = await db
  .selectFrom("orders")
  .innerJoin("customers", "customers.id", "orders.customer_id")
  .leftJoin("lines", "lines.order_id", "orders.id")
  .select(["orders.id", "customers.email", "orders.ref", "orders.total", sql`count(lines.id)`.as("n")])
  .groupBy("orders.id")
  .orderBy("orders.id")
  .execute();
assert.deepEqual(
  joined.map((r) => [r.id, r.email, r.ref, r.total, r.n]),
  [
    [1n, "a@x", BIG, 19.99, 2n],
    [2n, "b@x", -BIG, null, 1n],
  ],
);
const a = await db.selectFrom("lines").select("payload").where("sku", "=", "A").executeTakeFirstOrThrow();
assert.deepEqual([...new Uint8Array(a.payload)], [1, 2, 3]);

await db.updateTable("orders").set({ total: 25.5 }).where("id", "=", 2n).execute();
await db.transaction().execute(async (tx) => {
  await tx.insertInto("lines").values({ order_id: 2, sku: "D" }).execute();
});
await assert.rejects(
  db.transaction().execute(async (tx) => {
    await tx.insertInto("lines").values({ order_id: 2, sku: "E" }).execute();
    throw new Error("roll back");
  }),
  /roll back/,
);
await assert.rejects(db.insertInto("customers").values({ id: 3, email: "a@x" }).execute(), /UNIQUE/);
await db.deleteFrom("customers").where("id", "=", 1n).execute(); // cascades to orders and lines
const skus = (await db.selectFrom("lines").select("sku").orderBy("id").execute()).map((r) => r.sku);
assert.deepEqual(skus, ["C", "D"]);
await db.destroy();
console.log(JSON.stringify({ ok: true, steps, skus }));
