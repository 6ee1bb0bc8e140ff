"""A seeded customer-churn generator: mixed column types, missing values, class imbalance.

The label follows a logistic model of plausible drivers — short tenure, month-to-month
contracts, fibre internet, electronic-check payment, many support calls and high charges raise
churn; long contracts and several products lower it — plus noise, calibrated to a churn rate
near 20%. Two columns have missing values (``total_charges`` for brand-new customers, ``age``
at random). The same seed always gives the same frame.

Two columns carry the float64 values real tables do: ``signup_at`` (epoch seconds, about
1.7e9 — float32 rounds them to 128 s) and ``annual_spend`` (money with cents; the largest
reach a hundred thousand). Customers who signed up during the spring 2025 promotion churn
more, so a tree model splits on ``signup_at`` near the campaign's dates, where float32 inputs
change answers.

``drift`` (0 = none, 1 = strong) shifts the population the way a market change would: more
month-to-month fibre customers with higher charges and more support calls. ``concept_drift``
(0 to 1) changes the label relationship instead, with the population unchanged: support calls
stop mattering and tenure matters less, while the price starts to dominate. Monitoring and
retraining work use both to produce drifted windows from the same generator.

>>> data = generate_churn(1000, seed=7)
>>> data.frame.shape, round(float(data.labels.mean()), 2)
((1000, 14), 0.2)
>>> int(data.frame["signup_at"].min()) > 2**24
True
>>> generate_churn(5, seed=1).frame.equals(generate_churn(5, seed=1).frame)
True
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pandas as pd

CONTRACTS = ("month-to-month", "one-year", "two-year")
PAYMENT_METHODS = ("electronic-check", "mailed-check", "bank-transfer", "credit-card")
INTERNET_SERVICES = ("dsl", "fiber", "none")
REGIONS = ("north", "south", "east", "west")
LABEL = "churned"
_TARGET_RATE = 0.2
REFERENCE_TIME = 1_767_225_600
"""2026-01-01T00:00:00Z: tenure is counted back from here."""
PROMOTION = (1_743_465_600, 1_748_736_000)
"""2025-04-01 to 2025-06-01 (UTC): the spring promotion whose customers churn more."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class ChurnDataset:
    """A generated churn sample.

    Attributes:
        frame: one row per customer, raw columns (no label).
        labels: 1 if the customer churned.
        seed: the seed that produced it.
        drift: the drift level it was generated with.
        concept_drift: the concept-drift level (label relationship) it was generated with.
    """

    frame: pd.DataFrame
    labels: np.ndarray
    seed: int
    drift: float
    concept_drift: float = 0.0

    def content_hash(self) -> str:
        """sha256 of the frame and labels (the lineage record of the training data)."""
        digest = hashlib.sha256()
        digest.update(pd.util.hash_pandas_object(self.frame, index=True).to_numpy().tobytes())
        digest.update(np.ascontiguousarray(self.labels).tobytes())
        return digest.hexdigest()

    @property
    def uri(self) -> str:
        """A URI naming how to regenerate exactly this sample."""
        return (
            f"modelyard://datasets/churn?rows={len(self.frame)}&seed={self.seed}"
            f"&drift={self.drift}&concept_drift={self.concept_drift}"
        )


def _choice(
    rng: np.random.Generator, values: tuple[str, ...], weights: list[float], n: int
) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    return rng.choice(np.asarray(values, dtype=object), size=n, p=p / p.sum())


