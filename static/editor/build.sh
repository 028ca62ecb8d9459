#!/usr/bin/env bash
# Rebuild static/js/editor.bundle.js and copy static/js/htmx.min.js.
# Needs Node 20+ and npm (registry access for `npm ci`).
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
npm run build
