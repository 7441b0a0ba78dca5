"""Quickstart: log a small tree of nested runs on the embedded default store and print it.

Run from anywhere inside the checkout: the store is the nearest ``.nbmlops/`` folder above
the working directory (created next to it when there is none), unless
``NBMLOPS_TRACKING_URI`` says otherwise.
"""

from __future__ import annotations

import math
import random

import nbmlops


def train(learning_rate: float, epochs: int = 5) -> float:
    """A toy training loop: loss decays at a rate set by the learning rate."""
    loss = 1.0
    for epoch in range(epochs):
        loss *= math.exp(-learning_rate * (1 + random.random() / 10))
        nbmlops.log_metric("loss", loss, step=epoch)
    return loss


def main() -> None:
    random.seed(0)
    nbmlops.set_experiment("quickstart")
    with nbmlops.start_run(run_name="sweep", tags={"purpose": "quickstart"}) as parent:
        nbmlops.log_param("search", "grid")
        best = math.inf
        for lr in (0.1, 0.3, 0.5):
            with nbmlops.start_run(run_name=f"lr={lr}", nested=True):
                nbmlops.log_params({"learning_rate": lr, "epochs": 5})
                final = train(lr)
                nbmlops.log_metric("final_loss", final)
                best = min(best, final)
        nbmlops.log_metric("best_loss", best)
        nbmlops.log_dict({"grid": [0.1, 0.3, 0.5]}, "search_space.json")

    print(f"store:   {nbmlops.get_tracking_uri()}")
    print(f"session: {parent.run_id}  ({parent.info.status.value})")
    children = nbmlops.search_runs(
        filter_string=f"parent_run_id = '{parent.run_id}'", order_by=["metrics.final_loss ASC"]
    )
    columns = ["run_name", "status", "params.learning_rate", "metrics.final_loss"]
    print(children[columns].to_string(index=False))
    history = nbmlops.get_client().get_metric_history(children.run_id[0], "loss")
    print("loss history of the best child:", [round(m.value, 4) for m in history])


if __name__ == "__main__":
    main()
