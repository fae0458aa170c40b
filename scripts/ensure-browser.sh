#!/usr/bin/env bash
# The dashboard's browser tests drive Debian's Chromium headless through its chromedriver
# (Selenium); nothing is downloaded at test time. Install both if missing.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then exit 0; fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq || true
$SUDO apt-get install -y -qq chromium chromium-driver
