// The tables `edgestore migrate` makes from tests/tools/test_migrated_db.py's Postgres source,
// as an app adopting drizzle would declare them, plus one new table (notes).
import { integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

export const authors = sqliteTable("authors", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  name: text("name").notNull(),
});

// id is numbered by a trigger from sqlite_edgestore_sequences (a serial that is not the rowid).
export const events = sqliteTable(
  "events",
  {
    day: text("day").notNull(),
    id: integer("id"),
    note: text("note"),
  },
  (t) => [primaryKey({ columns: [t.day, t.id] })],
);

export const notes = sqliteTable("notes", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  body: text("body").notNull(),
});
