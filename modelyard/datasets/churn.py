"""A seeded customer-churn generator: mixed column types, missing values, class imbalance.

The label follows a logistic model of plausible drivers — short tenure, month-to-month
contracts, fibre internet, electronic-check payment, many support calls and high charges raise
churn; long contracts and several products lower it — plus noise, calibrated to a churn rate
near 20%. Two columns have missing values (``total_charges`` for brand-new customers, ``age``
at random). The same seed always gives the same frame.

``drift`` (0 = none, 1 = strong) shifts the population the way a market change would: more
month-to-month fibre customers with higher charges and more support calls. Monitoring work
uses it to produce a drifted window from the same generator.

>>> data = generate_churn(1000, seed=7)
>>> data.frame.shape, round(float(data.labels.mean()), 2)
((1000, 12), 0.2)
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


@dataclasses.dataclass(frozen=True, kw_only=True)
class ChurnDataset:
    """A generated churn sample.

    Attributes:
        frame: one row per customer, raw columns (no label).
        labels: 1 if the customer churned.
        seed: the seed that produced it.
        drift: the drift level it was generated with.
    """

    frame: pd.DataFrame
    labels: np.ndarray
    seed: int
    drift: float

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
            f"modelyard://datasets/churn?rows={len(self.frame)}&seed={self.seed}&drift={self.drift}"
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
        }
    )


def _churn_logit(frame: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    tenure = frame["tenure_months"].to_numpy()
    fiber = (frame["internet_service"] == "fiber").to_numpy()
    calls = frame["support_calls"].to_numpy()
    age = frame["age"].fillna(45).to_numpy()
    logit = (
        -0.03 * tenure
        + np.where(tenure < 6, 1.2, 0.0)  # the first months are the riskiest
        + np.where(fiber & (calls >= 3), 1.1, 0.0)  # unhappy fibre customers leave
        + 0.0012 * (age - 45.0) ** 2  # the youngest and the oldest switch more
        + np.where(frame["contract"] == "month-to-month", 1.3, 0.0)
        - np.where(frame["contract"] == "two-year", 1.2, 0.0)
        + np.where(fiber, 0.5, 0.0)
        + np.where(frame["payment_method"] == "electronic-check", 0.6, 0.0)
        + 0.25 * calls
        + 0.012 * (frame["monthly_charges"].to_numpy() - 65.0)
        - 0.3 * (frame["num_products"].to_numpy() - 1)
        - 0.25 * frame["has_partner"].to_numpy()
        + rng.normal(0, 0.6, len(frame))
    )
    return np.asarray(logit, dtype=float)


def generate_churn(rows: int, *, seed: int = 0, drift: float = 0.0) -> ChurnDataset:
    """Generate ``rows`` customers.

    Args:
        rows: number of customers.
        seed: the random seed (same seed, same data).
        drift: 0 for the reference population, up to 1 for a strongly shifted one.

    Raises:
        ValueError: ``rows`` < 1 or ``drift`` outside [0, 1].
    """
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    if not 0.0 <= drift <= 1.0:
        raise ValueError(f"drift must be within [0, 1], got {drift}")
    rng = np.random.default_rng(seed)
    frame = _raw_columns(rng, rows, drift)
    logit = _churn_logit(frame, rng)
    # Calibrate the intercept on the reference population so the churn rate is ~20%;
    # under drift the same intercept applies, so drift raises churn as it would in reality.
    reference_logit = _churn_logit(_raw_columns(np.random.default_rng(seed), rows, 0.0), rng)
    intercept = np.quantile(reference_logit, 1 - _TARGET_RATE)
    labels = (logit > intercept).astype(np.int64)
    return ChurnDataset(frame=frame, labels=labels, seed=seed, drift=drift)
