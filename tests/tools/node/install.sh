#!/usr/bin/env bash
# Installs the pinned npm packages of the tool conformance tests (drizzle, kysely, Prisma, ...)
# into tests/tools/node/node_modules (idempotent). Install scripts are not needed: Prisma's
# engine download is unreachable offline and the query compiler needs no engine binary.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -f node_modules/.edgestore-installed ] || [ package-lock.json -nt node_modules/.edgestore-installed ]; then
    npm ci --no-audit --no-fund --ignore-scripts --silent >/dev/null
    touch node_modules/.edgestore-installed
fi
