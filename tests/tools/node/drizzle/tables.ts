// The drizzle conformance schema: three tables with foreign keys and indexes. The test pushes it
// in three versions one after another (schema_v1.ts, schema_v2_fk.ts, schema_v3_nullable.ts);
// each version file states only what it changes, so the versions cannot drift apart elsewhere.
import { sql } from "drizzle-orm";
import {
  blob,
  customType,
  index,
  integer,
  real,
  sqliteTable,
  text,
  uniqueIndex,
} from "drizzle-orm/sqlite-core";

// A 64-bit INTEGER column read as a JavaScript bigint (the client runs with intMode "bigint").
const bigInteger = customType<{ data: bigint; driverData: bigint }>({
  dataType: () => "integer",
  fromDriver: (value) => BigInt(value),
});

export interface Version {
  /** What deleting an author does to its posts (posts.author_id's foreign key). */
  onAuthorDelete: "cascade" | "restrict";
  /** Whether posts.title is NOT NULL. */
  titleRequired: boolean;
}

export function conformanceTables({ onAuthorDelete, titleRequired }: Version) {
  const authors = sqliteTable(
    "authors",
    {
      id: integer("id").primaryKey({ autoIncrement: true }),
      email: text("email").notNull(),
      name: text("name").notNull(),
      karma: integer("karma", { mode: "number" }).notNull().default(0),
    },
    (t) => [uniqueIndex("authors_email").on(t.email)],
  );

  const posts = sqliteTable(
    "posts",
    {
      id: integer("id").primaryKey({ autoIncrement: true }),
      authorId: integer("author_id")
        .notNull()
        .references(() => authors.id, { onDelete: onAuthorDelete }),
      title: titleRequired ? text("title").notNull() : text("title"),
      views: blob("views", { mode: "bigint" }),
      big: bigInteger("big"),
      score: real("score"),
      cover: blob("cover", { mode: "buffer" }),
      createdAt: text("created_at").notNull().default(sql`(CURRENT_TIMESTAMP)`),
    },
    (t) => [index("posts_author").on(t.authorId)],
  );

  const comments = sqliteTable(
    "comments",
    {
      id: integer("id").primaryKey({ autoIncrement: true }),
      postId: integer("post_id").notNull().references(() => posts.id, { onDelete: "cascade" }),
      body: text("body").notNull(),
      rating: real("rating"),
    },
    (t) => [index("comments_post").on(t.postId)],
  );

  return { authors, posts, comments };
}
