"""The generated package: it compiles, passes ruff's syntax/undefined-name checks, imports
cleanly (inference without training code), has typed parameters that refuse unknown and
ill-typed values, pinned requirements and a README; user code keeps its comments."""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from export_helpers import REPO, fixture, ruff_syntax, run_python, write_notebook

from nbmlops.export import export_notebook
from nbmlops.export.report import ExportReport

NOTEBOOKS = {
    "tagged_churn": fixture("tagged_churn"),
    "untagged_regression": fixture("untagged_regression"),
    "globals_magics": fixture("globals_magics"),
    "unseeded": fixture("unseeded"),
    "out_of_order": fixture("out_of_order"),
    "nb_01_quickstart": REPO / "notebooks" / "01-quickstart.ipynb",
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ExportReport]:
    root = tmp_path_factory.mktemp("codegen")
    return {name: export_notebook(path, root / name) for name, path in NOTEBOOKS.items()}


def _load_params(report: ExportReport) -> ModuleType:
    path = report.out_dir / report.package / "params.py"
    spec = importlib.util.spec_from_file_location(f"_params_{report.package}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve string annotations through it
    spec.loader.exec_module(module)
    return module


def test_layout_and_files(exported: dict[str, ExportReport]) -> None:
    report = exported["tagged_churn"]
    package = report.package
    assert sorted(report.files) == sorted(
        [
            f"{package}/__init__.py",
            f"{package}/__main__.py",
            f"{package}/params.py",
            f"{package}/features.py",
            f"{package}/train.py",
            f"{package}/infer.py",
            f"{package}/tests/__init__.py",
            f"{package}/tests/test_pipeline.py",
            "requirements.txt",
            "README.md",
            "export-report.json",
        ]
    )
    saved = json.loads((report.out_dir / "export-report.json").read_text())
    assert saved["model_variable"] == "model"
    assert [c["role"] for c in saved["cells"]][:2] == ["magic", "parameters"]


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_generated_code_compiles_and_passes_ruff(
    name: str, exported: dict[str, ExportReport]
) -> None:
    report = exported[name]
    for file in sorted((report.out_dir / report.package).rglob("*.py")):
        compile(file.read_text(), str(file), "exec")
    checked = ruff_syntax(report.out_dir)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_package_imports_cleanly_and_infer_needs_no_training_code(
    exported: dict[str, ExportReport],
) -> None:
    packages = {r.package: str(r.out_dir) for r in exported.values()}
    script = (
        "import sys, json\n"
        f"sys.path[:0] = {list(packages.values())!r}\n"
        "result = {}\n"
        f"for name in {sorted(packages)!r}:\n"
        "    __import__(name + '.infer')\n"
        "    result[name] = name + '.train' in sys.modules\n"
        "    __import__(name + '.train')\n"
        "print(json.dumps(result))\n"
    )
    done = run_python(["-c", script], cwd=REPO)
    assert done.returncode == 0, done.stderr
    loaded_train = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded_train == dict.fromkeys(packages, False)


def test_parameters_are_typed_with_the_notebook_defaults(exported: dict[str, ExportReport]) -> None:
    params = _load_params(exported["tagged_churn"])
    defaults = params.Params()
    assert (defaults.N_CUSTOMERS, defaults.TEST_SIZE, defaults.SEED, defaults.C) == (
        500,
        0.25,
        7,
        0.5,
    )
    assert defaults.CONTRACTS == ["month", "year", "two-year"]
    assert params.TYPES == {
        "N_CUSTOMERS": "int",
        "TEST_SIZE": "float",
        "SEED": "int",
        "C": "float",
        "CONTRACTS": "list",
    }
    changed = params.make_params(texts=["SEED=3", "C=2", 'CONTRACTS=["a", "b"]'])
    assert (changed.SEED, changed.C, changed.CONTRACTS) == (3, 2.0, ["a", "b"])
    assert isinstance(changed.C, float)


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (
            ["nope=1"],
            "unknown parameter 'nope' (parameters: C, CONTRACTS, N_CUSTOMERS, SEED, TEST_SIZE)",
        ),
        (["SEED=abc"], "parameter 'SEED' expects int, got 'abc'"),
        (["SEED=1.5"], "parameter 'SEED' expects int, got '1.5'"),
        (["C=high"], "parameter 'C' expects float, got 'high'"),
        (["CONTRACTS=notjson"], "parameter 'CONTRACTS' expects list, got 'notjson'"),
        (["CONTRACTS=3"], "parameter 'CONTRACTS' expects list, got int 3"),
        (["SEED"], "--param expects KEY=VALUE, got 'SEED'"),
    ],
)
def test_unknown_and_ill_typed_parameters_are_refused(
    texts: list[str], message: str, exported: dict[str, ExportReport]
) -> None:
    params = _load_params(exported["tagged_churn"])
    with pytest.raises(params.ParamError) as error:
        params.make_params(texts=texts)
    assert str(error.value) == message


