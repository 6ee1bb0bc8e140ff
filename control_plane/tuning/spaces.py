"""Search spaces: what the tuner may vary, per model family, and how a trial samples it.

A space maps a hyperparameter name to a range (:class:`FloatRange`, :class:`IntRange`) or a
set of choices (:class:`Choice`). The defaults below are deliberately modest ranges that
work on small tabular data; :func:`search_space` overrides them: a given name replaces or adds
its range, ``None`` removes it, and ``replace=True`` starts from nothing. A space with nothing
left to tune is refused, as is a range whose bounds are inverted.

>>> space = search_space("logistic_regression", {"C": FloatRange(low=0.5, high=2.0)})
>>> sorted(space), space["C"].high
(['C', 'class_weight'], 2.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from modelyard.errors import InvalidArgument
from modelyard.models import FiniteFloat

if TYPE_CHECKING:
    import optuna

MODEL_KINDS = ("logistic_regression", "lightgbm", "xgboost")

MAX_INT = 10**6
"""Largest magnitude of an integer range's bounds: counts and sizes beyond it are no
hyperparameters of these model families."""

INT_CAPS = {"n_estimators": 10_000}
"""Tighter caps where a trial's time grows with the value: the tuner picked 450 quadrillion
trees from a range of +-2**62, and that trial (a thread that cannot be stopped) never ended."""


class _Spec(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Base of a hyperparameter range (decoded from outside input: unknown fields refused)."""


class FloatRange(_Spec, tag="float", kw_only=True, frozen=True):
    """A real number in ``[low, high]``, sampled on a log scale when ``log``."""

    low: FiniteFloat
    high: FiniteFloat
    log: bool = False


class IntRange(_Spec, tag="int", kw_only=True, frozen=True):
    """An integer in ``[low, high]``, sampled on a log scale when ``log``."""

    low: int
    high: int
    log: bool = False


class Choice(_Spec, tag="categorical", kw_only=True, frozen=True):
    """One of ``choices``."""

    choices: list[str | int | float | bool | None]


ParamSpec = FloatRange | IntRange | Choice
SearchSpace = dict[str, ParamSpec]

DEFAULT_SPACES: dict[str, SearchSpace] = {
    "logistic_regression": {
        "C": FloatRange(low=1e-3, high=1e2, log=True),
        "class_weight": Choice(choices=[None, "balanced"]),
    },
    "lightgbm": {
        "n_estimators": IntRange(low=20, high=200, log=True),
        "learning_rate": FloatRange(low=1e-2, high=0.3, log=True),
        "num_leaves": IntRange(low=4, high=64, log=True),
        "min_child_samples": IntRange(low=5, high=50),
        "subsample": FloatRange(low=0.5, high=1.0),
        "colsample_bytree": FloatRange(low=0.5, high=1.0),
        "reg_lambda": FloatRange(low=1e-8, high=10.0, log=True),
    },
    "xgboost": {
        "n_estimators": IntRange(low=20, high=200, log=True),
        "learning_rate": FloatRange(low=1e-2, high=0.3, log=True),
        "max_depth": IntRange(low=2, high=8),
        "min_child_weight": FloatRange(low=1e-2, high=10.0, log=True),
        "subsample": FloatRange(low=0.5, high=1.0),
        "colsample_bytree": FloatRange(low=0.5, high=1.0),
        "reg_lambda": FloatRange(low=1e-8, high=10.0, log=True),
    },
}


def check_model(model: str) -> str:
    """``model`` if it names a known model family.

    Raises:
        InvalidArgument: an unknown model family (the message lists the known ones).
    """
    if model not in MODEL_KINDS:
        raise InvalidArgument(f"unknown model {model!r}: expected one of {', '.join(MODEL_KINDS)}")
    return model


def validate_space(space: Mapping[str, ParamSpec]) -> SearchSpace:
    """``space`` as a dict, once every range in it is usable.

    Raises:
        InvalidArgument: the space is empty, a range is inverted, a log range reaches 0, a
            float range is wider than a float, an integer bound is beyond :data:`MAX_INT` (or
            :data:`INT_CAPS`), or a choice list is empty (the message names the hyperparameter).
    """
    if not space:
        raise InvalidArgument("search space is empty: give at least one hyperparameter to tune")
    for name, spec in space.items():
        if isinstance(spec, Choice):
            if not spec.choices:
                raise InvalidArgument(f"hyperparameter {name!r} has no choices")
            continue
        if spec.low > spec.high:
            raise InvalidArgument(f"hyperparameter {name!r}: low {spec.low} > high {spec.high}")
        if spec.log and spec.low <= 0:
            raise InvalidArgument(f"hyperparameter {name!r}: a log range needs low > 0")
        if isinstance(spec, FloatRange) and not math.isfinite(spec.high - spec.low):
            raise InvalidArgument(f"hyperparameter {name!r}: the range is wider than a float")
        if isinstance(spec, IntRange):
            cap = INT_CAPS.get(name, MAX_INT)
            if max(abs(spec.low), abs(spec.high)) > cap:
                raise InvalidArgument(
                    f"hyperparameter {name!r}: integer bounds must lie within +-{cap:,}"
                )
    return dict(space)


def search_space(
    model: str,
    overrides: Mapping[str, ParamSpec | None] | None = None,
    *,
    replace: bool = False,
) -> SearchSpace:
    """The search space of ``model``: its defaults with ``overrides`` applied.

    Args:
        model: ``logistic_regression``, ``lightgbm`` or ``xgboost``.
        overrides: name -> range to set, or ``None`` to drop that hyperparameter.
        replace: start from an empty space instead of the defaults.

    Raises:
        InvalidArgument: unknown model, or the resulting space is empty or invalid.
    """
    space: dict[str, ParamSpec] = {} if replace else dict(DEFAULT_SPACES[check_model(model)])
    for name, spec in (overrides or {}).items():
        if spec is None:
            space.pop(name, None)
        else:
            space[name] = spec
    return validate_space(space)


def suggest(trial: optuna.Trial, space: Mapping[str, ParamSpec]) -> dict[str, Any]:
    """Sample one value of every hyperparameter of ``space`` for ``trial``."""
    params: dict[str, Any] = {}
    for name, spec in space.items():
        if isinstance(spec, FloatRange):
            params[name] = trial.suggest_float(name, spec.low, spec.high, log=spec.log)
        elif isinstance(spec, IntRange):
            params[name] = trial.suggest_int(name, spec.low, spec.high, log=spec.log)
        else:
            params[name] = trial.suggest_categorical(name, spec.choices)
    return params
