// Version 2: posts.author_id's foreign key changes (ON DELETE CASCADE -> RESTRICT), which drizzle-kit
// applies by rebuilding posts (a new table, copy, DROP, RENAME) while comments reference it.
import { conformanceTables } from "./tables.ts";

export const { authors, posts, comments } = conformanceTables({
  onAuthorDelete: "restrict",
  titleRequired: true,
});
