#!/usr/bin/env bash
# Set up and run the whole test suite on a fresh machine: a virtual environment with requirements-test.txt,
# Debian's chromium for the browser tests (installed with apt-get when missing), then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements-test.txt 2>&1 | grep -v "is ignored: it is neither" || true
.venv/bin/python -c "import streamlit, torch, playwright" # fail here, clearly, if the install did not work
if ! command -v chromium >/dev/null; then
    SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
fi
exec .venv/bin/python -m pytest "$@"
