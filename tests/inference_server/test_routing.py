"""A/B routes of config.json: weighted arms, sticky keys, fallbacks, shadow copies."""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from inference_server.core.types import InferRequest, InferResponse, RequestInput
from inference_server.loaded_version import LoadedVersion
from inference_server.routing import ROUTING_KEY, Router, key_fraction
from inference_server.service import InferenceService
from modelyard.enums import ModelVariant
from modelyard.model_repository import ModelConfig, Route, VersionPolicy, write_model_config
from modelyard.models import Scalar

from .conftest import N_FEATURES, classifier_reference, running_service

ALL_VERSIONS = VersionPolicy(kind="all")


def _configure(repo: Path, **fields: Any) -> None:
    write_model_config(repo / "clf", ModelConfig(version_policy=ALL_VERSIONS, **fields))


def _two_versions(repo: Path, publish: Callable[..., Path], *routes: Route) -> None:
    """Versions 1 and 2 of ``clf``, both loaded, with ``routes``."""
    publish("clf", 1)
    publish("clf", 2)
    _configure(repo, routes=routes)


def _request(x: np.ndarray, **kw: Any) -> InferRequest:
    return InferRequest(
        model_name="clf",
        inputs=[RequestInput(name="input", datatype="FP32", shape=x.shape, data=x)],
        **kw,
    )


def _probabilities(response: InferResponse) -> np.ndarray:
    probabilities: np.ndarray = {o.name: o.data for o in response.outputs}["probabilities"]
    return probabilities


async def _drain_shadows(service: InferenceService) -> None:
    while service._shadow_tasks:
        await asyncio.gather(*service._shadow_tasks)


async def test_weighted_arms_split_requests_and_each_answer_names_its_version(
    repo: Path, publish: Callable[..., Path]
) -> None:
    _two_versions(
        repo,
        publish,
        Route(version=1, weight=3.0),
        Route(version=2, weight=1.0, variant=ModelVariant.TREATMENT),
    )
    rng = np.random.default_rng(0)
    n = 800
    async with running_service(repo) as service:
        counts: collections.Counter[str] = collections.Counter()
        for _ in range(n):
            x = rng.normal(size=(1, N_FEATURES)).astype(np.float32)
            response = await service.infer(_request(x))
            counts[response.model_version] += 1
            expected = classifier_reference(int(response.model_version), x)
            np.testing.assert_allclose(_probabilities(response), expected, rtol=1e-5)
    share = counts["2"] / n
    sigma = math.sqrt(0.25 * 0.75 / n)
    assert abs(share - 0.25) < 5 * sigma, counts
    assert set(counts) == {"1", "2"}


async def test_a_routing_key_keeps_its_arm_and_a_named_version_is_never_routed(
    repo: Path, publish: Callable[..., Path]
) -> None:
    _two_versions(repo, publish, Route(version=1, weight=1.0), Route(version=2, weight=1.0))
    x = np.zeros((1, N_FEATURES), dtype=np.float32)
    async with running_service(repo) as service:
        for key in ("user-1", "user-2", 42):
            seen = {
                (await service.infer(_request(x, parameters={ROUTING_KEY: key}))).model_version
                for _ in range(25)
            }
            assert len(seen) == 1, (key, seen)
            expected = "1" if key_fraction(key) < 0.5 else "2"
            assert seen == {expected}
        spread = {
            (await service.infer(_request(x, parameters={ROUTING_KEY: f"u{i}"}))).model_version
            for i in range(100)
        }
        assert spread == {"1", "2"}
        named = {(await service.infer(_request(x, model_version="2"))).model_version}
        named |= {(await service.infer(_request(x, model_version="1"))).model_version}
        assert named == {"1", "2"}
        for _ in range(20):  # explicitly named: always that version
            assert (await service.infer(_request(x, model_version="2"))).model_version == "2"


async def test_arms_without_a_ready_version_fall_back(
    repo: Path, publish: Callable[..., Path]
) -> None:
    publish("clf", 1)
    publish("clf", 2)
    x = np.zeros((1, N_FEATURES), dtype=np.float32)
    # version 7 does not exist: its share goes to version 1
    _configure(repo, routes=(Route(version=7, weight=9.0), Route(version=1, weight=1.0)))
    async with running_service(repo) as service:
        versions = {(await service.infer(_request(x))).model_version for _ in range(30)}
        assert versions == {"1"}
    # no routed version is ready: the default version answers
    _configure(repo, default_version=1, routes=(Route(version=7, weight=1.0),))
    async with running_service(repo) as service:
        versions = {(await service.infer(_request(x))).model_version for _ in range(30)}
        assert versions == {"1"}


