"""The data a retraining run of the demo's churn model trains on (a spec's ``data`` entry point).

``current_customers()`` stands for "the latest labelled table": customers after the market
changed (shifted population, ``drift=1``) whose churn also follows a changed relationship
(``concept_drift=1``), as engineered features plus the ``churned`` label. A model retrained on
it should beat the old Production version on a holdout of the same data.

>>> frame = current_customers(rows=200)
>>> frame.shape, frame.columns[-1]
((200, 19), 'churned')
"""

from __future__ import annotations

import pandas as pd

from examples.churn.features import engineer
from modelyard.datasets import generate_churn
from modelyard.datasets.churn import LABEL

ENTRY_POINT = "examples.churn.retraining_data:current_customers"


def current_customers(rows: int = 8000, seed: int = 2026) -> pd.DataFrame:
    """Engineered features and the label of ``rows`` customers of the changed market."""
    data = generate_churn(rows, seed=seed, drift=1.0, concept_drift=1.0)
    frame = engineer(data.frame)
    frame[LABEL] = data.labels
    return frame