def test_params_files_json_and_yaml(exported: dict[str, ExportReport], tmp_path: Path) -> None:
    params = _load_params(exported["tagged_churn"])
    good_json = tmp_path / "p.json"
    good_json.write_text(json.dumps({"SEED": 11, "TEST_SIZE": 0.3}))
    assert params.make_params(params.read_params_file(good_json)).SEED == 11
    good_yaml = tmp_path / "p.yaml"
    good_yaml.write_text("C: 3\nCONTRACTS: [x]\n")
    loaded = params.make_params(params.read_params_file(good_yaml))
    assert (loaded.C, loaded.CONTRACTS) == (3.0, ["x"])
    for content, suffix, message in [
        ({"SEED": "3"}, ".json", "parameter 'SEED' expects int, got str '3'"),
        ({"SEED": True}, ".json", "parameter 'SEED' expects int, got bool True"),
        ({"extra": 1}, ".json", "unknown parameter 'extra'"),
        ([1, 2], ".json", "expected a mapping"),
    ]:
        path = tmp_path / f"bad{suffix}"
        path.write_text(json.dumps(content))
        with pytest.raises(params.ParamError, match=message):
            params.make_params(params.read_params_file(path))
    toml = tmp_path / "p.toml"
    toml.write_text("SEED = 1\n")
    with pytest.raises(params.ParamError, match=r"must be \.json, \.yaml or \.yml"):
        params.read_params_file(toml)


def test_train_cli_refuses_bad_parameters_with_status_2(
    exported: dict[str, ExportReport], tmp_path: Path
) -> None:
    report = exported["untagged_regression"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"ALPHA": "strong"}))
    for args, message in [
        (["--param", "ALPHA=strong"], "parameter 'ALPHA' expects float, got 'strong'"),
        (["--params-file", str(bad)], "parameter 'ALPHA' expects float, got str 'strong'"),
        (["--param", "BETA=1"], "unknown parameter 'BETA' (parameters: ALPHA, SEED, TEST_SIZE)"),
    ]:
        done = run_python(["-m", f"{report.package}.train", *args], cwd=report.out_dir)
        assert done.returncode == 2
        assert message in done.stderr


def test_requirements_pin_what_the_code_imports(exported: dict[str, ExportReport]) -> None:
    from importlib.metadata import version

    lines = (exported["tagged_churn"].out_dir / "requirements.txt").read_text().splitlines()
    pinned = [line for line in lines if line and not line.startswith("#")]
    assert f"scikit-learn=={version('scikit-learn')}" in pinned
    assert f"pandas=={version('pandas')}" in pinned
    assert f"numpy=={version('numpy')}" in pinned
    assert f"nbmlops=={version('nbmlops')}" in pinned
    assert not any(line.lower().startswith(("matplotlib", "pytest")) for line in pinned)
    assert any("deploy dependency" in line for line in lines)
    regression = (exported["untagged_regression"].out_dir / "requirements.txt").read_text()
    assert "matplotlib" not in regression  # its plots were dropped, so it is not imported


