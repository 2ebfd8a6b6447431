// drizzle-kit's configuration for the conformance test: what changes between runs comes from
// the environment the test sets (schema file, database URL, migrations folder).
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "turso",
  schema: process.env.DRIZZLE_SCHEMA!,
  out: process.env.DRIZZLE_OUT!,
  dbCredentials: { url: process.env.DRIZZLE_URL! },
});
