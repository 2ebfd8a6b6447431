// Prisma 7 reads its configuration here; generate needs no database and no engine download.
import { defineConfig } from "prisma/config";

export default defineConfig({
  schema: "schema.prisma",
});
