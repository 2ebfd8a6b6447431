// @libsql/client embedded replica (url file: + syncUrl) of an edgestore primary.
// Usage: node sync_replica.mjs <replica-file> <primary-url> <phase>
// Prints one JSON line: the rows of t and what sync() returned.
import { createClient } from "@libsql/client";

const [file, syncUrl, phase] = process.argv.slice(2);
const client = createClient({ url: `file:${file}`, syncUrl });
const out = {};
out.sync = await client.sync();
if (phase === "write") {
  await client.execute({ sql: "INSERT INTO t (id, v, n) VALUES (?, ?, ?)", args: [100001, "from js", 7] });
  out.afterWrite = (await client.execute("SELECT v FROM t WHERE id = 100001")).rows.map((r) => r.v);
}
const rs = await client.execute("SELECT id, v, n FROM t ORDER BY id");
out.rows = rs.rows.map((r) => [Number(r.id), r.v, Number(r.n)]);
client.close();
console.log(JSON.stringify(out));
