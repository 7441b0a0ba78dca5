#!/usr/bin/env bash
# The one quickstart command: make a virtualenv, install nbmlops, log a small tree of nested
# runs into the embedded default store (./.nbmlops next to this checkout) and print them.
#   bash scripts/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${NBMLOPS_VENV:-.venv}
python=${PYTHON:-python3}
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e .

"$venv/bin/python" examples/quickstart.py
echo
echo "== nbmlops runs (the same store, from the command line)"
"$venv/bin/nbmlops" runs --experiment quickstart
echo
"$venv/bin/nbmlops" doctor
