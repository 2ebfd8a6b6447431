#!/usr/bin/env bash
# Installs the npm packages the JS client tests drive into tests/js/node_modules (idempotent).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules/@libsql/client ]; then
    npm install --no-audit --no-fund --silent >/dev/null
fi
