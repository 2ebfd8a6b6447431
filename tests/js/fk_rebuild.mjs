// What drizzle-kit sends to rebuild a table, through @libsql/client:
// node fk_rebuild.mjs <url> [authToken]
// 1. client.migrate(stmts): PRAGMA foreign_keys=off; BEGIN; stmts; COMMIT; PRAGMA foreign_keys=on
//    in one Hrana batch (drizzle-kit's batchWithPragma), with drizzle's own PRAGMAs inside.
// 2. client.executeMultiple() of the same rebuild written out as one script (a sequence).
// 3. libSQL's ALTER TABLE ... ALTER COLUMN ... TO (drizzle-kit's turso dialect).
// Prints one JSON line with the counts seen; a failed check exits non-zero.
import assert from "node:assert/strict";
import { createClient } from "@libsql/client";

const url = process.argv[2];
const authToken = process.argv[3] || undefined;
const client = createClient({ url, authToken, intMode: "number" });
const report = { url };

function values(rs) {
  const row = rs.rows[0];
  return rs.columns.map((_, i) => row[i]);
}

async function count(sql) {
  const rs = await client.execute(sql);
  return Number(rs.rows[0][0]);
}

await client.executeMultiple(`
  DROP TABLE IF EXISTS posts;
  DROP TABLE IF EXISTS users;
  CREATE TABLE users (id integer PRIMARY KEY NOT NULL, name text NOT NULL);
  CREATE TABLE posts (
    id integer PRIMARY KEY NOT NULL,
    title text NOT NULL,
    user_id integer NOT NULL REFERENCES users(id) ON DELETE CASCADE
  );
  CREATE INDEX posts_user ON posts (user_id);
  INSERT INTO users VALUES (1, 'ann'), (2, 'bob'), (3, 'cy');
  INSERT INTO posts VALUES (1, 'a', 1), (2, 'b', 1), (3, 'c', 2), (4, 'd', 3);
`);
const checksum = "SELECT count(*), sum(id * 7 + user_id) FROM posts";
const before = values(await client.execute(checksum));

// 1. drizzle-kit push: rebuild the parent table `users` (a new column), via migrate().
await client.migrate([
  "PRAGMA foreign_keys=OFF;",
  "CREATE TABLE `__new_users` (`id` integer PRIMARY KEY NOT NULL, `name` text NOT NULL, `email` text);",
  "INSERT INTO `__new_users`(`id`, `name`) SELECT `id`, `name` FROM `users`;",
  "DROP TABLE `users`;",
  "ALTER TABLE `__new_users` RENAME TO `users`;",
  "PRAGMA foreign_keys=ON;",
  "CREATE INDEX `users_name` ON `users` (`name`);",
]);
report.afterMigrate = values(await client.execute(checksum));
assert.deepEqual(report.afterMigrate, before);

// 2. The same rebuild as one script, exactly as the rebuild batch reads.
await client.executeMultiple(
  "PRAGMA foreign_keys=off; BEGIN; " +
    "CREATE TABLE __new_users (id integer PRIMARY KEY NOT NULL, name text NOT NULL); " +
    "INSERT INTO __new_users SELECT id, name FROM users; " +
    "DROP TABLE users; " +
    "ALTER TABLE __new_users RENAME TO users; " +
    "CREATE INDEX users_name ON users (name); " +
    "COMMIT; PRAGMA foreign_keys=on",
);
report.afterScript = values(await client.execute(checksum));
assert.deepEqual(report.afterScript, before);
report.fkCheck = (await client.execute("PRAGMA foreign_key_check")).rows.length;

// Everybody else still has foreign keys on: a delete cascades, an orphan is refused.
report.foreignKeys = await count("PRAGMA foreign_keys");
await client.execute("DELETE FROM users WHERE id = 3");
report.afterCascade = await count("SELECT count(*) FROM posts");
await assert.rejects(client.execute("INSERT INTO posts VALUES (9, 'x', 999)"));

// 3. ALTER COLUMN: make title nullable, then give user_id a default, in a batch.
await client.execute("ALTER TABLE `posts` ALTER COLUMN `title` TO `title` text;");
await client.batch(
  [
    "ALTER TABLE posts ALTER COLUMN user_id TO user_id integer NOT NULL REFERENCES users(id) ON DELETE CASCADE DEFAULT 1",
    "INSERT INTO posts (id, title) VALUES (10, NULL)",
  ],
  "write",
);
report.altered = values(await client.execute("SELECT title, user_id FROM posts WHERE id = 10"));
report.finalCount = await count("SELECT count(*) FROM posts");
client.close();
console.log(JSON.stringify(report));