async def test_changed_routes_apply_without_a_reload(
    repo: Path, publish: Callable[..., Path]
) -> None:
    publish("clf", 1)
    publish("clf", 2)
    _configure(repo, default_version=1)
    x = np.zeros((1, N_FEATURES), dtype=np.float32)
    async with running_service(repo) as service:
        assert (await service.infer(_request(x))).model_version == "1"
        _configure(repo, default_version=1, routes=(Route(version=2, weight=1.0),))
        await service.load_model("clf")
        assert (await service.infer(_request(x))).model_version == "2"
        stats = {s.version: s for s in service.model_statistics("clf")}
        assert stats["1"].inference_count == 1  # version 1 kept serving, not reloaded
        _configure(repo, default_version=1)
        await service.load_model("clf")
        assert (await service.infer(_request(x))).model_version == "1"


async def test_a_shadow_scores_a_copy_and_never_changes_the_answer(
    repo: Path, publish: Callable[..., Path]
) -> None:
    _two_versions(
        repo,
        publish,
        Route(version=1, weight=1.0),
        Route(version=2, weight=1.0, variant=ModelVariant.SHADOW),
    )
    rng = np.random.default_rng(3)
    async with running_service(repo) as service:
        for _ in range(20):
            x = rng.normal(size=(2, N_FEATURES)).astype(np.float32)
            response = await service.infer(_request(x))
            assert response.model_version == "1"
            np.testing.assert_allclose(_probabilities(response), classifier_reference(1, x), 1e-5)
        await _drain_shadows(service)
        stats = {s.version: s for s in service.model_statistics("clf")}
        assert stats["1"].inference_count == 40
        assert stats["2"].inference_count == 40
        assert stats["2"].fail_count == 0


async def test_a_failing_shadow_is_counted_on_itself_and_the_caller_never_sees_it(
    repo: Path, publish: Callable[..., Path]
) -> None:
    publish("clf", 1)
    publish("clf", 2, n_features=N_FEATURES + 1)  # the shadow cannot take these inputs
    _configure(
        repo,
        routes=(
            Route(version=1, weight=1.0),
            Route(version=2, weight=1.0, variant=ModelVariant.SHADOW),
        ),
    )
    x = np.ones((1, N_FEATURES), dtype=np.float32)
    async with running_service(repo) as service:
        for _ in range(5):
            assert (await service.infer(_request(x))).model_version == "1"
        await _drain_shadows(service)
        stats = {s.version: s for s in service.model_statistics("clf")}
        assert stats["2"].fail_count == 5
        assert stats["2"].success_count == 0
        assert stats["1"].success_count == 5


async def test_predict_rows_names_the_variant_of_the_arm(
    repo: Path, publish: Callable[..., Path]
) -> None:
    _two_versions(
        repo,
        publish,
        Route(version=1, weight=1.0),
        Route(version=2, weight=1.0, variant=ModelVariant.TREATMENT),
    )
    row: list[Scalar] = [0.1] * N_FEATURES
    async with running_service(repo) as service:
        variants = {}
        for i in range(60):
            result = await service.predict_rows("clf", [row], routing_key=f"user-{i}")
            variants[result.model_version] = result.variant
        assert variants == {"1": "control", "2": "treatment"}
        plain = await service.predict_rows("clf", [row], version="2")
        assert plain.variant is None
        assert plain.model_version == "2"


def test_router_ignores_zero_weights_and_clamps_shadow_shares() -> None:
    class Handle:
        def __init__(self, version: int) -> None:
            self.version = version

    ready = cast("dict[int, LoadedVersion]", {1: Handle(1), 2: Handle(2)})
    routes = (
        Route(version=1, weight=0.0),
        Route(version=2, weight=2.0),
        Route(version=1, weight=5.0, variant=ModelVariant.SHADOW),
    )
    router = Router.build(routes, ready)
    assert router is not None
    for key in ("a", "b", None):
        arm = router.pick(key)
        assert arm is not None
        assert arm.handle is ready[2]
        assert router.shadows(key) == [ready[1]]  # share 5.0 is clamped to every request
    assert Router.build((Route(version=9, weight=1.0),), ready) is None
    assert Router.build((), ready) is None


@pytest.mark.parametrize("key", ["user-1", 17, 3.5, True])
def test_key_fraction_is_stable_across_processes(key: Scalar) -> None:
    import subprocess
    import sys

    code = f"from inference_server.routing import key_fraction; print(key_fraction({key!r}))"
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123"},
    )
    assert float(other.stdout) == key_fraction(key)
