#!/usr/bin/env bash
# Install everything socmon needs on Debian 12 (run as root): system packages via apt,
# a virtualenv at .venv in the repository root, and the project. Idempotent.
#   bash scripts/install.sh          runtime
#   bash scripts/install.sh --dev    runtime + test and lint tools
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"

# System packages, installed only when missing.
apt_pkgs=()
command -v tshark >/dev/null 2>&1 || apt_pkgs+=(tshark)
command -v logger >/dev/null 2>&1 || apt_pkgs+=(bsdutils)
# PDF reports (WeasyPrint): Pango and a font with Vietnamese glyphs.
for pkg in libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 libfontconfig1 \
  libglib2.0-0 fonts-dejavu-core; do
  dpkg -s "$pkg" >/dev/null 2>&1 || apt_pkgs+=("$pkg")
done
# Test tools: the suite also runs on PostgreSQL (scripts/test.sh starts a throwaway cluster).
if [ -n "$extras" ] && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  apt_pkgs+=(postgresql)
fi
PY=""
for cand in python3.11 python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    PY=$(command -v "$cand"); break
  fi
done
if [ -z "$PY" ]; then
  apt_pkgs+=(python3 python3-venv)
elif ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  apt_pkgs+=(python3-venv)
fi
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: need root to install: ${apt_pkgs[*]}" >&2; exit 1
  fi
  echo "install.sh: apt-get install ${apt_pkgs[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
fi
[ -n "$PY" ] || PY=$(command -v python3)

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"
echo "install.sh: ready ($(.venv/bin/socmon --version))" >&2
