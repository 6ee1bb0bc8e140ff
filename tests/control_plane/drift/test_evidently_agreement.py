"""Our drift verdicts from merged sketches agree with Evidently 0.7's DataDriftPreset.

Seeded reference/current pairs (numeric normal, numeric lognormal, integer counts,
categorical, binary; shifted by random amounts that straddle the thresholds, or not; small
references (<= 1000 rows: KS / chi-square / z-test) and large ones (normed Wasserstein /
Jensen-Shannon)) are written to a file; Evidently runs in its own venv (``make install``
builds ``.venv-evidently``: it needs pandas < 3) through a subprocess; we sketch each current
sample in three parts (three workers), merge, and judge from the reference profile alone.
Per-feature and dataset verdicts must agree in >= 95 % of cases; every disagreement is
printed with both scores.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from control_plane.drift import dataset_drift
from modelyard.sketches import (
    WindowSketches,
    build_reference_profile,
    merge_features,
    sketch_column,
)

ROOT = Path(__file__).resolve().parents[3]
EVIDENTLY_PYTHON = ROOT / ".venv-evidently" / "bin" / "python"
SCRIPT = Path(__file__).with_name("evidently_drift.py")
NUMERICAL = ["normal", "lognormal", "counts"]
CATEGORICAL = ["colour", "flag"]
T0 = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)


def _column(name: str, size: int, shift: float, rng: np.random.Generator) -> list[Any]:
    values: np.ndarray
    if name == "normal":
        values = rng.normal(shift, 1.0 + shift / 2, size)
    elif name == "lognormal":
        values = rng.lognormal(shift / 2, 1.0, size)
    elif name == "counts":
        values = rng.poisson(4.0 * (1 + shift / 2), size).astype(float)
    elif name == "colour":
        p = np.array([0.4, 0.3, 0.2, 0.1]) + np.array([-1.0, 0.0, 0.0, 1.0]) * shift / 4
        values = rng.choice(["red", "green", "blue", "black"], size, p=p / p.sum())
    else:
        values = rng.binomial(1, 0.3 + shift / 4, size)
    return list(values.tolist())


def _cases(seed: int, count: int, small: bool) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(count):
        n_ref = int(rng.integers(150, 1001)) if small else int(rng.integers(1500, 8001))
        n_cur = int(rng.integers(100, 1001)) if small else int(rng.integers(500, 5001))
        drifting = rng.random() < 0.5
        shifts = {
            name: float(rng.uniform(0.0, 0.6)) if drifting and rng.random() < 0.8 else 0.0
            for name in NUMERICAL + CATEGORICAL
        }
        cases.append(
            {
                "id": f"{'small' if small else 'large'}-{i}",
                "numerical": NUMERICAL,
                "categorical": CATEGORICAL,
                "shifts": shifts,
                "reference": {c: _column(c, n_ref, 0.0, rng) for c in shifts},
                "current": {c: _column(c, n_cur, s, rng) for c, s in shifts.items()},
            }
        )
    return cases


def _ours(case: dict[str, Any]) -> dict[str, Any]:
    kinds = {c: "categorical" for c in CATEGORICAL}
    profile = build_reference_profile(
        {c: np.asarray(v) for c, v in case["reference"].items()},
        kinds=kinds,  # type: ignore[arg-type]
    )
    features = {}
    for name, values in case["current"].items():
        parts = [
            sketch_column(np.asarray(p), profile.features[name])
            for p in np.array_split(np.asarray(values), 3)
        ]
        features[name] = merge_features(merge_features(parts[0], parts[1]), parts[2])
    window = WindowSketches(model="m", version="1", start=T0, end=T0, features=features)
    result = dataset_drift(profile, window)
    return {
        "columns": {
            r.feature: {"drifted": r.drifted, "score": r.score, "method": r.method.value}
            for r in result.features
        },
        "dataset_drift": result.drifted,
    }


def test_verdicts_from_sketches_agree_with_evidently_data_drift_preset(tmp_path: Path) -> None:
    if not EVIDENTLY_PYTHON.exists():
        pytest.fail(f"{EVIDENTLY_PYTHON} is missing: run `make install`", pytrace=False)
    cases = _cases(16, 30, small=True) + _cases(18, 30, small=False)
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    subprocess.run(
        [
            str(EVIDENTLY_PYTHON),
            str(SCRIPT),
            str(tmp_path / "cases.json"),
            str(tmp_path / "out.json"),
        ],
        check=True,
        timeout=600,
    )
    theirs = json.loads((tmp_path / "out.json").read_text())
    feature_misses: list[str] = []
    dataset_misses: list[str] = []
    drifted = {"features": 0, "datasets": 0}
    for case in cases:
        ours, evidently = _ours(case), theirs[case["id"]]
        for name, verdict in ours["columns"].items():
            other = evidently["columns"][name]
            drifted["features"] += other["drifted"]
            if verdict["drifted"] != other["drifted"]:
                feature_misses.append(_describe(case, name, verdict, other))
        drifted["datasets"] += evidently["dataset_drift"]
        if ours["dataset_drift"] != evidently["dataset_drift"]:
            dataset_misses.append(f"{case['id']} dataset: ours {ours['dataset_drift']}")
    features, datasets = 5 * len(cases), len(cases)
    print(f"features: {features - len(feature_misses)}/{features} agree", drifted)
    print(f"datasets: {datasets - len(dataset_misses)}/{datasets} agree")
    listing = "\n".join(feature_misses + dataset_misses)
    print(listing)
    assert 0.2 * features < drifted["features"] < 0.75 * features  # both verdicts represented
    assert 0.15 * datasets < drifted["datasets"] < 0.85 * datasets
    assert len(feature_misses) <= 0.05 * features, listing
    assert len(dataset_misses) <= 0.05 * datasets, listing


def _describe(case: dict[str, Any], name: str, ours: dict[str, Any], other: dict[str, Any]) -> str:
    return (
        f"{case['id']} {name} (shift {case['shifts'][name]:.3f}):"
        f" ours {ours['method']} {ours['score']:.6g} drifted={ours['drifted']};"
        f" Evidently {other['method']} {other['score']:.6g} drifted={other['drifted']}"
    )
