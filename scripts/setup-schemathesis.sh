#!/usr/bin/env bash
# Installs schemathesis (PyPI) into target/schemathesis, a virtual environment of its own,
# for the test that fuzzes the task API from its OpenAPI document
# (crates/taskyard/tests/openapi_fuzz.rs). Needs Python 3 with venv.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/target/schemathesis"
version="4.32.5"
if ! python3 -m venv --help >/dev/null 2>&1; then
  echo "setup-schemathesis: installing python3-venv with apt-get" >&2
  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
fi
# A virtual environment names its own path in its scripts: one moved with its checkout
# (or its `target/`) no longer runs, and is made again.
if ! "$dir/bin/st" --version >/dev/null 2>&1 || [ "$(cat "$dir/.installed" 2>/dev/null)" != "$version" ]; then
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
  echo "$version" > "$dir/.installed"
fi
"$dir/bin/st" --version
echo "setup-schemathesis: $dir/bin/st ready"
