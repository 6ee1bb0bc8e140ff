"""The recommendation rule: promote the treatment, keep the control, or keep collecting.

Checked in this order, the first that applies decides:

1. **SRM** — the assignment counts do not match the weights (p < 0.001): no verdict at all
   (keep collecting; the split must be repaired first).
2. **Minimum sample** — an arm has fewer units than the test's minimum: keep collecting.
3. **Guardrails** — a guardrail metric is significantly worse in the treatment: keep control.
4. **Primary metric** — significant and better: promote the treatment; significant and worse:
   keep the control; not significant: keep collecting in sequential mode, keep the control in
   fixed-horizon mode once the minimum sample is reached (no detectable improvement).

"Better" follows each metric's direction (``higher_is_better``). Secondary metrics never
decide; they are reported with Benjamini–Hochberg adjusted p-values.
"""

from __future__ import annotations

import enum

import msgspec

from control_plane.abtesting.statistics import Comparison, SampleRatio


class Action(enum.StrEnum):
    """What to do with a test."""

    PROMOTE_TREATMENT = "promote_treatment"
    KEEP_CONTROL = "keep_control"
    KEEP_COLLECTING = "keep_collecting"


class Reason(enum.StrEnum):
    """Why the rule chose the action."""

    SAMPLE_RATIO_MISMATCH = "sample_ratio_mismatch"
    MINIMUM_SAMPLE = "minimum_sample"
    GUARDRAIL = "guardrail"
    SIGNIFICANT_IMPROVEMENT = "significant_improvement"
    SIGNIFICANT_DEGRADATION = "significant_degradation"
    NOT_SIGNIFICANT = "not_significant"


class MetricResult(msgspec.Struct, kw_only=True, frozen=True):
    """One metric's comparison with its direction (and adjusted p-value for secondaries)."""

    name: str
    higher_is_better: bool = True
    comparison: Comparison | None = None
    adjusted_p_value: float | None = None

    def better(self) -> bool:
        """Significant and in the good direction."""
        c = self.comparison
        return c is not None and c.significant and (c.absolute_lift > 0) == self.higher_is_better

    def worse(self) -> bool:
        """Significant and in the bad direction."""
        c = self.comparison
        return (
            c is not None
            and c.significant
            and c.absolute_lift != 0
            and (c.absolute_lift > 0) != self.higher_is_better
        )


class Recommendation(msgspec.Struct, kw_only=True, frozen=True):
    """The verdict, the reason and the numbers behind it."""

    action: Action
    reason: Reason
    detail: str
    primary: MetricResult
    guardrails: tuple[MetricResult, ...] = ()
    secondary: tuple[MetricResult, ...] = ()
    sample_ratio: SampleRatio | None = None
    units: tuple[int, ...] = ()
    minimum_sample_size: int = 0


def recommend(
    *,
    primary: MetricResult,
    guardrails: tuple[MetricResult, ...] = (),
    secondary: tuple[MetricResult, ...] = (),
    sample_ratio: SampleRatio,
    units: tuple[int, ...],
    minimum_sample_size: int,
    sequential: bool,
) -> Recommendation:
    """Apply the rule of the module docstring.

    >>> from control_plane.abtesting.statistics import compare_rates, sample_ratio_mismatch
    >>> srm = sample_ratio_mismatch([10000, 10000], [0.5, 0.5])
    >>> win = MetricResult(name="conversion", comparison=compare_rates(1000, 10000, 1150, 10000))
    >>> recommend(primary=win, sample_ratio=srm, units=(10000, 10000),
    ...           minimum_sample_size=5000, sequential=False).action.value
    'promote_treatment'
    >>> recommend(primary=win, sample_ratio=srm, units=(10000, 10000),
    ...           minimum_sample_size=20000, sequential=False).reason.value
    'minimum_sample'
    """

    def verdict(action: Action, reason: Reason, detail: str) -> Recommendation:
        return Recommendation(
            action=action,
            reason=reason,
            detail=detail,
            primary=primary,
            guardrails=guardrails,
            secondary=secondary,
            sample_ratio=sample_ratio,
            units=units,
            minimum_sample_size=minimum_sample_size,
        )

    if sample_ratio.mismatch:
        return verdict(
            Action.KEEP_COLLECTING,
            Reason.SAMPLE_RATIO_MISMATCH,
            f"assignment counts {list(sample_ratio.observed)} do not match the weights "
            f"(chi-square p = {sample_ratio.p_value:.2g} < 0.001): no verdict until the split "
            "is repaired",
        )
    if min(units, default=0) < minimum_sample_size or primary.comparison is None:
        return verdict(
            Action.KEEP_COLLECTING,
            Reason.MINIMUM_SAMPLE,
            f"units per variant {list(units)}; the minimum is {minimum_sample_size}",
        )
    failing = [g.name for g in guardrails if g.worse()]
    if failing:
        return verdict(
            Action.KEEP_CONTROL,
            Reason.GUARDRAIL,
            f"guardrail metric(s) significantly worse in the treatment: {', '.join(failing)}",
        )
    c = primary.comparison
    numbers = (
        f"{primary.name}: control {c.control:.4g}, treatment {c.treatment:.4g}, "
        f"lift {c.absolute_lift:+.4g} (CI {c.absolute_ci[0]:+.4g} .. {c.absolute_ci[1]:+.4g}), "
        f"p = {c.p_value:.3g}, alpha = {c.alpha}"
    )
    if primary.better():
        return verdict(Action.PROMOTE_TREATMENT, Reason.SIGNIFICANT_IMPROVEMENT, numbers)
    if primary.worse():
        return verdict(Action.KEEP_CONTROL, Reason.SIGNIFICANT_DEGRADATION, numbers)
    action = Action.KEEP_COLLECTING if sequential else Action.KEEP_CONTROL
    return verdict(action, Reason.NOT_SIGNIFICANT, numbers)
