"""Properties 17 and 19 over a real server (gRPC and HTTP), on SQLite and PostgreSQL.

17: every answered row is recorded exactly once (generated request mixes: protocols, row
counts, client ids or none, named versions or the default). 19: with an A/B route (control,
treatment and a shadow arm) every record carries its variant, and shadow copies are marked.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inference_server.app import InferenceServer
from inference_server.grpc._generated import grpc_service_pb2 as pb
from inference_server.grpc._generated import grpc_service_pb2_grpc as pbg
from modelyard.enums import ModelVariant
from modelyard.model_repository import (
    BatchingConfig,
    ModelConfig,
    Route,
    VersionPolicy,
    publish_version,
    write_model_config,
)
from modelyard.prediction_log import PredictionRecord
from tests.conftest import SyncDatabase
from tests.inference_server.conftest import classifier_bytes
from tests.inference_server.prediction_log.conftest import (
    N_FEATURES,
    infer_http,
    log_settings,
    logged,
    logging_server,
)

property_settings = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Live:
    """A started server plus its clients, bound to the sync database's loop."""

    def __init__(self, server: InferenceServer, http: httpx.AsyncClient, channel: Any) -> None:
        self.server = server
        self.http = http
        self.stub = pbg.GRPCInferenceServiceStub(channel)


def _repo(tmp_path: Path, routes: tuple[Route, ...] = (), batching: bool = True) -> Path:
    repo = tmp_path / ("repo" if batching else "repo-unbatched")
    for version in (1, 2, 3):
        publish_version(repo, "clf", version, {"model.onnx": classifier_bytes(version)})
    write_model_config(
        repo / "clf",
        ModelConfig(
            version_policy=VersionPolicy(kind="all"),
            default_version=2,
            routes=routes,
            batching=BatchingConfig(enabled=batching),
        ),
    )
    return repo


@pytest.fixture
def live_factory(sync_database: SyncDatabase, tmp_path: Path) -> Iterator[Any]:
    started: list[tuple[Any, ...]] = []

    def start(routes: tuple[Route, ...] = (), batching: bool = True) -> Live:
        repo = _repo(tmp_path, routes, batching)
        log = log_settings(
            sync_database.database, tmp_path / ("spool" if batching else "spool-unbatched")
        )
        context = logging_server(repo, log)
        server = sync_database.run(context.__aenter__())
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}", timeout=30)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        started.append((context, http, channel))
        return Live(server, http, channel)

    yield start
    for context, http, channel in started:
        sync_database.run(http.aclose())
        sync_database.run(channel.close())
        sync_database.run(context.__aexit__(None, None, None))


Sent = tuple[str, str, int, str | None, np.ndarray]
"""(protocol, request id answered, version answered, routing key, rows sent)."""


async def _send(
    live: Live, protocol: str, x: np.ndarray, rid: str | None, version: str | None, key: str | None
) -> Sent:
    params = {} if key is None else {"routing_key": key}
    if protocol == "grpc":
        request = pb.ModelInferRequest(model_name="clf", model_version=version or "", id=rid or "")
        tensor = request.inputs.add(name="input", datatype="FP32", shape=list(x.shape))
        tensor.contents.fp32_contents.extend(x.ravel().tolist())
        if key is not None:
            request.parameters["routing_key"].string_param = key
        answer = await live.stub.ModelInfer(request)
        return protocol, answer.id, int(answer.model_version), key, x
    if protocol == "http":
        path_model = "clf" if version is None else f"clf/versions/{version}"
        body = await infer_http(live.http, path_model, x, rid, **params)
        return protocol, body["id"], int(body["model_version"]), key, x
    query: dict[str, str] = {"model": "clf"}
    if version is not None:
        query["version"] = version
    if key is not None:
        query["routing_key"] = key
    rows = [dict(zip([f"f{i}" for i in range(N_FEATURES)], r, strict=True)) for r in x.tolist()]
    answer = await live.http.post("/predict/batch", params=query, json=rows)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return "http", body["id"], int(body["version"]), key, x


request_mix = st.lists(
    st.tuples(
        st.sampled_from(["grpc", "http", "simple"]),
        st.integers(1, 5),
        st.booleans(),
        st.sampled_from([None, "1", "3"]),
    ),
    min_size=1,
    max_size=25,
)


def _by_key(records: list[PredictionRecord]) -> dict[tuple[str, bool], list[PredictionRecord]]:
    grouped: dict[tuple[str, bool], list[PredictionRecord]] = collections.defaultdict(list)
    for record in records:
        grouped[(record.request_id, record.shadow)].append(record)
    return grouped


@property_settings
@given(mix=request_mix, seed=st.integers(0, 2**16))
def test_property_17_every_answered_row_is_logged_exactly_once(
    sync_database: SyncDatabase, live_factory: Any, mix: list[Any], seed: int
) -> None:
    # Concurrent requests on the default batcher: runs of several requests are logged whole.
    live = live_factory() if not hasattr(live_factory, "live") else live_factory.live
    live_factory.live = live
    _check_every_row_logged_once(sync_database, live, mix, seed)


