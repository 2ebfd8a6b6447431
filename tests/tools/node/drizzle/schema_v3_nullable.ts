// Version 3: posts.title becomes nullable, which drizzle-kit's turso dialect applies with libSQL's
// ALTER TABLE ... ALTER COLUMN ... TO ...
import { conformanceTables } from "./tables.ts";

export const { authors, posts, comments } = conformanceTables({
  onAuthorDelete: "restrict",
  titleRequired: false,
});
