// Many @libsql/client WebSocket transactions at once: committed, rolled back, abandoned
// (closed inside the transaction), batches as the second operation of a transaction, and
// clients closed mid-transaction. node ws_transaction_race.mjs <ws-url> <rounds> <callers>
// Prints one JSON line {"errors": [...], "committed": N}.
import { createClient } from "@libsql/client";

const [url, roundsArg, callersArg] = process.argv.slice(2);
const rounds = Number(roundsArg);
const callers = Number(callersArg);
const errors = [];
let committed = 0;

async function caller(tag) {
  const t = `js${tag}`;
  const scenarios = {
    async batchSecond(c) {
      await c.execute(`DROP TABLE IF EXISTS ${t}`);
      const tx = await c.transaction("write");
      try {
        await tx.execute(`CREATE TABLE ${t} (a)`);
        await tx.batch([`INSERT INTO ${t} VALUES (1)`, `INSERT INTO ${t} VALUES (2)`]);
        await tx.commit();
        committed += 1;
      } finally {
        tx.close();
      }
      const rs = await c.execute(`SELECT count(*) AS n FROM ${t}`);
      if (Number(rs.rows[0].n) !== 2) throw new Error(`expected 2 rows, got ${rs.rows[0].n}`);
    },
    async rollback(c) {
      await c.execute(`CREATE TABLE IF NOT EXISTS ${t} (a)`);
      const tx = await c.transaction("write");
      await tx.execute(`INSERT INTO ${t} VALUES (3)`);
      await tx.rollback();
    },
    async abandoned(c) {
      const tx = await c.transaction("write");
      await tx.execute("SELECT 1");
      tx.close();
    },
    async cutOff(c) {
      const tx = await c.transaction("write");
      await tx.execute(`CREATE TABLE IF NOT EXISTS ${t} (a)`);
      tx.execute(`INSERT INTO ${t} VALUES (4)`).catch(() => {}); // the client closes now
    },
  };
  for (const name of ["abandoned", "batchSecond", "cutOff", "rollback", "batchSecond"]) {
    const c = createClient({ url });
    try {
      await scenarios[name](c);
    } catch (e) {
      errors.push(`${name}: ${e.code ?? ""} ${e.message}`);
    } finally {
      c.close();
    }
  }
}

for (let r = 0; r < rounds; r++) {
  await Promise.all(Array.from({ length: callers }, (_, i) => caller(i)));
}
console.log(JSON.stringify({ errors, committed }));
