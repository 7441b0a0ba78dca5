"""Helpers that exported packages call at run time (and verification calls too).

Kept in nbmlops rather than copied into each package so that the exported ``train.py``
computes its training metrics exactly as notebook autologging does, and so that the
prediction digest of ``infer.py`` and of the verifier are the same function. Everything
here is small, imports lazily and has no notebook dependency.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from nbmlops.errors import InvalidArgument

__all__ = [
    "head",
    "prediction_digest",
    "read_table",
    "subsample",
    "training_metrics",
    "write_table",
]

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def training_metrics(model: Any, x: Any, y: Any) -> dict[str, float]:
    """The ``training_*`` metrics notebook autologging logs for a fit of ``model`` on
    ``(x, y)`` (MLflow's definitions: accuracy/precision/recall/F1/log-loss/ROC-AUC for a
    classifier, MSE/RMSE/MAE/R² for a regressor, ``training_score``)."""
    from nbmlops.autolog.sklearn import training_metrics

    values = training_metrics(model, x, y, None)
    best = getattr(model, "best_score_", None)  # parameter searches: MLflow's best_cv_score
    if isinstance(best, (int, float)) and not isinstance(best, bool):
        values["best_cv_score"] = float(best)
    return values


def prediction_digest(predictions: Any) -> str:
    """sha256 of predictions (dtype, shape and values), equal for equal outputs anywhere."""
    import numpy as np

    array = np.asarray(predictions)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    if array.dtype.hasobject:
        digest.update(repr(array.tolist()).encode())
    else:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def head(data: Any, rows: int) -> Any:
    """The first ``rows`` rows of a DataFrame, Series or array."""
    if hasattr(data, "iloc"):
        return data.iloc[:rows]
    return data[:rows]


def subsample(x: Any, y: Any, rows: int, seed: int = 0) -> tuple[Any, Any]:
    """A reproducible random sample of ``rows`` rows of ``x`` and the matching ``y``."""
    import numpy as np

    count = len(x)
    if rows >= count:
        return x, y
    index = np.sort(np.random.default_rng(seed).choice(count, size=rows, replace=False))

    def take(data: Any) -> Any:
        return data.iloc[index] if hasattr(data, "iloc") else np.asarray(data)[index]

    return take(x), take(y)


def _check_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InvalidArgument(
            f"{path}: unsupported table format {suffix or '(no suffix)'}; use .csv or .parquet"
        )
    return suffix


def read_table(path: str | Path) -> Any:
    """A CSV or Parquet file as a DataFrame (InvalidArgument naming the file otherwise)."""
    import pandas as pd

    path = Path(path)
    suffix = _check_suffix(path)
    if not path.is_file():
        raise InvalidArgument(f"{path}: no such file")
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except ImportError as exc:
        raise InvalidArgument(f"{path}: reading Parquet needs pyarrow ({exc})") from None
    except (ValueError, OSError) as exc:
        raise InvalidArgument(f"{path}: unreadable table ({exc})") from None


def write_table(frame: Any, path: str | Path) -> Path:
    """Write a DataFrame (or array) as CSV or Parquet, by the file's suffix."""
    import pandas as pd

    path = Path(path)
    suffix = _check_suffix(path)
    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame(frame)
        frame.columns = [str(c) for c in frame.columns]
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path
