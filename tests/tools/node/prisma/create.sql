-- The tables of schema.prisma, as `prisma migrate diff --from-empty --to-schema schema.prisma
-- --script` writes them (Prisma's schema engine is a separate download, unreachable offline).
CREATE TABLE "Team" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "name" TEXT NOT NULL
);
CREATE TABLE "Member" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "teamId" INTEGER NOT NULL,
    "email" TEXT NOT NULL,
    "score" REAL,
    "badge" BIGINT,
    "avatar" BLOB,
    CONSTRAINT "Member_teamId_fkey" FOREIGN KEY ("teamId") REFERENCES "Team" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE TABLE "Task" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "memberId" INTEGER NOT NULL,
    "title" TEXT NOT NULL,
    "done" BOOLEAN NOT NULL DEFAULT false,
    "estimate" REAL,
    CONSTRAINT "Task_memberId_fkey" FOREIGN KEY ("memberId") REFERENCES "Member" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE UNIQUE INDEX "Team_name_key" ON "Team"("name");
CREATE INDEX "Member_teamId_idx" ON "Member"("teamId");
CREATE UNIQUE INDEX "Member_email_key" ON "Member"("email");
CREATE INDEX "Task_memberId_done_idx" ON "Task"("memberId", "done");
