"""Converters: scikit-learn, LightGBM and XGBoost models to ONNX, with a fidelity report.

One entry point, :func:`convert`; the conventions of the graphs it writes are in
``docs/model-conventions.md``.
"""

from __future__ import annotations

from converters.convert import convert
from converters.fidelity import FidelityError
from converters.kinds import UnsupportedModel
from converters.report import ConversionResult, FidelityReport, Tolerances

__all__ = [
    "ConversionResult",
    "FidelityError",
    "FidelityReport",
    "Tolerances",
    "UnsupportedModel",
    "convert",
]
