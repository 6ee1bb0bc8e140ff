"""Reading model and sample files for ``modelyard convert``.

Models: joblib or pickle files (scikit-learn estimators and pipelines, LightGBM and XGBoost
estimators), LightGBM text model files (a ``Booster``), XGBoost JSON or UBJ model files
(restored as ``XGBClassifier`` or ``XGBRegressor`` from the objective they record). The
format is chosen by extension, else by the file's first bytes. Samples: CSV or Parquet.

Unpickling runs code from the file: load only model files you trust.

Every failure is an :class:`~modelyard.errors.InvalidArgument` (or ``NotFound``) naming the
file and the problem, never a traceback.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from modelyard.errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

_PICKLE = (".joblib", ".pkl", ".pickle")
_LIGHTGBM = (".txt", ".lgb", ".lgbm")
_XGBOOST = (".json", ".ubj")
MODEL_FORMATS = (
    "joblib/pickle (.joblib .pkl .pickle), LightGBM text (.txt .lgb), XGBoost (.json .ubj)"
)


def load_model(path: Path) -> object:
    """Load a model file.

    Args:
        path: the file.

    Returns:
        The estimator, pipeline or booster in it.

    Raises:
        NotFound: no such file.
        InvalidArgument: the file is corrupt or in no supported format.
    """
    if not path.is_file():
        raise NotFound("model file", str(path))
    loader = {"pickle": _load_pickle, "lightgbm": _load_lightgbm, "xgboost": _load_xgboost}
    return loader[_model_format(path)](path)


def load_sample(path: Path) -> pd.DataFrame:
    """Load a sample table from CSV or Parquet.

    Args:
        path: a ``.csv`` or ``.parquet``/``.pq`` file.

    Returns:
        The table.

    Raises:
        NotFound: no such file.
        InvalidArgument: an unsupported extension or an unreadable file.
    """
    import pandas as pd

    if not path.is_file():
        raise NotFound("sample file", str(path))
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"sample file {str(path)!r} is not readable: {exc}") from None
    raise InvalidArgument(f"sample file {str(path)!r}: expected a .csv or .parquet file")


def _model_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _PICKLE:
        return "pickle"
    if suffix in _LIGHTGBM:
        return "lightgbm"
    if suffix in _XGBOOST:
        return "xgboost"
    with path.open("rb") as handle:
        head = handle.read(8)
    if head.startswith(b"\x80"):
        return "pickle"
    if head.startswith(b"tree"):
        return "lightgbm"
    if head.startswith(b"{"):
        return "xgboost"
    raise InvalidArgument(f"model file {str(path)!r} is in no supported format ({MODEL_FORMATS})")


def _corrupt(path: Path, kind: str, exc: BaseException) -> InvalidArgument:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InvalidArgument(f"model file {str(path)!r} is not a valid {kind} file: {detail}")


def _load_pickle(path: Path) -> object:
    import joblib

    try:
        return joblib.load(path)
    # Unpickling a damaged or foreign file can raise almost any exception type (EOFError,
    # UnpicklingError, KeyError, ModuleNotFoundError, ...); all mean "not a usable model".
    except Exception as exc:
        raise _corrupt(path, "joblib/pickle", exc) from None


def _load_lightgbm(path: Path) -> object:
    import lightgbm

    try:
        return lightgbm.Booster(model_file=str(path))
    except lightgbm.basic.LightGBMError as exc:
        raise _corrupt(path, "LightGBM model", exc) from None


def _load_xgboost(path: Path) -> object:
    import xgboost

    try:
        booster = xgboost.Booster(model_file=str(path))
        objective = str(json.loads(booster.save_config())["learner"]["objective"]["name"])
        estimator: Any = (
            xgboost.XGBRegressor() if objective.startswith("reg:") else xgboost.XGBClassifier()
        )
        estimator.load_model(str(path))
    except (xgboost.core.XGBoostError, ValueError, KeyError) as exc:
        raise _corrupt(path, "XGBoost model", exc) from None
    return estimator
