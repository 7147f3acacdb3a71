#!/usr/bin/env bash
# `npm start`: installs what is missing, then brings the whole system up locally on embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/local/ensure-deps.sh
export PATH="$PWD/node_modules/.bin:$PATH"
# The Worker serves the pages from .build/web: build them before wrangler starts.
node web/build.ts
exec node deploy/local/start.ts "$@"
