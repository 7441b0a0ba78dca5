"""A populated store for the panel tests: a notebook-like run tree, a model with versions.

Every user-supplied string that a panel shows somewhere carries an HTML/JS payload in the
``hostile`` variant, so the escaping tests can look for it in each rendering.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time

import nbmlops
from nbmlops.entities import DatasetInput, Metric, Param, RunSource

#: A run name that would run script if a panel put it into HTML unescaped.
XSS_NAME = "<img src=x onerror=alert(1)>"
#: A param value that would close a <script> element and open another.
XSS_VALUE = "</script><script>alert(2)</script>"
#: Keys cannot contain "/", so the hostile key opens an element instead.
XSS_KEY = "<svg onload=alert(3)>"
#: Hostile code in a cell's source.
XSS_CODE = "print('</pre><script>alert(4)</script>')\n"
XSS_FILE = "<b onmouseover=alert(5)>.txt"
XSS_MODEL = "m<iframe srcdoc=x onload=alert(6)>"

# A 1x1 PNG (the smallest valid figure artifact).
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@dataclasses.dataclass
class Populated:
    """Ids of what :func:`populate` created."""

    experiment_id: str
    session: str
    cells: list[str]
    trials: list[str]
    failed: str
    model: str
    versions: list[int]


def _env(sklearn: str) -> str:
    return json.dumps(
        {
            "python": "3.11.7",
            "platform": "Linux",
            "packages": {"numpy": "2.1.0", "scikit-learn": sklearn, "pandas": "3.1.1"},
            "git": {"commit": "abc123", "dirty": False},
        }
    )


def populate(hostile: bool = False, experiment: str = "panels") -> Populated:
    """Fill the default store: session -> 3 cell runs (one with 3 trials) + 1 failed cell,
    params/metrics/tags/inputs/code/environment/figure, and a model with 3 versions."""
    from sklearn.dummy import DummyClassifier

    client = nbmlops.get_client()
    exp = client.get_or_create_experiment(experiment).experiment_id
    now = int(time.time() * 1000)
    session = client.create_run(
        exp, run_name="analysis", tags={"nbmlops.run_type": "session"}, start_time=now
    )
    sid = session.info.run_id
    cells, trials = [], []
    names = [XSS_NAME if hostile else "logreg", "forest", "boosting"]
    for i, name in enumerate(names):
        code = f"model = Model(depth={i + 2})\nmodel.fit(X_train, y_train)\n"
        if hostile:
            code += XSS_CODE
        run = client.create_run(
            exp,
            run_name=name,
            parent_run_id=sid,
            tags={
                "nbmlops.run_type": "cell",
                "team": (XSS_VALUE if hostile else "core") if i == 0 else "core",
            },
            start_time=now + 1000 * (i + 1),
            source=RunSource(
                path="/work/analysis.ipynb",
                cell_id=f"cell-{i}",
                execution_count=i + 3,
                code=code,
                code_sha256=f"{i:064d}",
            ),
        )
        rid = run.info.run_id
        params = [
            Param("model", name if not hostile else "rf"),
            Param("max_depth", str(i + 2)),
            Param("random_state", "0"),
            Param("n_jobs", "1"),
        ]
        if hostile:
            params.append(Param(XSS_KEY, XSS_VALUE))
        metrics = [Metric("f1", 0.70 + 0.05 * i, now, 0), Metric("accuracy", 0.80, now, 0)]
        metrics += [Metric("loss", 0.9 - 0.1 * i - 0.05 * s, now + s, s) for s in range(5)]
        client.log_batch(rid, metrics=metrics, params=params)
        client.log_inputs(
            rid,
            [
                DatasetInput(
                    name="X_train",
                    digest=("a" if i < 2 else "b") * 64,
                    context="training",
                    shape=(1800, 8 if i < 2 else 9),
                    schema={"tenure": "int64"},
                )
            ],
        )
        client.log_text(rid, _env("1.9.1" if i < 2 else "1.8.0"), "nbmlops/environment.json")
        client.log_bytes(rid, PNG, "figures/figure-1.png")
        if hostile:
            client.log_text(rid, "hello", XSS_FILE)
        model = DummyClassifier(strategy="most_frequent").fit([[0], [1]], [0, 1])
        nbmlops.log_model(model, run_id=rid, client=client)
        cells.append(rid)
        if i == 2:
            for t in range(3):
                trial = client.create_run(
                    exp,
                    run_name=f"trial-{t}",
                    parent_run_id=rid,
                    tags={"nbmlops.run_type": "trial"},
                    start_time=now + 5000 + t,
                )
                client.log_batch(
                    trial.info.run_id,
                    metrics=[Metric("f1", 0.6 + 0.01 * t, now, 0)],
                    params=[Param("lr", str(0.1 * (t + 1)))],
                )
                client.set_terminated(trial.info.run_id)
                trials.append(trial.info.run_id)
        client.set_terminated(rid)
    failed = client.create_run(
        exp,
        run_name="broken",
        parent_run_id=sid,
        tags={"nbmlops.run_type": "cell"},
        start_time=now + 9000,
    )
    client.set_terminated(failed.info.run_id, "FAILED")
    client.set_terminated(sid)
    model_name = XSS_MODEL if hostile else "churn"
    versions = []
    for rid in cells:
        description = XSS_VALUE if hostile else "a candidate"
        mv = client.register_model(f"runs:/{rid}/model", model_name, description=description)
        versions.append(mv.version)
    return Populated(exp, sid, cells, trials, failed.info.run_id, model_name, versions)
