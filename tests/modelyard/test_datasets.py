"""The churn generator: determinism, mixed types, missing values, imbalance, drift."""

from __future__ import annotations

import pytest

from modelyard.datasets import generate_churn
from modelyard.datasets.churn import ChurnDataset


def test_same_seed_same_data_and_hash() -> None:
    first, second = generate_churn(500, seed=11), generate_churn(500, seed=11)
    assert first.frame.equals(second.frame)
    assert (first.labels == second.labels).all()
    assert first.content_hash() == second.content_hash()
    assert first.content_hash() != generate_churn(500, seed=12).content_hash()


def test_mixed_columns_missing_values_and_imbalance() -> None:
    data = generate_churn(20_000, seed=0)
    kinds = {str(dtype) for dtype in data.frame.dtypes}
    assert {"int64", "float64", "bool"} <= kinds
    text_columns = [c for c in data.frame if data.frame[c].map(type).eq(str).all()]
    assert len(text_columns) >= 5  # customer_id and four categorical columns
    assert data.frame["total_charges"].isna().any()
    assert data.frame["age"].isna().mean() == pytest.approx(0.05, abs=0.01)
    assert 0.17 < data.labels.mean() < 0.23


def test_drift_shifts_the_population() -> None:
    reference, drifted = generate_churn(20_000, seed=0), generate_churn(20_000, seed=0, drift=1.0)

    def share(data: ChurnDataset) -> float:
        return float((data.frame["contract"] == "month-to-month").mean())

    assert share(drifted) > share(reference) + 0.2
    assert drifted.labels.mean() > reference.labels.mean()


def test_concept_drift_keeps_the_population_and_changes_the_labels() -> None:
    reference = generate_churn(20_000, seed=0)
    changed = generate_churn(20_000, seed=0, concept_drift=1.0)
    assert changed.frame.equals(reference.frame), "same customers"
    disagree = (changed.labels != reference.labels).mean()
    assert disagree > 0.1
    calls = reference.frame["support_calls"].to_numpy() >= 4
    assert changed.labels[calls].mean() < reference.labels[calls].mean(), "calls matter less"


def test_float64_columns_that_float32_cannot_hold() -> None:
    frame = generate_churn(5_000, seed=3).frame
    signup = frame["signup_at"].to_numpy()
    assert signup.dtype.kind == "i"
    assert (signup > 2**24).all()
    assert (signup.astype("float32").astype("int64") != signup).mean() > 0.9
    assert frame["annual_spend"].max() > 10_000
    cents = frame["annual_spend"].to_numpy() * 100
    assert abs(cents - cents.round()).max() < 1e-6, "whole cents"


@pytest.mark.parametrize(("rows", "drift"), [(0, 0.0), (10, -0.1), (10, 1.5)])
def test_bad_arguments_are_refused(rows: int, drift: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        generate_churn(rows, drift=drift)
