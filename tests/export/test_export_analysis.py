"""The def/use analysis: cell roles from tags or inferred, parameters, the model, the slice
(dead code and display cells dropped, with reasons), notebook functions reading globals,
row-wise feature extraction, metric names as autolog gives them."""

from __future__ import annotations

from pathlib import Path

import pytest
from export_helpers import fixture

from nbmlops.export.analysis import Analysis, analyze
from nbmlops.export.reader import NotebookSource, SourceCell, read_notebook

DATA = (
    "from sklearn.datasets import load_iris\n"
    "from sklearn.model_selection import train_test_split\n"
    "X, y = load_iris(return_X_y=True, as_frame=True)\n"
    "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)"
)
FIT = (
    "from sklearn.tree import DecisionTreeClassifier\n"
    "tree = DecisionTreeClassifier(max_depth=DEPTH, random_state=0)\n"
    "tree.fit(X_train, y_train)"
)


def _source(*cells: str, tags: dict[int, list[str]] | None = None) -> NotebookSource:
    tags = tags or {}
    return NotebookSource(
        path=Path("/nb/demo.ipynb"),
        name="demo",
        cells=tuple(
            SourceCell(number=i + 1, cell_id=f"c{i}", source=code, tags=tuple(tags.get(i, ())))
            for i, code in enumerate(cells)
        ),
    )


def _roles(analysis: Analysis) -> list[str]:
    return [c.role for c in analysis.cells]


def _stage_text(analysis: Analysis, stage: str) -> str:
    return "".join(s.text for s in analysis.kept(stage))


def test_untagged_roles_dead_code_and_display_are_inferred() -> None:
    analysis = analyze(
        _source(
            "DEPTH = 3",
            DATA,
            "X_train.head()",
            "import matplotlib.pyplot as plt\nplt.hist(y_train)",
            "unused = X_train.mean()",
            FIT,
            "from sklearn.metrics import f1_score\nf1_score(y_test, tree.predict(X_test), average='macro')",
            "tree.predict(X_test[:3])",
        )
    )
    assert _roles(analysis) == [
        "parameters",
        "features",
        "display",
        "display",
        "dead",
        "train",
        "evaluate",
        "infer",
    ]
    reasons = [c.reason for c in analysis.cells]
    assert "display-only" in reasons[2]
    assert "display-only (plot)" in reasons[3]
    assert "dead code: defines unused" in reasons[4]
    assert "infer.py serves predictions" in reasons[7]
    assert analysis.model == "tree"
    assert (analysis.x_train, analysis.y_train, analysis.holdout) == (
        "X_train",
        "y_train",
        "X_test",
    )
    assert [s.key for s in analysis.metric_sites] == ["f1_score_X_test"]


def test_tags_decide_roles_and_infer_skip_cells_are_not_exported() -> None:
    analysis = analyze(
        _source(
            "DEPTH = 2\nNAMES = ['a', 'b']\nlimit = DEPTH * 2",
            DATA,
            FIT,
            "score = tree.score(X_test, y_test)",
            "tree.predict(X_test)",
            "raise RuntimeError('never run')",
            tags={
                0: ["parameters"],
                1: ["mlops:features"],
                2: ["mlops:train"],
                3: ["mlops:evaluate"],
                4: ["mlops:infer"],
                5: ["mlops:skip"],
            },
        )
    )
    assert _roles(analysis) == ["parameters", "features", "train", "evaluate", "infer", "skip"]
    assert [c.role_source for c in analysis.cells] == ["tag"] * 6
    assert [(p.name, p.type, p.default) for p in analysis.params] == [
        ("DEPTH", "int", 2),
        ("NAMES", "list", ["a", "b"]),
    ]
    assert any("limit" in w and "not a literal" in w for c in analysis.cells for w in c.warnings)
    (site,) = analysis.metric_sites
    assert (site.score_of, site.key) == ("tree", "_score_X_test")
    assert "raise" not in "".join(s.text for s in analysis.statements)


def test_untagged_parameters_are_scalar_literals_bound_once() -> None:
    analysis = analyze(
        _source(
            "DEPTH = 3\nPATH = 'data/train.csv'\nSHOWN = 5\nCOLUMNS = ['a']\ncounter = 0",
            "counter += 1",
            DATA,
            FIT + "\nprint(PATH, COLUMNS, counter)",
        )
    )
    assert [p.name for p in analysis.params] == [
        "DEPTH"
    ]  # SHOWN unused, PATH/COLUMNS/counter not params


