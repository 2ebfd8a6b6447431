// drizzle-orm's migrator as an application runs it at start-up: usage
// `tsx migrate.ts <url> <migrations folder>`; prints one JSON line.
import { createClient } from "@libsql/client";
import { drizzle } from "drizzle-orm/libsql";
import { migrate } from "drizzle-orm/libsql/migrator";

const [url, folder] = process.argv.slice(2);
const client = createClient({ url });
await migrate(drizzle(client), { migrationsFolder: folder });
const applied = await client.execute("SELECT count(*) AS n FROM __drizzle_migrations");
const tables = await client.execute(
  "SELECT name FROM sqlite_schema WHERE type = 'table' AND name IN ('authors', 'posts', 'comments') ORDER BY name",
);
client.close();
console.log(
  JSON.stringify({ ok: true, applied: Number(applied.rows[0].n), tables: tables.rows.map((r) => r.name) }),
);
