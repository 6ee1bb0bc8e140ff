"""Statistical validation by seeded simulation (issue 17): A/A false positives, power,
sequential peeking, sample-ratio mismatch, and property 22.

Every simulation runs the vectorised cores the service uses (``rate_pvalues``,
``welch_pvalues``, ``always_valid_pvalues``) over thousands of experiments at once.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from control_plane.abtesting.power import plan_test
from control_plane.abtesting.recommendation import Action, MetricResult, recommend
from control_plane.abtesting.sequential import always_valid_pvalues, mixture_variance
from control_plane.abtesting.statistics import (
    benjamini_hochberg,
    compare_means,
    compare_rates,
    rate_pvalues,
    sample_ratio_mismatch,
    welch_pvalues,
)

ALPHA = 0.05
EXPERIMENTS = 4000


def _within_two_se(rate: float, target: float, experiments: int) -> bool:
    se = math.sqrt(target * (1 - target) / experiments)
    return abs(rate - target) <= 2 * se


def test_aa_rates_false_positive_rate_is_alpha() -> None:
    rng = np.random.default_rng(20261204)
    n = 5000
    xc, xt = rng.binomial(n, 0.1, EXPERIMENTS), rng.binomial(n, 0.1, EXPERIMENTS)
    fpr = float(np.mean(rate_pvalues(xc, n, xt, n) < ALPHA))
    assert _within_two_se(fpr, ALPHA, EXPERIMENTS), fpr


def test_aa_means_false_positive_rate_is_alpha() -> None:
    rng = np.random.default_rng(17)
    n = 200
    # Skewed, unequal-variance-free null: both arms from the same lognormal.
    a = rng.lognormal(0.0, 0.5, (EXPERIMENTS, n))
    b = rng.lognormal(0.0, 0.5, (EXPERIMENTS, n))
    p = welch_pvalues(a.mean(1), a.var(1, ddof=1), n, b.mean(1), b.var(1, ddof=1), n)
    fpr = float(np.mean(p < ALPHA))
    assert _within_two_se(fpr, ALPHA, EXPERIMENTS), fpr


def test_known_effect_is_detected_with_the_planned_power() -> None:
    plan = plan_test(baseline=0.10, minimum_detectable_effect=0.02, alpha=ALPHA, power=0.8)
    rng = np.random.default_rng(99)
    n = plan.n_per_variant
    xc, xt = rng.binomial(n, 0.10, EXPERIMENTS), rng.binomial(n, 0.12, EXPERIMENTS)
    power = float(np.mean(rate_pvalues(xc, n, xt, n) < ALPHA))
    # The normal approximation behind the formula is good to about a point at this size.
    assert abs(power - 0.8) <= 2 * math.sqrt(0.8 * 0.2 / EXPERIMENTS) + 0.01, power


def test_known_mean_effect_is_detected_with_the_planned_power() -> None:
    plan = plan_test(baseline=50.0, minimum_detectable_effect=1.0, variance=100.0, power=0.9)
    rng = np.random.default_rng(5)
    n, experiments = plan.n_per_variant, 1500
    a = rng.normal(50.0, 10.0, (experiments, n))
    b = rng.normal(51.0, 10.0, (experiments, n))
    p = welch_pvalues(a.mean(1), a.var(1, ddof=1), n, b.mean(1), b.var(1, ddof=1), n)
    power = float(np.mean(p < ALPHA))
    assert abs(power - 0.9) <= 2 * math.sqrt(0.9 * 0.1 / experiments) + 0.01, power


def test_sequential_peeking_after_every_batch_keeps_false_positives_below_alpha() -> None:
    rng = np.random.default_rng(2026)
    experiments, batches, batch = 2000, 50, 200
    xc = rng.binomial(batch, 0.1, (experiments, batches)).cumsum(1)
    xt = rng.binomial(batch, 0.1, (experiments, batches)).cumsum(1)
    n = batch * np.arange(1, batches + 1)
    pc, pt = xc / n, xt / n
    variance = (pc * (1 - pc) + pt * (1 - pt)) / n
    tau2 = mixture_variance(2 * 0.1 * 0.9 / (batch * batches), ALPHA)
    p = always_valid_pvalues(pt - pc, variance, tau2)
    sequential_fpr = float(np.mean((p < ALPHA).any(axis=1)))
    # The naive fixed-horizon test peeked at the same looks is badly inflated: the contrast
    # shows that the simulation has teeth.
    naive_fpr = float(np.mean((rate_pvalues(xc, n, xt, n) < ALPHA).any(axis=1)))
    assert sequential_fpr <= ALPHA, sequential_fpr
    assert naive_fpr > 2 * ALPHA, naive_fpr


def test_sequential_mode_still_detects_a_real_effect() -> None:
    rng = np.random.default_rng(3)
    experiments, batches, batch = 500, 50, 200
    xc = rng.binomial(batch, 0.10, (experiments, batches)).cumsum(1)
    xt = rng.binomial(batch, 0.13, (experiments, batches)).cumsum(1)
    n = batch * np.arange(1, batches + 1)
    pc, pt = xc / n, xt / n
    variance = (pc * (1 - pc) + pt * (1 - pt)) / n
    tau2 = mixture_variance(2 * 0.1 * 0.9 / (batch * batches), ALPHA)
    detected = float(np.mean((always_valid_pvalues(pt - pc, variance, tau2) < ALPHA).any(1)))
    assert detected > 0.9, detected


def test_55_45_assignment_on_a_50_50_design_is_flagged_as_srm() -> None:
    rng = np.random.default_rng(11)
    assigned = rng.random(10_000) < 0.55
    counts = [int(assigned.sum()), int((~assigned).sum())]
    result = sample_ratio_mismatch(counts, [0.5, 0.5])
    assert result.mismatch
    assert result.p_value < 1e-6


def test_srm_false_alarm_rate_is_about_its_threshold() -> None:
    rng = np.random.default_rng(12)
    counts = rng.binomial(10_000, 0.5, 2000)
    flagged = sum(
        sample_ratio_mismatch([int(c), 10_000 - int(c)], [0.5, 0.5]).mismatch for c in counts
    )
    assert flagged <= 3


def test_srm_blocks_a_verdict_even_on_a_clear_win() -> None:
    win = MetricResult(name="conversion", comparison=compare_rates(500, 4500, 800, 5500))
    verdict = recommend(
        primary=win,
        sample_ratio=sample_ratio_mismatch([4500, 5500], [0.5, 0.5]),
        units=(4500, 5500),
        minimum_sample_size=1000,
        sequential=False,
    )
    assert verdict.action is Action.KEEP_COLLECTING
    assert verdict.reason.value == "sample_ratio_mismatch"


def test_guardrail_degradation_keeps_the_control() -> None:
    win = MetricResult(name="conversion", comparison=compare_rates(1000, 10000, 1200, 10000))
    latency = MetricResult(
        name="latency_ms",
        higher_is_better=False,
        comparison=compare_rates(100, 10000, 300, 10000),
    )
    verdict = recommend(
        primary=win,
        guardrails=(latency,),
        sample_ratio=sample_ratio_mismatch([10000, 10000], [0.5, 0.5]),
        units=(10000, 10000),
        minimum_sample_size=1000,
        sequential=False,
    )
    assert (verdict.action, verdict.reason.value) == (Action.KEEP_CONTROL, "guardrail")


def test_benjamini_hochberg_controls_fdr_over_simulated_families() -> None:
    rng = np.random.default_rng(8)
    families, m, true_effects = 2000, 10, 3
    z = rng.normal(size=(families, m))
    z[:, :true_effects] += 3.0
    from scipy import stats

    p = 2 * stats.norm.sf(np.abs(z))
    false_discoveries = []
    for row in p:
        rejected = np.array(benjamini_hochberg(row.tolist())) <= ALPHA
        total = int(rejected.sum())
        false_discoveries.append(rejected[true_effects:].sum() / total if total else 0.0)
    assert float(np.mean(false_discoveries)) <= ALPHA


@settings(max_examples=300, deadline=None)
@given(
    n_c=st.integers(2, 50_000),
    n_t=st.integers(2, 50_000),
    rate_c=st.floats(0, 1),
    rate_t=st.floats(0, 1),
    minimum=st.integers(0, 20_000),
    sequential=st.booleans(),
    higher_is_better=st.booleans(),
)
def test_property_22_no_promote_for_non_significant_results(
    n_c: int,
    n_t: int,
    rate_c: float,
    rate_t: float,
    minimum: int,
    sequential: bool,
    higher_is_better: bool,
) -> None:
    from control_plane.abtesting.sequential import sequential_comparison

    x_c, x_t = round(n_c * rate_c), round(n_t * rate_t)
    comparison = compare_rates(x_c, n_c, x_t, n_t, ALPHA)
    if sequential:
        tau2 = mixture_variance(2 * 0.25 / max(minimum, 100), ALPHA)
        comparison = sequential_comparison(comparison, tau2)
    srm = sample_ratio_mismatch([n_c, n_t], [0.5, 0.5])
    verdict = recommend(
        primary=MetricResult(name="m", higher_is_better=higher_is_better, comparison=comparison),
        sample_ratio=srm,
        units=(n_c, n_t),
        minimum_sample_size=minimum,
        sequential=sequential,
    )
    if verdict.action is Action.PROMOTE_TREATMENT:
        assert comparison.p_value < ALPHA
        assert not srm.mismatch
        assert min(n_c, n_t) >= minimum
        low, high = comparison.absolute_ci
        assert (low > 0) if higher_is_better else (high < 0)
    if comparison.p_value >= ALPHA or srm.mismatch or min(n_c, n_t) < minimum:
        assert verdict.action is not Action.PROMOTE_TREATMENT


def test_relative_lift_of_tiny_and_huge_means_is_scale_free() -> None:
    """The delta method's powers of the means underflowed (means near 1e-90: a division by
    zero) or overflowed (near 1e200: OverflowError): every report of such a test failed. The
    relative lift and its interval do not depend on the scale."""
    unit = compare_means(1.0, 0.01, 50, 1.1, 0.01, 50)
    for scale in (1e-90, 1e90, 1e99):
        scaled = compare_means(scale, 0.01 * scale**2, 50, 1.1 * scale, 0.01 * scale**2, 50)
        assert scaled.relative_lift == pytest.approx(unit.relative_lift)
        assert scaled.relative_ci == pytest.approx(unit.relative_ci)
        assert scaled.p_value == pytest.approx(unit.p_value)
