#!/usr/bin/env bash
# Installs the JavaScript engines taskyard's schedules are checked against, from the npm
# registry, into target/node-peers: `croner` (Nitro's cron engine), `cron-parser` 4.9
# (egg-schedule's) and `ms` (egg-schedule's interval strings). Needs Node.js and npm.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/target/node-peers"
mkdir -p "$dir"
cat > "$dir/package.json" <<'JSON'
{
  "name": "taskyard-node-peers",
  "private": true,
  "dependencies": {
    "croner": "10.0.1",
    "cron-parser": "4.9.0",
    "ms": "2.1.3"
  }
}
JSON
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "setup-node-peers: installing Node.js and npm with apt-get" >&2
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -f "$dir/node_modules/.package-lock.json" ] || ! cmp -s "$dir/package.json" "$dir/.installed"; then
  (cd "$dir" && npm install --silent --no-audit --no-fund 2>&1 | grep -v 'Unknown user config' || true)
  cp "$dir/package.json" "$dir/.installed"
fi
node -e "require('$dir/node_modules/croner'); require('$dir/node_modules/cron-parser'); require('$dir/node_modules/ms')"
echo "setup-node-peers: croner, cron-parser and ms ready in $dir"
