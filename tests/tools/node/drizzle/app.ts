// A drizzle-orm program against edgestore: usage `tsx app.ts <url>`; prints one JSON line.
// Queries, joins, updates, deletes, a committed and a rolled-back transaction and a batch,
// with 64-bit integers, blobs, NULLs and floats read back exactly.
import assert from "node:assert/strict";
import { createClient } from "@libsql/client";
import { asc, eq, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/libsql";
import { authors, comments, posts } from "./schema_v1.ts";

const url = process.argv[2];
// intMode "bigint": integers beyond 2^53 arrive exactly (the default "number" mode refuses them).
const client = createClient({ url, intMode: "bigint" });
const db = drizzle(client);

const BIG = 2n ** 62n + 3n;
const VIEWS = 2n ** 63n - 1n;
const COVER = Buffer.from([0, 1, 2, 254, 255]);

const made = await db
  .insert(authors)
  .values([
    { email: "ada@example.com", name: "Ada" },
    { email: "bob@example.com", name: "Bob", karma: 5 },
    { email: "cy@example.com", name: "Cy" },
  ])
  .returning({ id: authors.id });
assert.equal(made.length, 3);
const [ada, bob, cy] = made.map((r) => r.id);

await db.insert(posts).values([
  { authorId: ada, title: "first", big: BIG, views: VIEWS, score: 0.1 + 0.2, cover: COVER },
  { authorId: ada, title: "second", big: null, score: null, cover: null },
  { authorId: bob, title: "third", big: -BIG, score: -1.5e300 },
  { authorId: cy, title: "doomed" },
]);
const allPosts = await db.select().from(posts).orderBy(asc(posts.id));
const [p1, p2, p3, p4] = allPosts.map((p) => p.id);
await db.insert(comments).values([
  { postId: p1, body: "nice", rating: 4.5 },
  { postId: p1, body: "meh", rating: null },
  { postId: p2, body: "ok", rating: 3 },
  { postId: p3, body: "wow", rating: 5 },
  { postId: p4, body: "gone soon", rating: 1 },
]);

// Values read back exactly.
const first = allPosts[0];
assert.equal(first.big, BIG);
assert.equal(first.views, VIEWS);
assert.equal(first.score, 0.1 + 0.2);
assert.deepEqual(Buffer.from(first.cover!), COVER);
assert.equal(allPosts[1].big, null);
assert.equal(allPosts[1].cover, null);
assert.equal(allPosts[2].big, -BIG);
assert.equal(allPosts[2].score, -1.5e300);

// A join with an aggregate.
const joined = await db
  .select({ author: authors.name, title: posts.title, n: sql<number>`count(${comments.id})` })
  .from(posts)
  .innerJoin(authors, eq(posts.authorId, authors.id))
  .leftJoin(comments, eq(comments.postId, posts.id))
  .groupBy(posts.id)
  .orderBy(asc(posts.id));
assert.deepEqual(
  joined.map((r) => [r.author, r.title, Number(r.n)]),
  [
    ["Ada", "first", 2],
    ["Ada", "second", 1],
    ["Bob", "third", 1],
    ["Cy", "doomed", 1],
  ],
);

// Update with RETURNING; delete (the author cascades to its post and that post's comment).
const bumped = await db
  .update(authors)
  .set({ karma: sql`${authors.karma} + 10` })
  .where(eq(authors.id, bob))
  .returning({ karma: authors.karma });
assert.equal(Number(bumped[0].karma), 15);
await client.execute("PRAGMA foreign_keys"); // readable by anyone
await db.delete(authors).where(eq(authors.id, cy));

// A committed transaction and a rolled-back one.
await db.transaction(async (tx) => {
  await tx.insert(comments).values({ postId: p2, body: "in tx", rating: 2.25 });
  await tx.update(posts).set({ score: 9.75 }).where(eq(posts.id, p2));
});
await assert.rejects(
  db.transaction(async (tx) => {
    await tx.insert(comments).values({ postId: p2, body: "never", rating: 0 });
    tx.rollback();
  }),
);

// A batch (one implicit transaction).
const [, , batched] = await db.batch([
  db.insert(comments).values({ postId: p3, body: "batched 1" }),
  db.insert(comments).values({ postId: p3, body: "batched 2" }),
  db.select({ n: sql<number>`count(*)` }).from(comments),
]);

const bodies = (await db.select({ body: comments.body }).from(comments).orderBy(asc(comments.id))).map(
  (r) => r.body,
);
assert.deepEqual(bodies, ["nice", "meh", "ok", "wow", "in tx", "batched 1", "batched 2"]);
assert.equal(Number(batched[0].n), 7);
const p2row = await db.select().from(posts).where(eq(posts.id, p2));
assert.equal(p2row[0].score, 9.75);
assert.equal((await db.select().from(posts)).length, 3);

client.close();
console.log(JSON.stringify({ ok: true, authors: 2, posts: 3, comments: bodies.length }));
