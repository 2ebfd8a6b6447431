// One caller's read transactions cannot take every reader: node caller_shares.mjs <ws-url>
// <http-url> <token-a> <token-b>. Caller A holds a read transaction and starts a second one
// (which waits for A's own); caller B reads meanwhile and /health/ready answers.
// Prints one JSON line {"ok": true, ...}; any failed check exits non-zero.
import assert from "node:assert/strict";
import { createClient } from "@libsql/client";

const [wsUrl, httpUrl, tokenA, tokenB] = process.argv.slice(2);
const a = createClient({ url: wsUrl, authToken: tokenA });
const b = createClient({ url: wsUrl, authToken: tokenB });

const first = await a.transaction("read");
await first.execute("SELECT 1");
let secondDone = false;
const second = (async () => {
  const tx = await a.transaction("read");
  try {
    const rs = await tx.execute("SELECT 2 AS two");
    return rs.rows[0].two;
  } finally {
    secondDone = true;
    tx.close();
  }
})();
await new Promise((resolve) => setTimeout(resolve, 300));
assert.equal(secondDone, false, "the caller's second read transaction should wait for its first");
const rs = await b.execute("SELECT 3 AS three");
assert.equal(rs.rows[0].three, 3);
const ready = await fetch(`${httpUrl}/health/ready`);
assert.equal(ready.status, 200);
first.close();
assert.equal(await second, 2);
a.close();
b.close();
console.log(JSON.stringify({ ok: true }));
