"""The reference benchmark model, built the same way everywhere.

LightGBM binary classifier, 300 trees, 31 leaves, on
``make_classification(n_samples=50_000, n_features=32, n_informative=16, random_state=0)``;
ONNX input ``input`` FP32 ``[-1, 32]``, outputs ``label`` and ``probabilities``. Training is
single-threaded and seeded, so :func:`build_reference` returns byte-identical ONNX on every
call (the server tests and the benchmarks rely on it). :data:`SMALL` is a cut-down variant
(30 trees, 5,000 rows) for fast tests.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from converters.convert import convert

if TYPE_CHECKING:
    import lightgbm
    from numpy.typing import NDArray

    from converters.report import ConversionResult


@dataclasses.dataclass(frozen=True)
class ReferenceSpec:
    """How the reference data and model are made.

    Attributes:
        n_samples: rows of ``make_classification``.
        n_features: columns (the ONNX input width).
        n_informative: informative columns.
        n_trees: boosting rounds.
        num_leaves: leaves per tree.
        sample_rows: rows of the fidelity sample (the first rows of the data).
        random_state: seed of the data and the model.
    """

    n_samples: int = 50_000
    n_features: int = 32
    n_informative: int = 16
    n_trees: int = 300
    num_leaves: int = 31
    sample_rows: int = 2_048
    random_state: int = 0


REFERENCE = ReferenceSpec()
SMALL = ReferenceSpec(n_samples=5_000, n_trees=30, sample_rows=512)


@dataclasses.dataclass(frozen=True)
class ReferenceModel:
    """The trained reference model, its data and its conversion.

    Attributes:
        spec: how it was made.
        model: the native LightGBM classifier (the benchmark baseline).
        features: the data, FP32 ``[n_samples, n_features]``.
        labels: the targets.
        conversion: the ONNX model, signature, fidelity report and metadata.
    """

    spec: ReferenceSpec
    model: lightgbm.LGBMClassifier
    features: NDArray[np.float32]
    labels: NDArray[np.int64]
    conversion: ConversionResult


def reference_data(
    spec: ReferenceSpec = REFERENCE,
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """The reference data set, rounded to FP32 (what the server receives).

    Args:
        spec: the variant.

    Returns:
        Features ``[n_samples, n_features]`` FP32 and 0/1 labels.
    """
    from sklearn.datasets import make_classification

    features, labels = make_classification(
        n_samples=spec.n_samples,
        n_features=spec.n_features,
        n_informative=spec.n_informative,
        random_state=spec.random_state,
    )
    return features.astype(np.float32), labels.astype(np.int64)


def build_reference(spec: ReferenceSpec = REFERENCE) -> ReferenceModel:
    """Train the reference model and convert it (deterministic).

    Args:
        spec: :data:`REFERENCE` (the benchmark model) or :data:`SMALL` (fast tests).

    Returns:
        The model, its data and its conversion.
    """
    import lightgbm

    features, labels = reference_data(spec)
    model = lightgbm.LGBMClassifier(
        n_estimators=spec.n_trees,
        num_leaves=spec.num_leaves,
        random_state=spec.random_state,
        n_jobs=1,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )
    model.fit(features, labels)
    conversion = convert(model, features[: spec.sample_rows])
    return ReferenceModel(
        spec=spec, model=model, features=features, labels=labels, conversion=conversion
    )
