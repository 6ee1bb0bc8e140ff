"""A double-precision graph is scored in float64 (its values never pass through float32)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from lightgbm import LGBMClassifier

from control_plane.batch.scoring import ChunkScorer
from converters import convert


def test_a_float64_graph_scores_batches_as_the_native_model() -> None:
    rng = np.random.default_rng(5)
    epoch = rng.integers(1_700_000_000, 1_700_100_000, size=600).astype(np.float64)
    frame = pd.DataFrame({"signup_at": epoch, "noise": rng.normal(size=600)})
    labels = (epoch > 1_700_050_000.5).astype(int)
    model = LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1, n_jobs=1).fit(frame, labels)
    conversion = convert(model, frame, precision="float64")
    scorer = ChunkScorer(conversion.onnx, model="m", version=1)
    assert scorer.info.input_types == ("tensor(double)",)
    scored = scorer.score(pa.Table.from_pandas(frame))
    probabilities = scored.results.column("probability_1").to_numpy()
    native = np.asarray(model.predict_proba(frame))[:, 1]
    assert np.max(np.abs(probabilities - native)) < 1e-5