def test_user_code_keeps_comments_and_functions_take_globals(
    exported: dict[str, ExportReport],
) -> None:
    report = exported["globals_magics"]
    features = (report.out_dir / report.package / "features.py").read_text()
    train = (report.out_dir / report.package / "train.py").read_text()
    assert "def with_ratio(frame, *, COLUMN):" in features
    assert "def make_model(*, DEPTH, N_TREES, SEED):" in features
    assert "def holdout_accuracy(model, *, X_test, y_test):" in features
    assert "    # reads the notebook's X_test and y_test" in features
    assert "X = with_ratio(X, COLUMN=COLUMN)" in features
    assert "make_model(DEPTH=DEPTH, N_TREES=N_TREES, SEED=SEED)" in train
    assert "holdout_accuracy(forest, X_test=X_test, y_test=y_test)" in train
    assert "# nbmlops: %time forest.fit(X_train, y_train)  (timing dropped)" in train
    assert "os.environ['OMP_NUM_THREADS'] = '1'" in features
    assert "get_ipython" not in features + train


def test_metrics_are_recorded_under_autolog_names(exported: dict[str, ExportReport]) -> None:
    report = exported["untagged_regression"]
    train = (report.out_dir / report.package / "train.py").read_text()
    tree = ast.parse(train)
    keys = {
        node.args[1].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "_metric"
        and isinstance(node.args[1], ast.Constant)
    }
    assert keys == {"mean_absolute_error_X_test", "r2_score_X_test"}
    assert "'mean_absolute_error_X_test'" in train  # inside an f-string: the other quote


def test_build_features_holds_the_row_wise_feature(exported: dict[str, ExportReport]) -> None:
    report = exported["tagged_churn"]
    features = (report.out_dir / report.package / "features.py").read_text()
    body = features.split("def build_features", 1)[1]
    assert 'customers["charge_per_call"] = customers.monthly / (customers.calls + 1)' in body
    assert "customers = build_features(customers, params)" in features


def test_readme_documents_running_in_each_environment(exported: dict[str, ExportReport]) -> None:
    report = exported["tagged_churn"]
    readme = (report.out_dir / "README.md").read_text()
    assert f"python -m {report.package}.train" in readme
    assert f"python -m {report.package}.infer --input batch.csv" in readme
    assert "| `SEED` | int | `7` | cell 3 |" in readme
    assert "NBMLOPS_TRACKING_URI" in readme


def test_function_passed_as_a_value_gets_its_globals_through_partial(tmp_path: Path) -> None:
    cells = [
        "import pandas as pd\nfrom sklearn.linear_model import LinearRegression",
        "FACTOR = 3",
        "def scaled(row):\n    return row['a'] * FACTOR",
        "class Clip:\n    def __call__(self, value):\n        return min(value, LIMIT)",
        "LIMIT = 10\nframe = pd.DataFrame({'a': [1.0, 2, 3, 4], 'y': [2.0, 4, 7, 8]})\n"
        "frame['b'] = frame.apply(scaled, axis=1)\nclip = Clip()",
        "model = LinearRegression().fit(frame[['a', 'b']], frame['y'].map(clip))",
    ]
    notebook = write_notebook(tmp_path / "partial.ipynb", cells)
    report = export_notebook(notebook, tmp_path / "out")
    features = (report.out_dir / report.package / "features.py").read_text()
    assert "import functools" in features
    assert "frame.apply(functools.partial(scaled, FACTOR=FACTOR), axis=1)" in features
    assert any("class Clip reads notebook variables LIMIT" in w for w in report.warnings)
    checked = ruff_syntax(report.out_dir)
    # The class cannot take LIMIT as a parameter: ruff names the one undefined name.
    assert "F821 Undefined name `LIMIT`" in checked.stdout
    assert checked.stdout.count("F821") == 1
