#!/usr/bin/env bash
# Install everything, then run the whole stack on this machine (embedded store, SQLite).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/socmon up "$@"
