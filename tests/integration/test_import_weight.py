"""``import nbmlops`` stays light: heavy libraries load only in the parts that use them."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pandas", "sklearn", "matplotlib", "ipywidgets", "optuna", "mlflow")

_PROBE = f"""
import json, sys, time
start = time.perf_counter()
import nbmlops
elapsed = time.perf_counter() - start
heavy = sorted({{name.split(".")[0] for name in sys.modules}} & set({HEAVY!r}))
print(json.dumps({{"seconds": elapsed, "heavy": heavy}}))
"""


def test_import_nbmlops_loads_no_heavy_library() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["heavy"] == [], f"import nbmlops pulled in {report['heavy']}"
    # Informational only (timing depends on the machine): see it with `pytest -s`.
    print(f"import nbmlops took {report['seconds'] * 1000:.0f} ms in a fresh interpreter")
