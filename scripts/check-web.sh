#!/usr/bin/env bash
# Rebuilds the dashboard (web/src) into a temp dir and fails if it differs
# from the committed web/dist: the bundle the Go binary embeds must be the
# build of the sources next to it. The build is deterministic (content-hashed
# names, no timestamps), so any difference means web/dist is stale.
set -euo pipefail
cd "$(dirname "$0")/../web"
command -v npm >/dev/null 2>&1 || { echo "check-web: npm is needed (apt-get install -y npm)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm install --no-audit --no-fund --loglevel=error
fi
npx --no-install tsc --noEmit
npx --no-install vite build --logLevel error --outDir "$out" --emptyOutDir
if ! diff -r "$out" dist >/dev/null; then
  echo "check-web: web/dist is not the build of web/src; run \`make web\` and commit web/dist" >&2
  diff -r "$out" dist | head -20 >&2 || true
  exit 1
fi
echo "check-web: web/dist is up to date" >&2
