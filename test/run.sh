#!/usr/bin/env bash
# `npm test`: installs what is missing, then runs every test.
#   1. typecheck (Node side and edge)
#   2. edge tests inside workerd (@cloudflare/vitest-plugin)
#   3. Node-side tests: shared, media node, bridges, cross-part tests with real wrangler dev / nats-server
#   4. FFmpeg-heavy tests, one file at a time
# The pages are built first (node web/build.ts): the Worker serves them, and browser tests load them.
# Every phase runs even if an earlier one failed; the exit code is non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
bash deploy/local/ensure-deps.sh || exit 1
export PATH="$PWD/node_modules/.bin:$PATH"
export CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_SEND_METRICS=false
node -e 'const [maj,min]=process.versions.node.split(".").map(Number); if (maj<22||(maj===22&&min<12)) { console.error("Node >= 22.12 needed, got "+process.version); process.exit(1) }' || exit 1

results=.test-results
rm -rf "$results" && mkdir -p "$results/screenshots"
node web/build.ts || exit 1
status=0
phase() { echo; echo "=== $1"; }

phase "typecheck"
tsc --noEmit -p tsconfig.json || status=1
tsc --noEmit -p edge/tsconfig.json || status=1

phase "edge (inside workerd)"
vitest run --config edge/vitest.config.ts --reporter=default --reporter=json --outputFile="$PWD/$results/edge.json" || status=1

phase "node side (shared, media node, bridges, cross-part)"
vitest run --config vitest.node.config.ts --reporter=default --reporter=json --outputFile="$results/node.json" || status=1

phase "ffmpeg-heavy, one at a time"
vitest run --config vitest.ffmpeg.config.ts --passWithNoTests --reporter=default --reporter=json --outputFile="$results/ffmpeg.json" || status=1

echo
node test/summary.ts "$results" || status=1
exit $status
