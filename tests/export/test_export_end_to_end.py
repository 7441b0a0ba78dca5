"""End to end: export + ``--verify`` on each fixture notebook (the notebook executed with
nbclient when the store has no run of it), the package's own smoke test in a subprocess,
out-of-order execution rebuilt with ``--from-run``, the CLI's exit status on a mismatch and
``%mlops export`` from a live notebook session.

Each fixture is exported and verified once per module (the slow part: a kernel and two
fresh interpreters); the tests then check different facts of that one result.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from export_helpers import REPO, clean_env, fixture, run_python

import nbmlops
from nbmlops.cli import main as cli_main
from nbmlops.export import export_notebook
from nbmlops.export.reader import read_notebook
from nbmlops.export.report import ExportReport
from nbmlops.export.verify import find_source_run

EXPECTED = {
    "tagged_churn": True,
    "untagged_regression": True,
    "globals_magics": True,
    "unseeded": False,
}


@dataclasses.dataclass
class Outcome:
    """One fixture exported and verified by ``nbmlops export --verify`` (a subprocess)."""

    status: int
    output: str
    report: dict[str, Any]
    smoke: subprocess.CompletedProcess[str] | None = None

    @property
    def verification(self) -> dict[str, Any]:
        return self.report["verification"]


def _popen(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="module")
def verified(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Every fixture exported and verified through the CLI, then its smoke test run — the
    fixtures in parallel subprocesses, each one exactly as a user would run it."""
    root = tmp_path_factory.mktemp("verified")
    env = clean_env(NBMLOPS_TRACKING_URI=f"sqlite:///{root / 'no-runs-yet' / 'nbmlops.db'}")
    exports = {
        name: _popen(
            [
                "-m",
                "nbmlops.cli",
                "export",
                str(fixture(name)),
                "--out",
                str(root / name),
                "--verify",
            ],
            REPO,
            env,
        )
        for name in EXPECTED
    }
    outcomes = {}
    for name, process in exports.items():
        output, _ = process.communicate(timeout=600)
        report_file = root / name / "export-report.json"
        report = json.loads(report_file.read_text()) if report_file.is_file() else {}
        outcomes[name] = Outcome(process.returncode, output, report)
    smokes = {
        name: _popen(
            ["-m", "pytest", "-q", "-p", "no:cacheprovider", f"{o.report['package']}/tests"],
            root / name,
            clean_env(),
        )
        for name, o in outcomes.items()
        if o.report
    }
    for name, process in smokes.items():
        output, _ = process.communicate(timeout=600)
        outcomes[name].smoke = subprocess.CompletedProcess(
            process.args, process.returncode, output, ""
        )
    return outcomes


