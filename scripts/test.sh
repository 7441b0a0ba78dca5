#!/usr/bin/env bash
# The one test command: make a virtualenv, install nbmlops with its test extras, then run
# the linter, the whole test suite and the living-documentation notebooks.
#   bash scripts/test.sh [extra pytest args]
# NBMLOPS_VENV chooses the virtualenv folder (default: .venv in the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${NBMLOPS_VENV:-.venv}
python=${PYTHON:-python3}
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
# The editable install also builds the JupyterLab extension (labextension/ -> nbmlops/labextension,
# with jlpm from the build requirements; Node.js >= 20 must be on PATH).
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[test]'

echo "== ruff"
"$venv/bin/ruff" check .

echo "== labextension: type-check, eslint, unit tests (vitest)"
venv_bin=$(cd "$venv/bin" && pwd)
(cd labextension && PATH="$venv_bin:$PATH" jlpm install && PATH="$venv_bin:$PATH" jlpm check)

# Notebooks and any code that falls back to the default store write into a throwaway store.
store_dir=$(mktemp -d)
trap 'rm -rf "$store_dir"' EXIT
export NBMLOPS_TRACKING_URI="sqlite:///$store_dir/nbmlops.db"
export MPLBACKEND=Agg

echo "== pytest (tests + notebooks)"
# pytest exits 5 when it collected no test: with `set -e` that fails the run, as it should.
"$venv/bin/python" -m pytest --nbval-lax tests notebooks "$@"
