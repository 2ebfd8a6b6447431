// Prisma Client (query compiler, no engine binary) with @prisma/adapter-libsql against
// edgestore: usage `tsx app.ts <url>`; prints one JSON line. The tables come from create.sql.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createClient } from "@libsql/client";
import { PrismaLibSql } from "@prisma/adapter-libsql";
import { PrismaClient } from "../.generated/prisma/client.ts";

const url = process.argv[2];
const setup = createClient({ url });
await setup.executeMultiple(readFileSync(new URL("./create.sql", import.meta.url), "utf8"));
setup.close();

const prisma = new PrismaClient({ adapter: new PrismaLibSql({ url, intMode: "bigint" }) });
const BADGE = 2n ** 62n + 1n;
const AVATAR = new Uint8Array([0, 1, 128, 255]);

const red = await prisma.team.create({
  data: {
    name: "red",
    members: {
      create: [
        { email: "r1@x", score: 1.25, badge: BADGE, avatar: AVATAR, tasks: { create: [{ title: "a" }, { title: "b", estimate: 0.5 }] } },
        { email: "r2@x", score: null, badge: null, avatar: null },
      ],
    },
  },
});
const blue = await prisma.team.create({ data: { name: "blue", members: { create: [{ email: "b1@x", badge: -BADGE }] } } });

// A relation query (joins) and the values read back exactly.
const withMembers = await prisma.team.findUnique({
  where: { id: red.id },
  include: { members: { orderBy: { id: "asc" }, include: { tasks: { orderBy: { id: "asc" } } } } },
});
const [r1, r2] = withMembers!.members;
assert.equal(r1.badge, BADGE);
assert.deepEqual([...r1.avatar!], [...AVATAR]);
assert.equal(r1.score, 1.25);
assert.deepEqual([r2.score, r2.badge, r2.avatar], [null, null, null]);
assert.deepEqual(r1.tasks.map((t) => [t.title, t.done, t.estimate]), [["a", false, null], ["b", false, 0.5]]);
assert.equal((await prisma.member.findUnique({ where: { email: "b1@x" } }))!.badge, -BADGE);

// Update, aggregate, unique violation (P2002).
await prisma.task.updateMany({ where: { memberId: r1.id }, data: { done: true } });
assert.equal(await prisma.task.count({ where: { done: true } }), 2);
// Over a remote URL @libsql/client reports no numeric SQLite code (its hrana path leaves rawCode
// unset, against the libSQL server too), so the adapter cannot map it to P2002: it is P2039 with
// SQLite's message.
await assert.rejects(
  prisma.team.create({ data: { name: "red" } }),
  (e: any) => e.code === "P2039" && /UNIQUE constraint failed: Team.name/.test(e.message),
);

// Interactive transactions: one commits, one rolls back.
await prisma.$transaction(async (tx) => {
  const m = await tx.member.create({ data: { email: "b2@x", teamId: blue.id, score: 2.5 } });
  await tx.task.create({ data: { memberId: m.id, title: "c" } });
});
await assert.rejects(
  prisma.$transaction(async (tx) => {
    await tx.member.create({ data: { email: "never@x", teamId: blue.id } });
    throw new Error("roll back");
  }),
  /roll back/,
);
assert.equal(await prisma.member.count({ where: { email: "never@x" } }), 0);

// A batch transaction.
const [, , n] = await prisma.$transaction([
  prisma.task.create({ data: { memberId: r2.id, title: "d" } }),
  prisma.task.create({ data: { memberId: r2.id, title: "e", estimate: 3 } }),
  prisma.task.count(),
]);
assert.equal(n, 5);

// Delete cascades: the red team takes its members and their tasks with it.
await prisma.team.delete({ where: { id: red.id } });
const titles = (await prisma.task.findMany({ orderBy: { id: "asc" } })).map((t) => t.title);
assert.deepEqual(titles, ["c"]);
const raw = await prisma.$queryRaw<{ n: bigint }[]>`SELECT count(*) AS n FROM "Member"`;
assert.equal(Number(raw[0].n), 2);
await prisma.$disconnect();
console.log(JSON.stringify({ ok: true, tasks: titles, members: 2 }));
