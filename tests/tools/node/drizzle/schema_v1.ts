// Version 1 of the drizzle conformance schema (tables.ts): deleting an author deletes its posts.
import { conformanceTables } from "./tables.ts";

export const { authors, posts, comments } = conformanceTables({
  onAuthorDelete: "cascade",
  titleRequired: true,
});
