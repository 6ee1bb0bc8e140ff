"""Feature engineering for the churn example: raw customer columns -> numeric model features.

Every feature is declared once, with the expression that computes it (registered verbatim in
the feature store as its ``transformation``) and the function that applies it. Missing values
are filled here with constants fixed in the definitions, so the served model sees finite
numbers and the definition alone says how a value was computed.

>>> from modelyard.datasets import generate_churn
>>> engineer(generate_churn(3, seed=1).frame).shape
(3, 18)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd

from modelyard.enums import FeatureDType

ENTITY = "customer"
OWNER = "churn-team"
SOURCE = "modelyard://datasets/churn"


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """One engineered feature: its name, meaning, formula and implementation."""

    name: str
    description: str
    transformation: str
    compute: Callable[[pd.DataFrame], pd.Series]
    dtype: FeatureDType = FeatureDType.FLOAT64
    tags: tuple[str, ...] = ("churn",)


def _is(column: str, value: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda frame: (frame[column] == value).astype(np.float64)


FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec(
        "tenure_months",
        "Months since the customer signed up.",
        "tenure_months",
        lambda f: f["tenure_months"].astype(np.float64),
    ),
    FeatureSpec(
        "monthly_charges",
        "Current monthly bill.",
        "monthly_charges",
        lambda f: f["monthly_charges"].astype(np.float64),
    ),
    FeatureSpec(
        "total_charges",
        "Lifetime billed amount; 0 for customers not yet billed.",
        "total_charges.fillna(0)",
        lambda f: f["total_charges"].fillna(0.0),
    ),
    FeatureSpec(
        "charges_per_tenure_month",
        "Lifetime bill per month of tenure.",
        "total_charges.fillna(0) / max(tenure_months, 1)",
        lambda f: f["total_charges"].fillna(0.0) / f["tenure_months"].clip(lower=1),
    ),
    FeatureSpec(
        "support_calls",
        "Support calls in the last quarter.",
        "support_calls",
        lambda f: f["support_calls"].astype(np.float64),
    ),
    FeatureSpec(
        "num_products",
        "Products the customer holds.",
        "num_products",
        lambda f: f["num_products"].astype(np.float64),
    ),
    FeatureSpec(
        "age",
        "Customer age in years; 45 (the median) when unknown.",
        "age.fillna(45)",
        lambda f: f["age"].fillna(45.0),
    ),
    FeatureSpec(
        "age_missing",
        "1 when the age is unknown.",
        "age.isna()",
        lambda f: f["age"].isna().astype(np.float64),
    ),
    FeatureSpec(
        "has_partner",
        "1 when the customer has a partner.",
        "has_partner",
        lambda f: f["has_partner"].astype(np.float64),
    ),
    FeatureSpec(
        "contract_month_to_month",
        "Month-to-month contract.",
        "contract == 'month-to-month'",
        _is("contract", "month-to-month"),
    ),
    FeatureSpec(
        "contract_two_year",
        "Two-year contract.",
        "contract == 'two-year'",
        _is("contract", "two-year"),
    ),
    FeatureSpec(
        "internet_fiber",
        "Fibre internet service.",
        "internet_service == 'fiber'",
        _is("internet_service", "fiber"),
    ),
    FeatureSpec(
        "internet_none",
        "No internet service.",
        "internet_service == 'none'",
        _is("internet_service", "none"),
    ),
    FeatureSpec(
        "payment_electronic_check",
        "Pays by electronic check.",
        "payment_method == 'electronic-check'",
        _is("payment_method", "electronic-check"),
    ),
    FeatureSpec(
        "payment_automatic",
        "Pays by bank transfer or credit card.",
        "payment_method in ('bank-transfer', 'credit-card')",
        lambda f: f["payment_method"].isin(["bank-transfer", "credit-card"]).astype(np.float64),
    ),
    FeatureSpec(
        "region_south", "Lives in the south region.", "region == 'south'", _is("region", "south")
    ),
    FeatureSpec(
        "signup_at",
        "Sign-up time, epoch seconds (UTC); float32 cannot hold it to the second.",
        "signup_at",
        lambda f: f["signup_at"].astype(np.float64),
    ),
    FeatureSpec(
        "annual_spend",
        "Spend over the last twelve months, with cents.",
        "annual_spend",
        lambda f: f["annual_spend"].astype(np.float64),
    ),
)

FEATURE_NAMES: tuple[str, ...] = tuple(spec.name for spec in FEATURES)


def engineer(frame: pd.DataFrame) -> pd.DataFrame:
    """The model features of every row of ``frame``, float64, in :data:`FEATURE_NAMES` order."""
    return pd.DataFrame({spec.name: spec.compute(frame).astype(np.float64) for spec in FEATURES})
