"""Sketch reads over ``modelyard serve --workers 2``: every worker's windows, merged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelyard.model_repository import publish_version
from modelyard.sketches import (
    NumericSketch,
    build_reference_profile,
    decode_answer,
    decode_windows,
    encode,
    sketch_column,
)

from ..conftest import classifier_bytes
from .cluster import WORKERS, fresh_client, two_workers


def test_a_sketch_read_merges_the_windows_of_every_worker(repo: Path) -> None:
    rng = np.random.default_rng(7)
    reference = rng.normal(size=(2000, 4))
    profile = build_reference_profile({f"f{i}": reference[:, i] for i in range(4)})
    publish_version(
        repo, "clf", 1, {"model.onnx": classifier_bytes(1), "reference.json": encode(profile)}
    )
    rows = rng.normal(size=(200, 4)).astype(np.float32)
    with two_workers(repo) as cluster, fresh_client(cluster.url) as http:
        for row in rows:
            answer = http.post("/predict", params={"model": "clf"}, json=row.tolist())
            assert answer.status_code == 200, answer.text
        assert all(count > 0 for count in cluster.served()), "the kernel used one worker only"
        answer = http.get("/v2/models/clf/versions/1/sketches")
    assert answer.status_code == 200, answer.text
    result = decode_answer(answer.content)
    assert result.workers_applied == WORKERS
    sketches = decode_windows(answer.content)  # what the control plane reads
    assert (sketches.served, sketches.requests, sketches.rows) == (200, 200, 200)
    for i in range(4):
        merged = sketches.features[f"f{i}"]
        alone = sketch_column(rows[:, i], profile.features[f"f{i}"])
        assert isinstance(merged, NumericSketch)
        assert isinstance(alone, NumericSketch)
        assert (merged.counts, merged.n, merged.min, merged.max) == (
            alone.counts,
            alone.n,
            alone.min,
            alone.max,
        )
        assert merged.sums == pytest.approx(alone.sums)
