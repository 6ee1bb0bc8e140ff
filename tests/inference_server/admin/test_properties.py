"""Properties 21 and 18 over a real two-worker server (``modelyard serve --workers 2``)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyard.model_repository import (
    ModelConfig,
    VersionPolicy,
    publish_version,
    write_model_config,
)
from modelyard.routing import assign_arm

from ..conftest import classifier_bytes
from .cluster import WORKERS, Cluster, fresh_client, two_workers

pytestmark = pytest.mark.slow

ROW = [0.5, -1.0, 2.0, 0.25]
weight = st.floats(min_value=0.0, max_value=10.0, allow_nan=False).map(lambda w: round(w, 3))
weights = st.tuples(weight, weight).filter(lambda w: sum(w) > 0)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    repo: Path = tmp_path_factory.mktemp("repo")
    for version in (1, 2):
        publish_version(repo, "clf", version, {"model.onnx": classifier_bytes(version)})
    write_model_config(repo / "clf", ModelConfig(version_policy=VersionPolicy(kind="all")))
    with two_workers(repo, "--model-control-mode", "explicit") as running:
        yield running


def _set(cluster: Cluster, split: tuple[float, float]) -> None:
    arms = [
        {"version": 1, "weight": split[0]},
        {"version": 2, "weight": split[1], "variant": "treatment"},
    ]
    with fresh_client(cluster.url) as admin:
        answer = admin.put("/v2/models/clf/routes", json={"routes": arms})
    assert answer.status_code == 200, answer.text
    assert answer.json()["workers_applied"] == WORKERS


def _version(http: httpx.Client, key: str | None) -> str:
    params = {"model": "clf", **({"routing_key": key} if key is not None else {})}
    answer = http.post("/predict", params=params, json=ROW)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["version"])


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(split=weights, seed=st.integers(0, 2**32 - 1))
def test_property_21_split_updates_apply_on_the_next_request_in_every_worker(
    cluster: Cluster, split: tuple[float, float], seed: int
) -> None:
    _set(cluster, split)
    before = cluster.served()
    keys = [f"k{random.Random(seed).getrandbits(40)}-{i}" for i in range(30)]
    with fresh_client(cluster.url) as http:
        for key in keys:  # each on a new connection, so on either worker
            assert _version(http, key) == str(1 + assign_arm(key, split)), (key, split)
    after = cluster.served()
    assert all(a > b for a, b in zip(after, before, strict=True)), (before, after)


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(split=weights.filter(lambda w: min(w) / sum(w) >= 0.1), seed=st.integers(0, 2**32 - 1))
def test_property_18_ab_shares_converge_to_weights_and_keys_stay_on_their_arm(
    cluster: Cluster, split: tuple[float, float], seed: int
) -> None:
    _set(cluster, split)
    share = split[1] / sum(split)
    n = 300
    rng = random.Random(seed)
    keys = [f"user-{rng.getrandbits(48)}" for _ in range(n)]
    with fresh_client(cluster.url) as http:
        keyed = [_version(http, key) for key in keys]
        unkeyed = [_version(http, None) for _ in range(n)]
        for key, first in zip(keys[:20], keyed[:20], strict=True):  # sticky on both workers
            assert {_version(http, key) for _ in range(3)} == {first}
    tolerance = 4.5 * (share * (1 - share) / n) ** 0.5  # binomial, ~1e-5 false alarm
    for answers in (keyed, unkeyed):
        observed = answers.count("2") / n
        assert abs(observed - share) <= tolerance, (observed, share, split)
