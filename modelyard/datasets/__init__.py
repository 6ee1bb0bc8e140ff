"""Sample datasets generated on the spot (nothing is downloaded)."""

from __future__ import annotations

from modelyard.datasets.churn import ChurnDataset, generate_churn

__all__ = ["ChurnDataset", "generate_churn"]
