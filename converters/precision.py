"""How much FP32 inputs would change the native model's answers, and which precision to use.

Users' tables are float64. :func:`check_inputs` scores the native model on the sample as given
and on the same sample rounded to FP32 (what an FP32 graph receives), names the features
whose rounding alone moves answers outside the tolerances and the features holding integers
FP32 cannot represent (beyond 2^24). :func:`candidates` turns that into the precisions to try,
in order: ``auto`` prefers FP32 inputs when they change nothing and FP64 inputs otherwise.

>>> import pandas as pd
>>> unrepresentable(pd.DataFrame({"ts": [1_700_000_001.0, 3.0], "x": [0.5, 2.0**25]}))
('ts',)
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from converters.fidelity import measure

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    from converters.fidelity import Scores
    from converters.inputs import InputPlan
    from converters.report import FidelityReport, Tolerances

PRECISIONS = ("auto", "float32", "float64")
FP32_EXACT_INTEGERS = 2**24
"""Every integer up to 2^24 is an FP32; beyond it FP32 skips integers."""
MAX_ATTRIBUTED_FEATURES = 64
"""Features scored one by one to name the sensitive ones (each costs one native scoring)."""


@dataclasses.dataclass(frozen=True)
class InputCheck:
    """What FP32 inputs do to the native model on the sample.

    Attributes:
        report: native on the sample vs native on its FP32 rounding.
        sensitive: features whose rounding alone moves answers outside the tolerances.
        unrepresentable: features with integers FP32 cannot hold.
    """

    report: FidelityReport
    sensitive: tuple[str, ...]
    unrepresentable: tuple[str, ...]

    def reason(self) -> str:
        """Why FP32 inputs are not enough, or "" when they are."""
        parts = []
        if not self.report.within_tolerance:
            named = f" (features {list(self.sensitive)})" if self.sensitive else ""
            report = self.report
            parts.append(
                f"FP32 inputs change the native answers beyond the tolerances{named}: "
                f"max |Δ {report.compared}| {report.max_abs_diff:.3g}, "
                f"{len(report.disagreeing_rows)} of {report.rows} rows outside"
            )
        if self.unrepresentable:
            parts.append(
                f"features {list(self.unrepresentable)} hold integers beyond 2^24 "
                "that FP32 cannot represent"
            )
        return "; ".join(parts)


def unrepresentable(frame: pd.DataFrame) -> tuple[str, ...]:
    """Columns holding integer values beyond 2^24 whose FP32 rounding changes them.

    Args:
        frame: float64 (or integer) columns.

    Returns:
        The column names, in frame order.
    """
    names = []
    for name in frame.columns:
        values = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
        big = values[np.isfinite(values) & (np.abs(values) > FP32_EXACT_INTEGERS)]
        whole = big[big == np.round(big)]
        if whole.size and (whole.astype(np.float32).astype(np.float64) != whole).any():
            names.append(str(name))
    return tuple(names)


def check_inputs(
    plan: InputPlan,
    predict: Callable[[InputPlan], Scores],
    native: Scores,
    tolerances: Tolerances,
    task: str,
) -> InputCheck:
    """Score the FP32-rounded sample natively and compare with the sample as given.

    Args:
        plan: an FP32 plan whose frame is the sample as given.
        predict: the native model's scoring of a plan's frame.
        native: the native scores of the sample as given.
        tolerances: the conversion's tolerances.
        task: ``classification`` or ``regression``.

    Returns:
        The comparison, the sensitive and the unrepresentable features.
    """
    floats = plan.float_columns()
    report = measure(task, native, predict(plan.as_fed()), tolerances)
    sensitive: list[str] = []
    if not report.within_tolerance and len(floats) <= MAX_ATTRIBUTED_FEATURES:
        for name in floats:
            frame = plan.frame.copy()
            frame[name] = frame[name].to_numpy(dtype=np.float32).astype(np.float64)
            alone = measure(
                task, native, predict(dataclasses.replace(plan, frame=frame)), tolerances
            )
            if not alone.within_tolerance:
                sensitive.append(name)
    return InputCheck(
        report=report,
        sensitive=tuple(sensitive),
        unrepresentable=unrepresentable(plan.frame.loc[:, list(floats)]),
    )


def candidates(precision: str, check: InputCheck | None) -> list[tuple[str, str]]:
    """The precisions to try, in order, each with the reason it is tried.

    Args:
        precision: ``auto``, ``float32`` or ``float64``.
        check: what FP32 inputs do (None when the model has no float inputs).

    Returns:
        (precision, reason) pairs; the first within tolerance wins.

    >>> candidates("float32", None)
    [('float32', 'requested (--precision float32)')]
    """
    if precision != "auto":
        return [(precision, f"requested (--precision {precision})")]
    reason = check.reason() if check is not None else ""
    if reason:
        return [("float64", reason), ("float32", f"no float64 graph: {reason}")]
    return [
        ("float32", "auto: FP32 inputs give the native answers on the sample"),
        ("float64", "auto: the FP32 graph missed the tolerances"),
    ]
