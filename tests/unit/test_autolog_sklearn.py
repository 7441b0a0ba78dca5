"""scikit-learn autolog, driven through a real IPython shell and checked on the store.

Decision tested here (see ``nbmlops.autolog.sklearn``): a metric computed in a *later* cell
on a model's predictions lands in the evaluating cell's own run (the fitting cell's run has
ended), tagged ``nbmlops.evaluates=<fitting run id>``; computed in the fitting cell itself,
it lands in the fitting run.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from typing import Any

import joblib
import numpy as np
import pytest
import sklearn.metrics
import sklearn.metrics._classification
import sklearn.model_selection
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import nbmlops
import nbmlops.data
from nbmlops import Run, RunStatus
from nbmlops.autolog import session as session_module
from nbmlops.autolog import sklearn as sklearn_autolog

PATCHED_OWN = [
    (LogisticRegression, "fit"),
    (LogisticRegression, "predict_proba"),
    (Pipeline, "predict"),  # an available_if descriptor
    (ColumnTransformer, "fit_transform"),
    (sklearn.metrics, "f1_score"),
    (sklearn.metrics._classification, "f1_score"),
    (sklearn.model_selection, "cross_val_score"),
]
INHERITED = [(StandardScaler, "fit_transform"), (GridSearchCV, "fit"), (GridSearchCV, "predict")]

IRIS = """
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
X, y = load_iris(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
"""
FIT = "model = LogisticRegression(C=0.5, max_iter=500).fit(X_train, y_train)"


@pytest.fixture
def shell() -> Iterator[Any]:
    """A real IPython shell with a notebook session, autolog on (experiment ``t``)."""
    from IPython.testing.globalipapp import get_ipython, start_ipython

    ip = start_ipython() or get_ipython()  # start_ipython() answers None after the first call
    assert ip is not None
    session_module.drop()
    session = session_module.get_or_create(ip)
    session.autolog_on(experiment="t")
    yield ip
    session_module.drop()


def session() -> Any:
    current = session_module.current()
    assert current is not None
    return current


def run_cell(ip: Any, code: str, ok: bool = True) -> Any:
    result = ip.run_cell(textwrap.dedent(code), store_history=True)
    if ok:
        assert result.success, result.error_in_exec or result.error_before_exec
    return result


def runs() -> list[Run]:
    found = nbmlops.search_runs(search_all_experiments=True, output_format="list")
    assert isinstance(found, list)
    return found


def cell_runs() -> list[Run]:
    """Cell runs in creation order."""
    cells = [r for r in runs() if r.data.tags.get(session_module.RUN_TYPE_TAG) == "cell"]
    return sorted(cells, key=lambda r: (r.info.start_time, r.info.run_name))


def only_cell_run() -> Run:
    cells = cell_runs()
    assert len(cells) == 1, [r.info.run_name for r in cells]
    return cells[0]


# --------------------------------------------------------------------------- training


def test_fit_cell_is_one_child_run_with_params_tags_metrics_and_inputs(shell: Any) -> None:
    run_cell(shell, IRIS)
    assert cell_runs() == []  # loading data is not ML work
    run_cell(shell, FIT)
    run = only_cell_run()
    assert run.info.parent_run_id == session().session_run.run_id
    assert run.info.status is RunStatus.FINISHED
    assert run.data.params["C"] == "0.5"
    assert run.data.params["max_iter"] == "500"
    assert run.data.tags["estimator_name"] == "LogisticRegression"
    assert run.data.tags["estimator_class"] == "sklearn.linear_model._logistic.LogisticRegression"

    ns = shell.user_ns
    model, x, y = ns["model"], ns["X_train"], ns["y_train"]
    pred = model.predict(x)
    metrics = run.data.metrics
    assert metrics["training_accuracy_score"] == pytest.approx(
        sklearn.metrics.accuracy_score(y, pred)
    )
    assert metrics["training_f1_score"] == pytest.approx(
        sklearn.metrics.f1_score(y, pred, average="weighted")
    )
    assert metrics["training_log_loss"] == pytest.approx(
        sklearn.metrics.log_loss(y, model.predict_proba(x))
    )
    assert metrics["training_score"] == pytest.approx(model.score(x, y))
    for key in ("training_precision_score", "training_recall_score", "training_roc_auc"):
        assert 0 < metrics[key] <= 1

    inputs = {(i.name, i.context): i for i in run.inputs}
    assert set(inputs) == {("X_train", "training"), ("y_train", "training")}
    assert inputs["X_train", "training"].digest == nbmlops.data.fingerprint(x).digest
    assert inputs["X_train", "training"].shape == x.shape


def test_binary_classifier_and_regressor_training_metrics(shell: Any) -> None:
    run_cell(
        shell,
        """
        from sklearn.datasets import make_classification, load_diabetes
        from sklearn.linear_model import LogisticRegression, Ridge
        Xb, yb = make_classification(n_samples=200, n_features=6, random_state=0)
        clf = LogisticRegression().fit(Xb, yb)
        """,
    )
    run_cell(shell, "Xr, yr = load_diabetes(return_X_y=True)\nreg = Ridge(alpha=0.3).fit(Xr, yr)")
    clf_run, reg_run = cell_runs()
    ns = shell.user_ns
    xb, yb, clf = ns["Xb"], ns["yb"], ns["clf"]
    assert clf_run.data.metrics["training_f1_score"] == pytest.approx(
        sklearn.metrics.f1_score(yb, clf.predict(xb))  # binary average for a 0/1 problem
    )
    assert clf_run.data.metrics["training_roc_auc"] == pytest.approx(
        sklearn.metrics.roc_auc_score(yb, clf.predict_proba(xb)[:, 1])
    )
    xr, yr, reg = ns["Xr"], ns["yr"], ns["reg"]
    mse = sklearn.metrics.mean_squared_error(yr, reg.predict(xr))
    metrics = reg_run.data.metrics
    assert metrics["training_mean_squared_error"] == pytest.approx(mse)
    assert metrics["training_root_mean_squared_error"] == pytest.approx(math.sqrt(mse))
    assert metrics["training_mean_absolute_error"] == pytest.approx(
        sklearn.metrics.mean_absolute_error(yr, reg.predict(xr))
    )
    assert metrics["training_r2_score"] == pytest.approx(reg.score(xr, yr))
    assert metrics["training_score"] == pytest.approx(reg.score(xr, yr))
    assert "training_accuracy_score" not in metrics
    assert reg_run.data.tags["estimator_name"] == "Ridge"


def test_pipeline_with_column_transformer_logs_once(shell: Any) -> None:
    run_cell(
        shell,
        """
        import numpy as np
        import pandas as pd
        from sklearn.compose import ColumnTransformer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler
        rng = np.random.default_rng(0)
        df = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200),
                           "color": rng.choice(["red", "blue", "green"], size=200)})
        target = (df["a"] + (df["color"] == "red") > 0.5).astype(int)
        prep = ColumnTransformer([("num", StandardScaler(), ["a", "b"]),
                                  ("cat", OneHotEncoder(), ["color"])])
        pipe = Pipeline([("prep", prep), ("clf", LogisticRegression(C=2.0))])
        """,
    )
    assert cell_runs() == []
    run_cell(shell, "pipe.fit(df, target)")
    run = only_cell_run()
    assert run.data.tags["estimator_name"] == "Pipeline"
    assert run.data.params["clf__C"] == "2.0"
    assert run.data.params["prep__num__with_mean"] == "True"
    assert run.data.metrics["training_accuracy_score"] == pytest.approx(
        shell.user_ns["pipe"].score(shell.user_ns["df"], shell.user_ns["target"])
    )
    inputs = {(i.name, i.context): i for i in run.inputs}
    assert inputs["df", "training"].shape == (200, 3)
    assert ("target", "training") in inputs
    # Only one run in the whole store besides the session run: no per-step runs.
    assert len(runs()) == 2


@pytest.mark.parametrize(
    ("grid", "children"),
    [("[1, 2, 3, 4, 5, 6]", 5), ("[1, 2]", 2)],
    ids=["six-candidates", "two-candidates"],
)
def test_grid_search_logs_best_results_and_top_candidates(
    shell: Any, grid: str, children: int
) -> None:
    run_cell(shell, IRIS)
    run_cell(
        shell,
        f"""
        from sklearn.model_selection import GridSearchCV
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.tree import DecisionTreeClassifier
        pipe = Pipeline([("scale", StandardScaler()),
                         ("tree", DecisionTreeClassifier(random_state=0))])
        gs = GridSearchCV(pipe, {{"tree__max_depth": {grid}}}, cv=3)
        gs.fit(X_train, y_train)
        """,
    )
    gs = shell.user_ns["gs"]
    run = only_cell_run()
    assert run.data.tags["estimator_name"] == "GridSearchCV"
    assert run.data.params["best_tree__max_depth"] == str(gs.best_params_["tree__max_depth"])
    assert run.data.metrics["best_cv_score"] == pytest.approx(gs.best_score_)
    assert "training_accuracy_score" in run.data.metrics

    kids = [r for r in runs() if r.info.parent_run_id == run.info.run_id]
    assert len(kids) == children
    assert len(runs()) == 2 + children  # session, search, candidates: no per-fit runs
    assert all(k.data.tags[session_module.RUN_TYPE_TAG] == "cv_candidate" for k in kids)
    assert all(k.info.status is RunStatus.FINISHED for k in kids)
    ranks = sorted(int(k.data.metrics["rank_test_score"]) for k in kids)
    assert ranks == sorted(int(r) for r in gs.cv_results_["rank_test_score"])[:children]
    best = min(kids, key=lambda k: k.data.metrics["rank_test_score"])
    assert best.data.metrics["mean_test_score"] == pytest.approx(gs.best_score_)
    assert "std_test_score" in best.data.metrics
    assert best.data.params["tree__random_state"] == "0"  # seed params + the candidate's
    (chosen,) = [k for k in kids if k.data.tags["nbmlops.cv.index"] == str(gs.best_index_)]
    assert chosen.data.params["tree__max_depth"] == str(gs.best_params_["tree__max_depth"])
    grid_values = {str(p["tree__max_depth"]) for p in gs.cv_results_["params"]}
    assert {k.data.params["tree__max_depth"] for k in kids} <= grid_values

    csv = nbmlops.get_client().read_artifact(run.info.run_id, "cv_results.csv").decode()
    assert csv.splitlines()[0].startswith("mean_fit_time")
    assert len(csv.strip().splitlines()) == 1 + len(gs.cv_results_["params"])


def test_several_fits_in_one_cell_share_its_run_without_param_conflicts(shell: Any) -> None:
    run_cell(shell, IRIS)
    run_cell(
        shell,
        """
        a = LogisticRegression(C=0.1, max_iter=500).fit(X_train, y_train)
        b = LogisticRegression(C=10.0, max_iter=500).fit(X_train, y_train)
        """,
    )
    run = only_cell_run()
    assert run.data.params["C"] == "0.1"  # params are immutable: the first fit's stay
    history = nbmlops.get_client().get_metric_history(run.info.run_id, "training_score")
    assert [m.step for m in history] == [0, 1]
    ns = shell.user_ns
    assert history[1].value == pytest.approx(ns["b"].score(ns["X_train"], ns["y_train"]))


def test_fit_inside_user_run_logs_there_and_cross_val_score_logs_nothing(shell: Any) -> None:
    run_cell(shell, IRIS)
    run_cell(
        shell,
        """
        import nbmlops
        with nbmlops.start_run(run_name="mine") as mine:
            LogisticRegression(max_iter=500).fit(X_train, y_train)
        """,
    )
    mine = next(r for r in runs() if r.info.run_name == "mine")
    assert mine.data.tags["estimator_name"] == "LogisticRegression"
    assert "training_score" in mine.data.metrics
    assert cell_runs() == []
    run_cell(
        shell,
        """
        from sklearn.model_selection import cross_val_score
        scores = cross_val_score(LogisticRegression(max_iter=500), X_train, y_train, cv=3)
        """,
    )
    assert len(shell.user_ns["scores"]) == 3
    assert cell_runs() == []


# --------------------------------------------------------------------------- evaluation


def test_metric_in_later_cell_goes_to_the_evaluating_cell_run(shell: Any) -> None:
    run_cell(shell, IRIS)
    run_cell(shell, FIT)
    fit_run = only_cell_run()
    run_cell(
        shell,
        """
        from sklearn.metrics import f1_score
        score = f1_score(y_test, model.predict(X_test), average="macro")
        """,
    )
    fit_run_after, eval_run = cell_runs()
    assert fit_run_after.info.run_id == fit_run.info.run_id
    assert "f1_score_X_test" not in fit_run_after.data.metrics
    assert eval_run.data.metrics["f1_score_X_test"] == pytest.approx(shell.user_ns["score"])
    assert eval_run.data.tags["nbmlops.evaluates"] == fit_run.info.run_id
    contexts = {(i.name, i.context) for i in eval_run.inputs}
    assert {("y_test", "evaluation"), ("X_test", "evaluation")} <= contexts

    # The same call again adds nothing; a different value adds a point at the next step.
    run_cell(shell, 'f1_score(y_test, model.predict(X_test), average="macro")')
    run_cell(
        shell,
        """
        preds = model.predict(X_test)
        f1_score(y_test, preds, average="macro")
        f1_score(y_test, preds, average="micro")
        model.score(X_test, y_test)
        """,
    )
    last = cell_runs()[-1]
    history = nbmlops.get_client().get_metric_history(last.info.run_id, "f1_score_X_test")
    assert [m.step for m in history] == [0, 1]
    ns = shell.user_ns
    assert last.data.metrics["LogisticRegression_score_X_test"] == pytest.approx(
        ns["model"].score(ns["X_test"], ns["y_test"])
    )


def test_metric_in_fitting_cell_goes_to_the_fitting_run_and_views_are_recognised(
    shell: Any,
) -> None:
    run_cell(
        shell,
        """
        from sklearn.datasets import make_classification
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import roc_auc_score
        X_all, y_all = make_classification(n_samples=200, n_features=5, random_state=1)
        X_tr, X_val, y_tr, y_val = X_all[:150], X_all[150:], y_all[:150], y_all[150:]
        clf = LogisticRegression().fit(X_tr, y_tr)
        auc = roc_auc_score(y_val, clf.predict_proba(X_val)[:, 1])
        """,
    )
    run = only_cell_run()
    assert run.data.metrics["roc_auc_score_X_val"] == pytest.approx(shell.user_ns["auc"])
    assert "nbmlops.evaluates" not in run.data.tags


def test_metric_on_unrelated_arrays_logs_nothing(shell: Any) -> None:
    run_cell(shell, IRIS)
    run_cell(shell, FIT)
    before = {r.info.run_id for r in runs()}
    run_cell(
        shell,
        """
        from sklearn.metrics import accuracy_score, classification_report, f1_score
        f1_score(y_test, y_test, average="macro")  # fits a LabelEncoder inside: not ML work
        accuracy_score(y_test, list(model.predict(X_test)))  # a copy, not the model's output
        report = classification_report(y_test, model.predict(X_test))  # sklearn's own calls
        """,
    )
    assert {r.info.run_id for r in runs()} == before


def test_fit_outside_a_cell_does_no_logging_work(shell: Any) -> None:
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(x, y)  # not inside run_cell: no target
    assert sklearn_autolog._tracked(model) is None
    assert sklearn.metrics.accuracy_score(y, model.predict(x)) > 0.9
    assert len(runs()) == 1  # the session run only


# --------------------------------------------------------------------------- model


def test_model_artifact_matches_its_meta_and_reloads(shell: Any) -> None:
    run_cell(shell, IRIS)
    run_cell(shell, FIT)
    run = only_cell_run()
    client = nbmlops.get_client()
    payload = client.read_artifact(run.info.run_id, "model/model.joblib")
    meta = json.loads(client.read_artifact(run.info.run_id, "model/meta.json"))
    assert meta["flavor"] == "sklearn" and meta["format"] == "joblib"
    assert meta["sha256"] == hashlib.sha256(payload).hexdigest()
    assert meta["class"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert meta["versions"]["sklearn"] == sklearn.__version__
    loaded = joblib.load(io.BytesIO(payload))
    x_test = shell.user_ns["X_test"]
    np.testing.assert_array_equal(loaded.predict(x_test), shell.user_ns["model"].predict(x_test))
    assert "nbmlops.model.skipped" not in run.data.tags


def test_model_over_the_cap_is_skipped_and_tagged(shell: Any) -> None:
    session().config.max_model_bytes = 100
    run_cell(shell, IRIS)
    run_cell(shell, FIT)
    run = only_cell_run()
    tag = run.data.tags["nbmlops.model.skipped"]
    size = len(joblib_bytes(shell.user_ns["model"]))
    assert tag == f"size {size} > cap 100"
    assert not nbmlops.get_client().list_artifacts(run.info.run_id, "model")


def test_log_models_off_stores_no_model(shell: Any) -> None:
    session().config.log_models = False
    run_cell(shell, IRIS)
    run_cell(shell, FIT)
    run = only_cell_run()
    assert not nbmlops.get_client().list_artifacts(run.info.run_id, "model")
    assert "training_score" in run.data.metrics


def joblib_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------- safety


def test_disable_restores_the_exact_originals(shell: Any) -> None:
    session().autolog_off()
    originals = {(owner, name): vars(owner)[name] for owner, name in PATCHED_OWN}
    assert all(name not in vars(cls) for cls, name in INHERITED)
    sklearn_autolog.enable()
    sklearn_autolog.enable()  # idempotent
    assert sklearn_autolog.is_enabled()
    for (owner, name), original in originals.items():
        assert vars(owner)[name] is not original, (owner, name)
    for cls, name in INHERITED:
        assert name in vars(cls), (cls, name)
    sklearn_autolog.disable()
    sklearn_autolog.disable()  # idempotent
    for (owner, name), original in originals.items():
        assert vars(owner)[name] is original, (owner, name)
    for cls, name in INHERITED:
        assert name not in vars(cls), (cls, name)  # inherited again, as before
    assert LogisticRegression.fit is originals[LogisticRegression, "fit"]
    assert sklearn.metrics.f1_score is sklearn.metrics._classification.f1_score
    assert not sklearn_autolog.is_enabled()


def test_user_exception_in_fit_propagates_unchanged_and_fails_the_run(shell: Any) -> None:
    run_cell(shell, IRIS)
    result = run_cell(
        shell,
        """
        bad = X_train.copy()
        bad[0, 0] = float("nan")
        try:
            LogisticRegression(C=3.0).fit(bad, y_train)
        except ValueError as exc:
            caught = exc
            raise
        """,
        ok=False,
    )
    error = result.error_in_exec
    assert error is shell.user_ns["caught"]
    assert type(error) is ValueError and "NaN" in str(error)
    assert error.__cause__ is None and error.__context__ is None
    tb = error.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    assert "sklearn" in tb.tb_frame.f_code.co_filename  # raised by sklearn, not re-raised by us
    run = only_cell_run()
    assert run.info.status is RunStatus.FAILED
    assert run.data.tags["nbmlops.error"].startswith("ValueError")
    assert run.data.params["C"] == "3.0"  # params are logged before the fit


def test_traceback_of_a_failing_fit_shows_no_nbmlops_frame(
    shell: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    run_cell(shell, IRIS)
    capsys.readouterr()
    run_cell(shell, "LogisticRegression(C=-1.0).fit(X_train, y_train)", ok=False)
    shown = capsys.readouterr()
    text = shown.out + shown.err
    assert "InvalidParameterError" in text
    assert "nbmlops" not in text


def test_internal_error_warns_once_and_the_cell_result_stands(
    shell: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("fingerprint exploded")

    monkeypatch.setattr(nbmlops.data, "fingerprint", broken)
    run_cell(shell, IRIS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_cell(shell, FIT + "\nmodel.predict(X_test[:1])[0]")
        run_cell(shell, "model2 = LogisticRegression(max_iter=500).fit(X_train, y_train)")
    assert result.result == shell.user_ns["model"].predict(shell.user_ns["X_test"][:1])[0]
    ours = [w for w in caught if "fingerprint exploded" in str(w.message)]
    assert len(ours) == 1 and issubclass(ours[0].category, RuntimeWarning)
    first, second = cell_runs()
    assert first.info.status is RunStatus.FINISHED
    assert "training_score" in first.data.metrics and "training_score" in second.data.metrics
    assert first.inputs == ()


def test_patched_methods_keep_signatures_and_availability(shell: Any) -> None:
    import inspect

    assert LogisticRegression.fit.__code__.co_filename == sklearn_autolog.__file__
    assert inspect.signature(LogisticRegression.fit) == inspect.signature(
        LogisticRegression.fit.__wrapped__
    )
    pipe = Pipeline([("scale", StandardScaler())])
    assert not hasattr(pipe, "predict")  # available_if still answers for the final step
    assert hasattr(Pipeline([("clf", LogisticRegression())]), "predict_proba")


def test_enable_before_sklearn_import_patches_on_import() -> None:
    code = """
    import sys
    from nbmlops.autolog import sklearn as sk
    sk.enable()
    assert "sklearn" not in sys.modules, "enable() must not import scikit-learn"
    from sklearn.linear_model import LogisticRegression
    assert LogisticRegression.fit.__code__.co_filename == sk.__file__, "patched on import"
    sk.disable()
    assert LogisticRegression.fit.__code__.co_filename != sk.__file__
    print("ok")
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
