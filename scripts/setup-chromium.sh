#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver (packages `chromium`, `chromium-driver`) with
# apt-get if they are missing, for the dashboard's browser tests
# (crates/taskyard/tests/dashboard_browser.rs), which start chromedriver themselves.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "setup-chromium: installing chromium and chromium-driver with apt-get" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi
chromium --version
chromedriver --version
echo "setup-chromium: $(command -v chromium) and $(command -v chromedriver) ready"
