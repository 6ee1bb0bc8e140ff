"""Training data for tuning jobs: a bundled scikit-learn dataset or a table on disk.

``sklearn:breast_cancer``, ``sklearn:iris`` and ``sklearn:wine`` ship inside scikit-learn
(nothing is downloaded); any other value is a CSV or Parquet path whose ``target`` column
holds the labels and whose other (numeric) columns are the features.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelyard.errors import InvalidArgument
from modelyard.paths import check_path_text

BUNDLED = ("breast_cancer", "iris", "wine")


def load_dataset(source: str, target: str | None = None) -> tuple[Any, Any]:
    """Features and labels of ``source``.

    Raises:
        InvalidArgument: unknown bundled name, missing file, unsupported format, or the
            target column is missing.
    """
    if source.startswith("sklearn:"):
        name = source.removeprefix("sklearn:")
        if name not in BUNDLED:
            raise InvalidArgument(f"unknown dataset {source!r}: bundled are {BUNDLED}")
        from sklearn import datasets

        loaded = getattr(datasets, f"load_{name}")(return_X_y=True)
        return loaded[0], loaded[1]
    check_path_text(source, "dataset")
    return _load_table(Path(source), target)


def _load_table(path: Path, target: str | None) -> tuple[Any, Any]:
    import pandas as pd

    if not path.is_file():
        raise InvalidArgument(f"dataset {str(path)!r} does not exist")
    if path.suffix == ".csv":
        frame = pd.read_csv(path)
    elif path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    else:
        raise InvalidArgument(f"dataset {str(path)!r}: expected a .csv or .parquet file")
    if target is None or target not in frame.columns:
        raise InvalidArgument(f"dataset {str(path)!r} has no target column {target!r}")
    return frame.drop(columns=[target]).to_numpy(), frame[target].to_numpy()
