"""Validation of test definitions and traffic splits (everything that needs no database)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import msgspec

from control_plane.abtesting.models import Variant
from control_plane.registry.naming import check_name
from modelyard.enums import ModelVariant
from modelyard.errors import InvalidArgument

if TYPE_CHECKING:
    from control_plane.abtesting.models import TestDefinition

MIN_WEIGHT = 1e-6
"""The smallest share of traffic an arm may get (0 aside, in a split): below it the expected
counts of the sample-ratio check were so small that its chi-square overflowed (a weight of
5e-324 answered ``null``), and no test could gather a sample on such an arm anyway."""

MAX_SAMPLE_SIZE = 10**12
"""The largest minimum sample size: beyond a float's range the report's days-to-sample could not
be computed (10**400 made every later report fail)."""


def check_definition(d: TestDefinition) -> None:
    """Refuse a definition that cannot run, naming every problem.

    Rules: a valid model name; exactly one control and one treatment (no shadow arms); distinct
    versions; finite weights of at least :data:`MIN_WEIGHT` summing to 1; alpha in (0, 0.5];
    minimum sample size in [2, 10**12]; unique metric names; ``label_match`` names its output.

    Raises:
        InvalidArgument: listing every problem found.

    >>> from control_plane.abtesting.models import Metric, MetricKind, TestDefinition, Variant
    >>> bad = TestDefinition(model="churn", variants=(
    ...     Variant(version=1, weight=0.7, role=ModelVariant.CONTROL),
    ...     Variant(version=1, weight=0.7, role=ModelVariant.TREATMENT)),
    ...     primary_metric=Metric(name="conversion", kind=MetricKind.CONVERSION))
    >>> try:
    ...     check_definition(bad)
    ... except InvalidArgument as error:
    ...     print(error)
    invalid A/B test: variants need distinct versions; weights must sum to 1, got 1.4
    """
    check_name(d.model)
    problems = _variant_problems(d) + _metric_problems(d)
    if not 0 < d.alpha <= 0.5:
        problems.append(f"alpha must lie in (0, 0.5], got {d.alpha}")
    if not 2 <= d.minimum_sample_size <= MAX_SAMPLE_SIZE:
        problems.append(f"minimum_sample_size must lie in [2, {MAX_SAMPLE_SIZE:.0e}]")
    if not d.routing_key_field.strip():
        problems.append("routing_key_field must not be empty")
    if problems:
        raise InvalidArgument("invalid A/B test: " + "; ".join(problems))


def _variant_problems(d: TestDefinition) -> list[str]:
    problems = []
    roles = sorted(v.role.value for v in d.variants)
    if roles != [ModelVariant.CONTROL.value, ModelVariant.TREATMENT.value]:
        problems.append(f"variants must be exactly one control and one treatment, got {roles}")
    if len({v.version for v in d.variants}) != len(d.variants):
        problems.append("variants need distinct versions")
    weights = [v.weight for v in d.variants]
    if any(not math.isfinite(w) or w < MIN_WEIGHT for w in weights):
        problems.append(f"every weight must be finite and at least {MIN_WEIGHT:g}")
    elif abs(sum(weights) - 1.0) > 1e-6:
        problems.append(f"weights must sum to 1, got {sum(weights):g}")
    return problems


def _metric_problems(d: TestDefinition) -> list[str]:
    metrics = (d.primary_metric, *d.guardrail_metrics, *d.secondary_metrics)
    problems = []
    names = [m.name for m in metrics]
    if len(set(names)) != len(names):
        problems.append(f"metric names must be unique, got {names}")
    problems += [
        f"metric {m.name!r} (label_match) must name its model output"
        for m in metrics
        if m.kind.value == "label_match" and not m.output
    ]
    return problems


def check_split(variants: tuple[Variant, ...], weights: dict[str, float]) -> tuple[Variant, ...]:
    """The variants with new ``weights`` (version as text → weight), validated.

    Raises:
        InvalidArgument: weights not naming exactly the variants' versions, not finite,
            negative, positive below :data:`MIN_WEIGHT`, or not summing to 1.

    >>> arms = (Variant(version=1, weight=0.5, role=ModelVariant.CONTROL),
    ...         Variant(version=2, weight=0.5, role=ModelVariant.TREATMENT))
    >>> [v.weight for v in check_split(arms, {"1": 0.9, "2": 0.1})]
    [0.9, 0.1]
    """
    versions = {str(v.version) for v in variants}
    if set(weights) != versions:
        raise InvalidArgument(
            f"weights must name exactly the test's versions {sorted(versions)}, "
            f"got {sorted(weights)}"
        )
    if any(not math.isfinite(w) or w < 0 or 0 < w < MIN_WEIGHT for w in weights.values()):
        raise InvalidArgument(
            f"weights must be finite and non-negative, each 0 or at least {MIN_WEIGHT:g}"
        )
    if abs(sum(weights.values()) - 1.0) > 1e-6:
        raise InvalidArgument(f"weights must sum to 1, got {sum(weights.values()):g}")
    return tuple(msgspec.structs.replace(v, weight=weights[str(v.version)]) for v in variants)
