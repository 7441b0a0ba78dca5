"""Dataset fingerprints for ``log_input``: a content digest, the shape and column dtypes.

pandas and numpy are imported only when the object is one of theirs, so ``import nbmlops``
stays light. The digest covers values, index, column names and dtypes: the same data gives
the same digest in any process; any changed cell, row order, column name or dtype changes it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from nbmlops.entities import DatasetInput
from nbmlops.errors import InvalidArgument

CONTEXTS = ("training", "evaluation", "inference", "validation", "test", "other")


def _module_of(obj: Any) -> str:
    return type(obj).__module__.split(".", 1)[0]


def fingerprint(
    dataset: Any, name: str | None = None, context: str = "training", source: str = ""
) -> DatasetInput:
    """Describe ``dataset`` (DataFrame, Series, ndarray, or list) as a :class:`DatasetInput`."""
    if context not in CONTEXTS:
        raise InvalidArgument(f"dataset context {context!r} is not one of {', '.join(CONTEXTS)}")
    digest = hashlib.sha256()
    module = _module_of(dataset)
    schema: dict[str, str]
    if module == "pandas" and hasattr(dataset, "dtypes"):
        import pandas as pd

        frame = dataset.to_frame() if isinstance(dataset, pd.Series) else dataset
        if not isinstance(frame, pd.DataFrame):
            raise InvalidArgument(
                f"cannot fingerprint pandas object of type {type(dataset).__name__}"
            )
        shape = tuple(int(n) for n in dataset.shape)
        schema = {str(col): str(dtype) for col, dtype in frame.dtypes.items()}
        digest.update(repr(sorted(schema.items())).encode())
        digest.update(repr([str(c) for c in frame.columns]).encode())
        try:
            hashed = pd.util.hash_pandas_object(frame, index=True)
        except TypeError:  # unhashable cells (lists, dicts): fall back to their text form
            hashed = pd.util.hash_pandas_object(frame.astype(str), index=True)
        digest.update(hashed.to_numpy().tobytes())
    elif module == "numpy" or (hasattr(dataset, "__array__") and hasattr(dataset, "shape")):
        import numpy as np

        array = np.asarray(dataset)
        shape = tuple(int(n) for n in array.shape)
        schema = {"dtype": str(array.dtype)}
        digest.update(f"{array.dtype.str}{shape}".encode())
        if array.dtype.hasobject:
            digest.update(repr(array.tolist()).encode())
        else:
            digest.update(np.ascontiguousarray(array).tobytes())
    elif isinstance(dataset, (list, tuple)):
        import numpy as np

        return fingerprint(np.asarray(dataset), name=name, context=context, source=source)
    else:
        raise InvalidArgument(
            f"log_input takes a pandas DataFrame/Series or a numpy array, got {type(dataset).__name__}"
        )
    hexdigest = digest.hexdigest()
    return DatasetInput(
        name=name or f"dataset-{hexdigest[:8]}",
        digest=hexdigest,
        context=context,
        shape=shape,
        schema=schema,
        source=source,
    )
