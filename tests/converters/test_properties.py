"""Converter property (none of the platform's numbered properties 1-41): every kind converts
within tolerance, for generated data sets and model settings.

Data come from ``make_classification``/``make_regression`` with drawn sizes and seeds; with
``grid`` the features are snapped to a coarse grid (many equal values, so splits sit exactly
between data values: the hard case for FP32 trees). Sizes are small so each example takes a
fraction of a second.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_classification, make_regression

from converters import convert
from converters.fidelity import Scores, measure
from converters.report import Tolerances
from tests.converters.kinds import CLASSIFIERS, REGRESSORS, needs_bucket, with_bucket

SETTINGS = settings(
    deadline=None,
    max_examples=4,  # x 19 kinds; 40 per kind passed once locally (3.5 min)
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def datasets(draw: st.DrawFn, *, classification: bool) -> tuple[pd.DataFrame, np.ndarray, int]:
    rows = draw(st.integers(40, 160))
    width = draw(st.integers(3, 6))
    seed = draw(st.integers(0, 2**16))
    grid = draw(st.sampled_from([None, 1.0, 0.1]))
    size = draw(st.integers(1, 12))
    if classification:
        features, target = make_classification(
            n_samples=rows,
            n_features=width,
            n_informative=min(3, width),
            n_redundant=0,
            n_classes=draw(st.integers(2, 3)),
            n_clusters_per_class=1,
            random_state=seed,
        )
    else:
        features, target = make_regression(
            n_samples=rows, n_features=width, noise=draw(st.floats(0, 10)), random_state=seed
        )
    if grid is not None:
        features = np.round(features / grid) * grid
    frame = pd.DataFrame(features, columns=[f"x{i}" for i in range(width)])
    return frame, target, size


KINDS = [(kind, True) for kind in sorted(CLASSIFIERS)] + [
    (kind, False) for kind in sorted(REGRESSORS)
]


@pytest.mark.parametrize(("kind", "classification"), KINDS, ids=[k for k, _ in KINDS])
@SETTINGS
@given(data=st.data())
def test_every_kind_converts_within_tolerance_property(
    kind: str, classification: bool, data: st.DataObject
) -> None:
    frame, target, size = data.draw(datasets(classification=classification))
    frame = with_bucket(frame) if needs_bucket(kind) else frame
    fit = CLASSIFIERS[kind] if classification else REGRESSORS[kind]
    model = fit(frame, target, size)

    report = convert(model, frame).fidelity

    assert report.within_tolerance, report.summary()
    if classification:
        assert report.max_abs_diff <= 1e-5
        assert len(report.disagreeing_rows) == 0


def test_label_differing_at_a_native_tie_is_listed_not_counted() -> None:
    native = Scores(labels=np.array([0, 1]), values=np.array([[0.5, 0.5], [0.2, 0.8]]))
    onnx = Scores(labels=np.array([1, 1]), values=np.array([[0.4999999, 0.5000001], [0.2, 0.8]]))

    report = measure("classification", native, onnx, Tolerances())

    assert report.within_tolerance
    assert report.tied_rows == (0,)
    assert report.disagreeing_rows == ()
    assert report.label_agreement == 0.5


def test_label_differing_without_a_tie_is_refused() -> None:
    native = Scores(labels=np.array([0, 1]), values=np.array([[0.6, 0.4], [0.2, 0.8]]))
    onnx = Scores(labels=np.array([1, 1]), values=np.array([[0.6, 0.4], [0.2, 0.8]]))

    report = measure("classification", native, onnx, Tolerances())

    assert not report.within_tolerance
    assert report.disagreeing_rows == (0,)
