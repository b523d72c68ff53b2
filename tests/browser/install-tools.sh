#!/usr/bin/env bash
# What the browser tests need beyond the venv, from the package registries only (never a browser download):
# Debian's chromium when /usr/bin/chromium is missing (apt-get, as root: CI runs as root on a fresh machine),
# and axe-core from the npm registry, pinned by package-lock.json (npm ci). `make browser-tools` runs this.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-tools: /usr/bin/chromium is missing; install it as root: apt-get install chromium" >&2
    exit 1
  fi
  echo "install-tools: installing Debian's chromium (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # DejaVu for the screenshots: the same glyphs on every machine. No recommends: no desktop services.
  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi

if [ ! -f "$here/node_modules/axe-core/axe.min.js" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  echo "install-tools: installing axe-core (npm ci)"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