def _raw_columns(rng: np.random.Generator, n: int, drift: float) -> pd.DataFrame:
    contract = _choice(
        rng, CONTRACTS, [0.5 + 0.3 * drift, 0.3 - 0.15 * drift, 0.2 - 0.15 * drift], n
    )
    internet = _choice(
        rng, INTERNET_SERVICES, [0.35 - 0.2 * drift, 0.45 + 0.25 * drift, 0.2 - 0.05 * drift], n
    )
    tenure = (
        rng.gamma(shape=2.0, scale=14.0 * (1 - 0.4 * drift), size=n)
        .clip(0, 72)
        .round()
        .astype(np.int64)
    )
    base_charge = np.where(internet == "fiber", 85.0, np.where(internet == "dsl", 55.0, 25.0))
    monthly = (base_charge * (1 + 0.15 * drift) + rng.normal(0, 12, n)).clip(15, 150).round(2)
    total = (monthly * tenure + rng.normal(0, 30, n)).clip(0).round(2)
    total_with_missing = np.where(tenure == 0, np.nan, total)
    age = rng.normal(45, 14, n).clip(18, 90).round()
    age = np.where(rng.random(n) < 0.05, np.nan, age)
    days = tenure * 30.4375 + rng.uniform(0, 30, n)
    signup_at = (REFERENCE_TIME - days * 86_400 + rng.integers(0, 86_400, n)).astype(np.int64)
    spend = (monthly * 12 * rng.lognormal(0.5, 1.2, n) * (1 + 0.2 * drift)).round(2)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:07d}" for i in range(n)],
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "total_charges": total_with_missing,
            "contract": contract,
            "payment_method": _choice(
                rng, PAYMENT_METHODS, [0.35 + 0.1 * drift, 0.2, 0.22, 0.23 - 0.1 * drift], n
            ),
            "internet_service": internet,
            "support_calls": rng.poisson(1.2 + 1.5 * drift, n).astype(np.int64),
            "num_products": (1 + rng.binomial(4, 0.3, n)).astype(np.int64),
            "age": age,
            "region": _choice(rng, REGIONS, [0.3, 0.25, 0.25, 0.2], n),
            "has_partner": rng.random(n) < 0.48,
            "signup_at": signup_at,
            "annual_spend": spend,
        }
    )


def _churn_logit(
    frame: pd.DataFrame, rng: np.random.Generator, concept_drift: float = 0.0
) -> np.ndarray:
    tenure = frame["tenure_months"].to_numpy()
    fiber = (frame["internet_service"] == "fiber").to_numpy()
    calls = frame["support_calls"].to_numpy()
    age = frame["age"].fillna(45).to_numpy()
    signup = frame["signup_at"].to_numpy()
    promotion = (signup >= PROMOTION[0]) & (signup < PROMOTION[1])
    keep = 1.0 - concept_drift  # how much of the original relationship still holds
    logit = (
        -0.03 * tenure * (1 - 0.5 * concept_drift)
        + np.where(tenure < 6, 1.2, 0.0)  # the first months are the riskiest
        + keep * np.where(fiber & (calls >= 3), 1.1, 0.0)  # unhappy fibre customers leave
        + 0.0012 * (age - 45.0) ** 2  # the youngest and the oldest switch more
        + np.where(frame["contract"] == "month-to-month", 1.3, 0.0)
        - np.where(frame["contract"] == "two-year", 1.2, 0.0)
        + np.where(fiber, 0.5, 0.0)
        + np.where(frame["payment_method"] == "electronic-check", 0.6, 0.0)
        + np.where(promotion, 0.9, 0.0)  # bargain hunters of the spring promotion
        + keep * 0.25 * calls
        + (0.012 + 0.05 * concept_drift) * (frame["monthly_charges"].to_numpy() - 65.0)
        - 0.3 * (frame["num_products"].to_numpy() - 1)
        - 0.25 * frame["has_partner"].to_numpy()
        + rng.normal(0, 0.6, len(frame))
    )
    return np.asarray(logit, dtype=float)


def generate_churn(
    rows: int, *, seed: int = 0, drift: float = 0.0, concept_drift: float = 0.0
) -> ChurnDataset:
    """Generate ``rows`` customers.

    Args:
        rows: number of customers.
        seed: the random seed (same seed, same data).
        drift: 0 for the reference population, up to 1 for a strongly shifted one.
        concept_drift: 0 for the reference label relationship, up to 1 for a changed one
            (same population).

    Raises:
        ValueError: ``rows`` < 1, or ``drift`` or ``concept_drift`` outside [0, 1].
    """
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    for name, value in (("drift", drift), ("concept_drift", concept_drift)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be within [0, 1], got {value}")
    rng = np.random.default_rng(seed)
    frame = _raw_columns(rng, rows, drift)
    logit = _churn_logit(frame, rng, concept_drift)
    # Calibrate the intercept on the reference population so the churn rate is ~20%;
    # under drift the same intercept applies, so drift raises churn as it would in reality.
    reference_logit = _churn_logit(_raw_columns(np.random.default_rng(seed), rows, 0.0), rng)
    intercept = np.quantile(reference_logit, 1 - _TARGET_RATE)
    labels = (logit > intercept).astype(np.int64)
    return ChurnDataset(
        frame=frame, labels=labels, seed=seed, drift=drift, concept_drift=concept_drift
    )
