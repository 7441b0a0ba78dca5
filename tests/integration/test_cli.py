"""The ``nbmlops`` console script, run for real in subprocesses against a populated store."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import nbmlops
from nbmlops.store import forget_stores
from nbmlops.store.sqlite import SCHEMA_VERSION

CLI = [sys.executable, "-m", "nbmlops.cli"]


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    columns: int = 300,
    command: list[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a fresh interpreter; stdout/stderr captured as text."""
    environment = dict(os.environ if env is None else env)
    environment["COLUMNS"] = str(columns)  # shutil.get_terminal_size reads it first
    return subprocess.run(
        [*(command or CLI), *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit 2, nothing on stdout, exactly one ``nbmlops: error:`` line on stderr, no traceback."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nbmlops: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def doctor_facts(stdout: str) -> dict[str, str]:
    """``label: value`` lines of ``nbmlops doctor`` as a dict."""
    return dict(
        (part.strip() for part in line.split(":", 1)) for line in stdout.splitlines() if ":" in line
    )


def table_rows(stdout: str) -> list[str]:
    """The body lines of a ``nbmlops runs`` table (no header, no footer)."""
    lines = stdout.splitlines()
    assert lines[0].startswith("run_id"), stdout
    return lines[1:-1]


@pytest.fixture
def store_db(_isolated_tracking: Path) -> Path:
    """The SQLite file NBMLOPS_TRACKING_URI points at (autouse fixture of tests/conftest.py)."""
    return _isolated_tracking / "nbmlops.db"


@pytest.fixture
def populated(store_db: Path) -> dict[str, str]:
    """Five runs in two experiments, written through the fluent API; name -> run id."""
    ids: dict[str, str] = {}
    nbmlops.set_experiment("exp-a")
    for name, alpha, rmse in (("ridge-1", 0.1, 0.40), ("ridge-2", 1.0, 0.25)):
        with nbmlops.start_run(run_name=name) as run:
            nbmlops.log_params({"model": "ridge", "alpha": alpha})
            nbmlops.log_metric("rmse", 0.9, step=0)
            nbmlops.log_metric("rmse", rmse, step=1)
            ids[name] = run.run_id
            if name == "ridge-2":
                with nbmlops.start_run(run_name="fold-0", nested=True) as child:
                    nbmlops.log_metric("rmse", 0.2)
                    ids["fold-0"] = child.run_id
    with pytest.raises(RuntimeError), nbmlops.start_run(run_name="broken") as run:
        ids["broken"] = run.run_id
        nbmlops.log_param("model", "lasso")
        raise RuntimeError("diverged")
    nbmlops.set_experiment("exp-b")
    with nbmlops.start_run(run_name="other") as run:
        nbmlops.log_param("note", "x" * 100)
        ids["other"] = run.run_id
    nbmlops.flush()
    return ids


# --------------------------------------------------------------------------- runs


def test_runs_table_lists_every_run_with_short_ids(populated: dict[str, str]) -> None:
    result = run_cli("runs")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    header = out.splitlines()[0].split()
    for column in ("run_id", "name", "status", "start", "duration", "parent"):
        assert column in header
    for column in ("metrics.rmse", "params.alpha", "params.model", "params.note"):
        assert column in header
    rows = table_rows(out)
    assert len(rows) == 5
    assert out.splitlines()[-1].startswith("5 runs")
    by_name = {row.split()[1]: row for row in rows}
    assert set(by_name) == {"ridge-1", "ridge-2", "fold-0", "broken", "other"}
    for name, run_id in populated.items():
        assert by_name[name].split()[0] == run_id[:8]
        assert run_id not in out  # ids are shortened
    assert "FAILED" in by_name["broken"].split()
    assert "FINISHED" in by_name["ridge-1"].split()
    # The child names its parent by short id; the latest metric value is shown.
    assert populated["ridge-2"][:8] in by_name["fold-0"].split()
    assert "0.25" in by_name["ridge-2"].split()
    assert "0.4" in by_name["ridge-1"].split()
    # Two experiments in the listing: an experiment column says which.
    assert "exp-b" in by_name["other"].split()
    # A long param value is shortened with an ellipsis, not printed whole.
    assert "x" * 100 not in out
    shortened = [t for t in by_name["other"].split() if t.startswith("xxxx")]
    assert len(shortened) == 1
    assert shortened[0].endswith("…")


def test_runs_filter_and_order_by(populated: dict[str, str]) -> None:
    result = run_cli("runs", "--filter", "metrics.rmse < 0.3", "--order-by", "metrics.rmse ASC")
    assert result.returncode == 0, result.stderr
    names = [row.split()[1] for row in table_rows(result.stdout)]
    assert names == ["fold-0", "ridge-2"]

    result = run_cli("runs", "--filter", "params.model = 'ridge' and params.alpha > 0.5")
    assert result.returncode == 0, result.stderr
    assert [row.split()[1] for row in table_rows(result.stdout)] == ["ridge-2"]

    result = run_cli("runs", "--filter", "status = 'FAILED'")
    assert [row.split()[1] for row in table_rows(result.stdout)] == ["broken"]

    result = run_cli("runs", "--filter", "metrics.rmse > 100")
    assert result.returncode == 0
    assert result.stdout.startswith("no runs matching the filter")


def test_runs_experiment_and_max_results(populated: dict[str, str]) -> None:
    result = run_cli("runs", "--experiment", "exp-b")
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    assert [row.split()[0] for row in rows] == [populated["other"][:8]]
    assert "experiment" not in result.stdout.splitlines()[0].split()  # one experiment only

    result = run_cli("runs", "--experiment", "exp-a", "--max-results", "2")
    assert result.returncode == 0, result.stderr
    assert len(table_rows(result.stdout)) == 2
    assert "more match" in result.stdout.splitlines()[-1]

    assert_one_line_error(run_cli("runs", "--experiment", "nope"), "'nope'", "exp-a")
    assert_one_line_error(run_cli("runs", "--max-results", "0"), "--max-results")


def test_runs_wide_table_fits_the_terminal(populated: dict[str, str]) -> None:
    result = run_cli("runs", columns=90)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert all(len(line) <= 90 for line in lines[:-1]), lines
    assert "hidden (--all-columns)" in lines[-1]

    wide = run_cli("runs", "--all-columns", columns=90)
    assert wide.returncode == 0, wide.stderr
    assert "x" * 100 in wide.stdout  # nothing shortened
    assert "tags.nbmlops.error" in wide.stdout.splitlines()[0]  # tags shown too


def test_bad_filter_is_one_line_exit_2(populated: dict[str, str]) -> None:
    result = run_cli("runs", "--filter", "metrics.rmse <<< 1")
    assert_one_line_error(result, "invalid filter")
    result = run_cli("runs", "--order-by", "metrics.rmse SIDEWAYS")
    assert_one_line_error(result)


def test_usage_errors_are_one_line_exit_2(store_db: Path) -> None:
    assert_one_line_error(run_cli("runs", "--bogus"), "--bogus")
    assert_one_line_error(run_cli(), "COMMAND")
    assert_one_line_error(run_cli("frobnicate"), "frobnicate")
    assert_one_line_error(run_cli("runs", "--max-results", "many"), "many")
    assert_one_line_error(run_cli("runs", "--tracking-uri", "ftp://nowhere"), "ftp://nowhere")


def test_runs_without_a_store_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "nbmlops.db"
    assert_one_line_error(run_cli("runs", "--tracking-uri", f"sqlite:///{missing}"), str(missing))
    assert not missing.parent.exists()


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"nbmlops {nbmlops.__version__}"


def test_installed_entry_point(populated: dict[str, str]) -> None:
    script = Path(sys.executable).parent / "nbmlops"
    assert script.is_file(), f"console script missing next to {sys.executable}"
    result = run_cli("runs", "--experiment", "exp-a", command=[str(script)])
    assert result.returncode == 0, result.stderr
    assert {row.split()[0] for row in table_rows(result.stdout)} == {
        populated[name][:8] for name in ("ridge-1", "ridge-2", "fold-0", "broken")
    }
    version = run_cli("--version", command=[str(script)])
    assert version.stdout.strip() == f"nbmlops {nbmlops.__version__}"
    assert_one_line_error(run_cli("runs", "--filter", "((", command=[str(script)]))


# --------------------------------------------------------------------------- doctor


def test_doctor_reports_a_healthy_store(populated: dict[str, str], store_db: Path) -> None:
    result = run_cli("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    facts = doctor_facts(result.stdout)
    assert facts["tracking URI"] == f"sqlite:///{store_db}"
    assert facts["store file"].startswith(str(store_db))
    assert facts["artifact root"] == str(store_db.parent / "artifacts")
    assert facts["schema version"] == str(SCHEMA_VERSION)
    assert facts["journal mode"] == "wal"
    assert facts["integrity check"] == "ok"
    assert "experiments 2" in facts["rows"]
    assert "runs 5" in facts["rows"]
    assert "params 6" in facts["rows"]
    assert "metrics 5" in facts["rows"]
    assert facts["runs by status"] == "FAILED 1, FINISHED 4"
    assert result.stdout.splitlines()[-1] == "ok"


def test_doctor_uses_the_walk_up_rule_and_creates_nothing(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "notebooks" / "deep").mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "NBMLOPS_TRACKING_URI"}

    result = run_cli("doctor", cwd=project / "notebooks" / "deep", env=env)
    expected = project / "notebooks" / "deep" / ".nbmlops" / "nbmlops.db"
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert f"no nbmlops store at {expected}" in result.stdout
    assert not any(p.name == ".nbmlops" for p in tmp_path.rglob("*"))  # nothing created

    # A store in an ancestor folder is found from below.
    store_file = project / ".nbmlops" / "nbmlops.db"
    nbmlops.set_tracking_uri(f"sqlite:///{store_file}")
    with nbmlops.start_run(run_name="found-me"):
        nbmlops.log_metric("m", 1.0)
    result = run_cli("doctor", cwd=project / "notebooks" / "deep", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    facts = doctor_facts(result.stdout)
    assert facts["store file"].startswith(f"{store_file} (")
    assert "runs 1" in facts["rows"]
    listing = run_cli("runs", cwd=project / "notebooks", env=env)
    assert listing.returncode == 0, listing.stderr
    assert "found-me" in listing.stdout


def test_doctor_on_a_damaged_store_leaves_it_untouched(tmp_path: Path) -> None:
    folder = tmp_path / "damaged"
    folder.mkdir()
    db = folder / "nbmlops.db"
    junk = os.urandom(16_384)
    db.write_bytes(junk)
    before = sorted(p.name for p in folder.iterdir())

    result = run_cli("doctor", "--tracking-uri", f"sqlite:///{db}")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    problem = [line for line in result.stdout.splitlines() if line.startswith("problem:")]
    assert len(problem) == 1, result.stdout
    assert str(db) in problem[0]
    assert "not a usable nbmlops store" in problem[0]
    assert db.read_bytes() == junk
    assert sorted(p.name for p in folder.iterdir()) == before

    # `runs` on the same file: one line, exit 2, still untouched.
    assert_one_line_error(run_cli("runs", "--tracking-uri", str(db)), str(db))
    assert db.read_bytes() == junk


def test_doctor_exits_1_when_the_integrity_check_fails(
    populated: dict[str, str], store_db: Path
) -> None:
    forget_stores()  # this process lets go of the file before it is tampered with
    conn = sqlite3.connect(store_db, isolation_level=None)
    try:
        # Make an index disagree with its table: a readable file that fails integrity_check.
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute(
            "UPDATE sqlite_master SET sql = 'CREATE INDEX runs_by_parent ON runs (name)' "
            "WHERE name = 'runs_by_parent'"
        )
        conn.execute("PRAGMA writable_schema = OFF")
    finally:
        conn.close()
    result = run_cli("doctor")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    facts = doctor_facts(result.stdout)
    assert "missing from index runs_by_parent" in facts["integrity check"]
    assert "runs 5" in facts["rows"]  # the rest of the report is still there
    assert result.stdout.splitlines()[-1].startswith("problem: the integrity check failed")


def test_doctor_on_a_missing_file_and_an_empty_file(tmp_path: Path) -> None:
    missing = tmp_path / "none" / "nbmlops.db"
    result = run_cli("doctor", "--tracking-uri", str(missing))
    assert result.returncode == 1
    assert str(missing) in result.stdout
    assert not missing.parent.exists()

    empty = tmp_path / "empty.db"
    empty.touch()
    result = run_cli("doctor", "--tracking-uri", str(empty))
    assert result.returncode == 1
    assert f"no nbmlops store at {empty} (the file is empty" in result.stdout
    assert empty.stat().st_size == 0


def test_doctor_memory_store() -> None:
    result = run_cli("doctor", "--tracking-uri", "memory:")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tracking URI:" in result.stdout
    assert "memory:" in result.stdout
    assert "runs 0" in result.stdout
