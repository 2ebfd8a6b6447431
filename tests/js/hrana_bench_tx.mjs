// Benchmark helper: N concurrent @libsql/client interactive transactions over http://
// (each BEGIN IMMEDIATE, 3 writes, COMMIT). Usage: node hrana_bench_tx.mjs <url> [n=50]
// Prints one JSON line: {"committed", "failed", "seconds", "tps", "p50_ms", "p99_ms", "errors"}.
import { createClient } from "@libsql/client";

const url = process.argv[2];
const n = Number(process.argv[3] || 50);
const client = createClient({ url });
await client.execute(
  "CREATE TABLE IF NOT EXISTS bench_tx(id INTEGER PRIMARY KEY, tx INTEGER, step INTEGER)",
);

async function one(i) {
  const start = performance.now();
  const tx = await client.transaction("write"); // BEGIN IMMEDIATE
  try {
    for (let step = 0; step < 3; step++) {
      await tx.execute({ sql: "INSERT INTO bench_tx(tx, step) VALUES (?, ?)", args: [i, step] });
    }
    await tx.commit();
  } catch (e) {
    tx.close();
    throw e;
  }
  return performance.now() - start;
}

const t0 = performance.now();
const settled = await Promise.allSettled(Array.from({ length: n }, (_, i) => one(i)));
const seconds = (performance.now() - t0) / 1000;
const times = settled.filter((s) => s.status === "fulfilled").map((s) => s.value).sort((a, b) => a - b);
const errors = settled.filter((s) => s.status === "rejected").map((s) => String(s.reason?.code || s.reason));
const pct = (p) => (times.length ? times[Math.min(times.length - 1, Math.ceil((p / 100) * times.length) - 1)] : null);
const rows = (await client.execute("SELECT count(*) AS c FROM bench_tx")).rows[0].c;
client.close();
console.log(
  JSON.stringify({
    committed: times.length,
    failed: errors.length,
    rows: Number(rows),
    seconds,
    tps: times.length / seconds,
    p50_ms: pct(50),
    p99_ms: pct(99),
    errors: [...new Set(errors)],
  }),
);