def _smoke(report: ExportReport) -> Any:
    return run_python(
        ["-m", "pytest", "-q", "-p", "no:cacheprovider", f"{report.package}/tests"],
        cwd=report.out_dir,
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_verify_gives_the_expected_verdict(name: str, verified: dict[str, Outcome]) -> None:
    outcome = verified[name]
    result = outcome.verification
    assert result is not None, outcome.output[-3000:]
    assert result["error"] is None, result["error"]
    assert result["notebook_executed"]  # the store had no run: the notebook was executed
    assert result["ok"] is EXPECTED[name], outcome.output[-3000:]
    assert outcome.status == (0 if EXPECTED[name] else 1)  # the CLI fails on a mismatch
    rows = result["rows"]
    metrics = [r for r in rows if r["kind"] == "metric"]
    assert metrics and any(r["name"].startswith("training_") for r in metrics)
    assert any(r["kind"] == "predictions" for r in rows)
    assert "metric" in outcome.output and "notebook" in outcome.output  # the printed table
    if EXPECTED[name]:
        assert all(r["ok"] for r in rows)
        assert all(r["delta"] == 0 for r in metrics)  # deterministic pipelines: exact
        assert result["verdict"].startswith("VERIFIED")
    else:
        assert [r for r in metrics if r["ok"] is False]
        assert result["verdict"].startswith("MISMATCH")
        assert "MISMATCH" in outcome.output


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_package_smoke_test_passes(name: str, verified: dict[str, Outcome]) -> None:
    smoke = verified[name].smoke
    assert smoke is not None
    assert smoke.returncode == 0, smoke.stdout[-3000:]
    assert "2 passed" in smoke.stdout


def test_evaluation_metrics_are_compared_by_their_autolog_names(
    verified: dict[str, Outcome],
) -> None:
    names = {r["name"] for r in verified["tagged_churn"].verification["rows"]}
    assert {"f1_score_X_test", "roc_auc_score_X_test", "X_train", "y_train"} <= names
    globals_rows = {r["name"] for r in verified["globals_magics"].verification["rows"]}
    assert {"accuracy_score_X_test", "holdout_accuracy"} <= globals_rows


def test_unseeded_failure_is_reported_not_hidden(verified: dict[str, Outcome]) -> None:
    outcome = verified["unseeded"]
    assert outcome.report["verification"]["ok"] is False
    assert any("no random_state" in w for w in outcome.report["warnings"])
    assert "MISMATCH: " in outcome.output and "no random_state" in outcome.output


def test_out_of_order_execution_is_rebuilt_from_the_run(
    notebook_shell: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notebook_path = tmp_path / "analysis.ipynb"  # the notebook the ipshell fixture runs as
    notebook_path.write_bytes(fixture("out_of_order").read_bytes())
    cells = read_notebook(notebook_path).cells
    notebook_shell.run_cell("%mlops autolog on", store_history=True)
    for index in (0, 1, 3, 2):  # DEPTH = 6 runs before the fit, although it comes after it
        result = notebook_shell.run_cell(
            cells[index].source, store_history=True, cell_id=cells[index].cell_id
        )
        assert result.error_in_exec is None
    notebook_shell.run_line_magic("mlops", "autolog off")
    uri = nbmlops.get_tracking_uri()
    client = nbmlops.get_client()
    run = find_source_run(client, notebook_path, cells[2].code_sha256)
    assert run is not None

    rebuilt = export_notebook(
        None, tmp_path / "from-run", from_run=run.info.run_id, verify=True, tracking_uri=uri
    )
    assert rebuilt.origin == "run"
    assert rebuilt.verification is not None and rebuilt.verification.ok, str(rebuilt.verification)
    assert not rebuilt.verification.notebook_executed
    train_code = (rebuilt.out_dir / rebuilt.package / "train.py").read_text()
    assert "DEPTH = 6" in train_code and "DEPTH = 1" not in train_code
    assert client.get_run(run.info.run_id).data.tags["nbmlops.export.verified"] == "true"
    recorded = json.loads(client.read_artifact(run.info.run_id, "nbmlops/export/verification.json"))
    assert recorded["verification"]["ok"] is True
    smoke = _smoke(rebuilt)
    assert smoke.returncode == 0, smoke.stdout[-3000:] + smoke.stderr[-3000:]

    # The notebook read top to bottom trains with DEPTH = 1: verified against the same run,
    # the CLI reports the mismatch and exits with status 1.
    code = cli_main(
        [
            "export",
            str(notebook_path),
            "--out",
            str(tmp_path / "top-to-bottom"),
            "--verify",
            "--run",
            run.info.run_id,
            "--tracking-uri",
            uri,
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "MISMATCH" in out and "training_accuracy_score" in out
    assert client.get_run(run.info.run_id).data.tags["nbmlops.export.verified"] == "false"


def test_mlops_export_magic_verifies_against_the_session_runs(
    notebook_shell: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notebook_path = tmp_path / "analysis.ipynb"
    notebook_path.write_bytes(fixture("tagged_churn").read_bytes())
    for cell in read_notebook(notebook_path).cells:
        if "mlops:skip" in cell.tags:
            continue
        result = notebook_shell.run_cell(cell.source, store_history=True, cell_id=cell.cell_id)
        assert result.error_in_exec is None
    capsys.readouterr()
    out = tmp_path / "magic-export"
    notebook_shell.run_line_magic("mlops", f"export --out {out} --verify")
    printed = capsys.readouterr().out
    assert "VERIFIED" in printed, printed
    assert "executed" not in printed  # compared with this session's own run
    assert (out / "analysis" / "train.py").is_file()
    with pytest.raises(Exception, match="already exists"):
        notebook_shell.run_line_magic("mlops", f"export --out {out}")