@property_settings
@given(mix=request_mix, seed=st.integers(0, 2**16))
def test_property_17_every_row_is_logged_exactly_once_without_batching(
    sync_database: SyncDatabase, live_factory: Any, mix: list[Any], seed: int
) -> None:
    # Batching off: every request is a session run of its own (the direct path's tap).
    if not hasattr(live_factory, "unbatched"):
        live_factory.unbatched = live_factory(batching=False)
    _check_every_row_logged_once(sync_database, live_factory.unbatched, mix, seed)


def _check_every_row_logged_once(
    sync_database: SyncDatabase, live: Live, mix: list[Any], seed: int
) -> None:
    rng = np.random.default_rng(seed)

    async def scenario() -> tuple[list[Sent], list[PredictionRecord]]:
        sends = [
            _send(
                live,
                protocol,
                rng.normal(size=(rows, N_FEATURES)).astype(np.float32),
                f"c-{uuid.uuid4().hex}" if with_id else None,
                version,
                None,
            )
            for protocol, rows, with_id, version in mix
        ]
        sent = await asyncio.gather(*sends)
        assert live.server.log_writer is not None
        assert await live.server.log_writer.flush(30)
        return sent, await logged(sync_database.database)

    sent, records = sync_database.run(scenario())
    grouped = _by_key(records)
    assert len({rid for _, rid, *_ in sent}) == len(sent), "request ids must be unique"
    for protocol, rid, version, _, x in sent:
        rows = grouped.pop((rid, False))
        assert sorted(r.row_index for r in rows) == list(range(len(x))), (rid, rows)
        for record in rows:
            assert record.version == version
            assert record.model == "clf"
            assert record.protocol == protocol
            assert record.variant == "none"
            expected = x[record.row_index].tolist()
            assert [record.inputs[f"f{i}"] for i in range(N_FEATURES)] == expected
            assert set(record.outputs) == {"label", "probabilities"}
            assert record.latency_ms > 0
    assert not grouped, f"records of requests never answered: {list(grouped)[:3]}"
    # NOTE: the next example starts from an empty log.
    sync_database.run(_truncate(sync_database))


async def _truncate(sync_database: SyncDatabase) -> None:
    from modelyard.prediction_log import prediction_log

    async with sync_database.database.write() as conn:
        await conn.execute(prediction_log.delete())


ROUTES = (
    Route(version=1, weight=0.5),
    Route(version=2, weight=0.5, variant=ModelVariant.TREATMENT),
    Route(version=3, weight=1.0, variant=ModelVariant.SHADOW),
)


@property_settings
@given(
    mix=st.lists(
        st.tuples(
            st.sampled_from(["grpc", "http", "simple"]),
            st.integers(1, 3),
            st.one_of(st.none(), st.text("abcdef0123456789", min_size=1, max_size=8)),
            st.sampled_from([None, None, "2"]),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_property_19_the_variant_is_on_every_record(
    sync_database: SyncDatabase, live_factory: Any, mix: list[Any]
) -> None:
    live = live_factory(ROUTES) if not hasattr(live_factory, "live") else live_factory.live
    live_factory.live = live
    rng = np.random.default_rng(len(mix))
    arm_of = {1: "control", 2: "treatment"}

    async def scenario() -> tuple[list[Sent], list[PredictionRecord]]:
        sends = [
            _send(
                live,
                protocol,
                rng.normal(size=(rows, N_FEATURES)).astype(np.float32),
                None,
                version,
                key,
            )
            for protocol, rows, key, version in mix
        ]
        sent = await asyncio.gather(*sends)
        await _wait_for_shadows(live.server)
        assert live.server.log_writer is not None
        assert await live.server.log_writer.flush(30)
        return sent, await logged(sync_database.database)

    sent, records = sync_database.run(scenario())
    assert all(r.variant in ("control", "treatment", "shadow", "none") for r in records)
    grouped = _by_key(records)
    for (_, rid, version, key, x), (*_, named) in zip(sent, mix, strict=True):
        served = grouped.pop((rid, False))
        assert len(served) == len(x)
        expected = "none" if named else arm_of[version]
        assert {(r.variant, r.version, r.routing_key) for r in served} == {(expected, version, key)}
        shadows = grouped.pop((rid, True), [])
        if named:
            assert shadows == []  # a request naming a version is never routed
        else:
            assert len(shadows) == len(x)
            assert {(r.variant, r.version) for r in shadows} == {("shadow", 3)}
    assert not grouped
    sync_database.run(_truncate(sync_database))


async def _wait_for_shadows(server: InferenceServer) -> None:
    tasks = server.service._shadow_tasks
    while tasks:
        await asyncio.gather(*tasks)
