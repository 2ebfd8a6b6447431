#!/bin/sh
# Stands in for Prisma's schema-engine binary, a separate download that is unreachable here.
# The CLI checks that the binary exists at start-up; `prisma generate` never runs it, while
# `prisma migrate` and `prisma db push` do and fail with this message.
echo "prisma schema-engine is not installed (it is downloaded separately, not from npm)" >&2
exit 1
