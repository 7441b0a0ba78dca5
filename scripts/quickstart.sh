#!/usr/bin/env bash
# The one quickstart command: make a virtualenv, install nbmlops with JupyterLab (the sidebar
# panel and the server extension come with it), run every notebook of notebooks/ headless
# into the embedded default store (./.nbmlops next to this checkout) and print what they made.
#   bash scripts/quickstart.sh
# Building from the checkout compiles the JupyterLab extension: Node.js >= 20 must be on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${NBMLOPS_VENV:-.venv}
python=${PYTHON:-python3}
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[jupyter,sklearn,plots,tuning]'

# The kernels must find the same environment: put the venv first on PATH.
export PATH="$PWD/$venv/bin:$PATH"
nbmlops demo
echo
nbmlops doctor
echo
echo "== JupyterLab with the MLOps panel"
echo "   $venv/bin/jupyter lab notebooks/"
echo "   open a notebook (e.g. 01-quickstart.ipynb), then the MLOps tab in the left sidebar:"
echo "   its runs, run details, comparisons, the model registry and Export."
