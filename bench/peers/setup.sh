#!/usr/bin/env bash
# Installs the benchmarks' JavaScript peers from the npm registry into
# target/bench-peers (nitropack, croner, graphile-worker, pg) and builds the Nitro app of bench/peers/nitro there as a
# production node-server. Needs Node.js and npm (installed with apt-get when missing).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="$root/target/bench-peers"
mkdir -p "$dir"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "bench/peers/setup.sh: installing Node.js and npm with apt-get" >&2
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
cp "$root/bench/peers/package.json" "$dir/package.json"
if [ ! -d "$dir/node_modules/nitropack" ] || [ ! -d "$dir/node_modules/croner" ] || [ ! -d "$dir/node_modules/graphile-worker" ] || ! cmp -s "$dir/package.json" "$dir/.installed"; then
  (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
  cp "$dir/package.json" "$dir/.installed"
fi
rm -rf "$dir/nitro"
cp -r "$root/bench/peers/nitro" "$dir/nitro"
(cd "$dir/nitro" && NODE_PATH="$dir/node_modules" "$dir/node_modules/.bin/nitropack" build >/dev/null)
test -f "$dir/nitro/.output/server/index.mjs"
echo "bench/peers/setup.sh: Nitro $(node -p "require('$dir/node_modules/nitropack/package.json').version") built in $dir/nitro/.output"
