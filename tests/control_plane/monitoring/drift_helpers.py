"""Real sketches of generated data, served over HTTP as inference servers' admin read does."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlparse

import numpy as np

from modelyard.sketches import (
    ReferenceProfile,
    WindowSketches,
    encode,
    sketch_column,
)
from tests.control_plane.monitoring.helpers import T0
from tests.control_plane.monitoring.receivers import HttpReceiver, Request

TOKEN = "server-admin-token"


def sample(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, Any]:
    """Columns of a churn-like table; ``shift`` moves every distribution."""
    plans = ["basic", "plus", "pro"]
    weights = np.array([0.6, 0.3, 0.1]) if shift == 0 else np.array([0.2, 0.3, 0.5])
    return {
        "tenure": rng.normal(24 + 12 * shift, 8, n).tolist(),
        "charges": rng.lognormal(3 + 0.5 * shift, 0.4, n).tolist(),
        "plan": [plans[i] for i in rng.choice(3, n, p=weights)],
    }


def scores(rng: np.random.Generator, n: int, shift: float = 0.0) -> list[float]:
    """Positive-class scores."""
    values: list[float] = np.clip(rng.beta(2, 5, n) + 0.3 * shift, 0, 1).tolist()
    return values


def window_of(
    model: str, version: int, profile: ReferenceProfile, columns: dict[str, Any], score: list[float]
) -> WindowSketches:
    """What a server's workers would have sketched for these rows (on the reference's bins)."""
    n = len(score)
    return WindowSketches(
        model=model,
        version=str(version),
        start=T0 - dt.timedelta(hours=1),
        end=T0,
        rows=n,
        requests=n,
        served=n,
        features={
            name: sketch_column(np.asarray(values), profile.features[name])
            for name, values in columns.items()
        },
        score=sketch_column(np.asarray(score), profile.score),
    )


class SketchServer(HttpReceiver):
    """Answers ``GET /v2/models/{m}/versions/{v}/sketches`` with the windows it holds (404 for
    versions it does not serve, 401 without the admin token)."""

    def __init__(self) -> None:
        super().__init__(answer=self._sketches)
        self.windows: dict[tuple[str, int], WindowSketches] = {}

    def _sketches(self, request: Request) -> tuple[int, bytes]:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return 401, b'{"error": "admin token required"}'
        parts = urlparse(request.path).path.strip("/").split("/")
        key = (parts[2], int(parts[4]))
        if key not in self.windows:
            return 404, b'{"error": "not served"}'
        return 200, encode(self.windows[key])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