def test_model_choice_last_supervised_fit_tag_and_override() -> None:
    cells = (
        DATA,
        "from sklearn.preprocessing import StandardScaler\nscaler = StandardScaler().fit(X_train)",
        "from sklearn.linear_model import LogisticRegression\nlogreg = LogisticRegression(max_iter=500)\nlogreg.fit(X_train, y_train)",
        "DEPTH = 2\n" + FIT,
    )
    assert analyze(_source(*cells)).model == "tree"
    assert analyze(_source(*cells, tags={2: ["mlops:train"]})).model == "logreg"
    chosen = analyze(_source(*cells), model="logreg")
    assert chosen.model == "logreg"
    assert chosen.model_candidates == ["logreg", "tree"]
    assert "tree" not in _stage_text(chosen, "train")


def test_functions_reading_globals_get_them_as_parameters() -> None:
    analysis = analyze(
        _source(
            "DEPTH = 3\nSEED = 0",
            DATA,
            "def make_tree():\n    return DecisionTreeClassifier(max_depth=DEPTH, random_state=SEED)\n\n"
            "def accuracy(model):\n    return (model.predict(X_test) == y_test).mean()\n\n"
            "def build():\n    return make_tree()\n\n"
            "def never_used():\n    return X_train",
            "from sklearn.tree import DecisionTreeClassifier\nmodel = build()\nmodel.fit(X_train, y_train)",
            "import nbmlops\nnbmlops.log_metric('accuracy', accuracy(model))",
        )
    )
    functions = analysis.functions
    assert functions["make_tree"].globals == ["DEPTH", "SEED"]
    assert functions["accuracy"].globals == ["X_test", "y_test"]
    assert functions["build"].globals == ["DEPTH", "SEED"]  # through make_tree
    assert {f.name for f in analysis.used_functions} == {"make_tree", "accuracy", "build"}
    assert "never_used is never used" in functions["never_used"].statement.reason


def test_row_wise_new_columns_become_build_features() -> None:
    analysis = analyze(
        _source(
            "import pandas as pd\nfrom sklearn.linear_model import Ridge\n"
            "frame = pd.DataFrame({'a': [1.0, 2, 3, 4], 'b': [2.0, 1, 4, 3], 'target': [1.0, 2, 3, 5]})",
            "frame['ratio'] = frame['a'] / frame['b']\nframe['centered'] = frame['a'] - frame['a'].mean()",
            "X = frame.drop(columns='target')\ny = frame['target']\nmodel = Ridge().fit(X, y)",
        )
    )
    features = [analysis.statements[i].text.strip() for i in analysis.features_statements]
    assert analysis.features_frame == "frame"
    assert features == ["frame['ratio'] = frame['a'] / frame['b']"]
    assert any("dataset-level statistic" in w for w in analysis.warnings)


def test_out_of_order_history_is_followed() -> None:
    cells = read_notebook(fixture("out_of_order")).cells
    in_file_order = analyze(NotebookSource(None, "o", cells))
    executed = NotebookSource(None, "o", (cells[0], cells[1], cells[3], cells[2]), origin="run")
    as_run = analyze(executed)
    assert "DEPTH = 1" in _stage_text(in_file_order, "train")
    assert "DEPTH = 6" in _stage_text(as_run, "train")
    assert "DEPTH = 1" not in _stage_text(as_run, "train")


@pytest.mark.parametrize(
    "name", ["tagged_churn", "untagged_regression", "globals_magics", "unseeded", "out_of_order"]
)
def test_fixture_analyses_leave_no_name_undefined(name: str) -> None:
    analysis = analyze(read_notebook(fixture(name)))
    assert not [w for w in analysis.warnings if "defined nowhere" in w]


def test_unseeded_randomness_is_warned_about() -> None:
    warnings = analyze(read_notebook(fixture("unseeded"))).warnings
    assert any("train_test_split(...) has no random_state" in w for w in warnings)
    assert any("RandomForestClassifier(...) has no random_state" in w for w in warnings)
    seeded = analyze(read_notebook(fixture("untagged_regression"))).warnings
    assert not any("random_state" in w for w in seeded)


def test_magic_only_cells_and_syntax_errors_are_dropped_with_reasons() -> None:
    analysis = analyze(
        _source("%load_ext nbmlops\n%mlops autolog on", "x = (", DATA, "DEPTH = 1\n" + FIT)
    )
    assert analysis.cells[0].reason == "IPython magics or shell commands only"
    assert analysis.cells[1].reason.startswith("not valid Python (line 1")
