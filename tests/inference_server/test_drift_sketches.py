"""Drift sketches over a real server: fed by HTTP and gRPC inference, binned on the version's
reference.json, read back merged through the admin endpoint and judged by the drift policy."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
from prometheus_client import generate_latest
from scipy import stats

from control_plane.drift import dataset_drift
from inference_server.app import InferenceServer
from inference_server.grpc._generated import grpc_service_pb2 as pb
from inference_server.grpc._generated import grpc_service_pb2_grpc as pbg
from modelyard.model_repository import publish_version
from modelyard.settings import ServerSettings, Settings
from modelyard.sketches import (
    CategoricalSketch,
    NumericSketch,
    build_reference_profile,
    decode_answer,
    decode_windows,
    encode,
    sketch_column,
)
from tests.inference_server.conftest import (
    classifier_bytes,
    classifier_reference,
    fit_mixed_type_pipeline,
)

ADMIN = "adm-" + "z" * 28
AUTH = {"authorization": f"Bearer {ADMIN}"}
NAMES = [f"f{i}" for i in range(4)]


def _reference(rng: np.random.Generator) -> tuple[np.ndarray, bytes]:
    x = rng.normal(size=(3000, 4)).astype(np.float32)
    score = classifier_reference(1, x)[:, 1]
    profile = build_reference_profile({n: x[:, i] for i, n in enumerate(NAMES)}, score=score)
    return x, encode(profile)


async def _start(repo: Path, **sketching: object) -> InferenceServer:
    """A server over ``repo``; ``sketching`` sets ``server.sketch_<name>`` settings."""
    settings = ServerSettings(
        model_repository=str(repo),
        grpc_port=0,
        http_port=0,
        metrics_port=None,
        control_mode="explicit",
        admin_token=ADMIN,
        **{f"sketch_{name}": value for name, value in sketching.items()},  # type: ignore[arg-type]
    )
    server = InferenceServer(Settings(server=settings))
    await server.start()
    return server


@pytest.fixture
async def served(repo: Path) -> AsyncIterator[InferenceServer]:
    _, reference = _reference(np.random.default_rng(0))
    publish_version(
        repo, "clf", 1, {"model.onnx": classifier_bytes(1), "reference.json": reference}
    )
    publish_version(repo, "plain", 1, {"model.onnx": classifier_bytes(2)})
    server = await _start(repo)
    yield server
    await server.stop()


def _http_body(x: np.ndarray) -> dict[str, object]:
    return {"inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP32",
                        "data": x.ravel().tolist()}]}  # fmt: skip


async def test_served_inputs_and_scores_are_sketched_on_the_reference_bins_and_judged(
    served: InferenceServer,
) -> None:
    rng = np.random.default_rng(1)
    batches = [rng.normal(size=(int(rng.integers(1, 9)), 4)).astype(np.float32) for _ in range(60)]
    for batch in batches:
        batch[:, 0] += 1.5  # f0 drifts; f1..f3 do not
    base = f"http://127.0.0.1:{served.http_port}"
    async with httpx.AsyncClient(base_url=base) as http:
        for batch in batches[:40]:
            answer = await http.post("/v2/models/clf/infer", json=_http_body(batch))
            assert answer.status_code == 200, answer.text
        async with grpc.aio.insecure_channel(f"127.0.0.1:{served.grpc_port}") as channel:
            stub = pbg.GRPCInferenceServiceStub(channel)
            for batch in batches[40:]:
                tensor = pb.ModelInferRequest.InferInputTensor(
                    name="input", datatype="FP32", shape=batch.shape
                )
                await stub.ModelInfer(
                    pb.ModelInferRequest(
                        model_name="clf", inputs=[tensor], raw_input_contents=[batch.tobytes()]
                    )
                )
        answer = await http.get("/v2/models/clf/versions/1/sketches", headers=AUTH)
    assert answer.status_code == 200, answer.text
    result = decode_answer(answer.content)
    sketches = decode_windows(answer.content)  # what the control plane's client reads
    sent = np.concatenate(batches)
    reference, _ = _reference(np.random.default_rng(0))
    assert result.workers_applied == 1
    assert (sketches.requests, sketches.served, sketches.rows) == (60, 60, len(sent))
    profile = served.manager.slot("clf").ready[1].reference
    assert profile is not None
    for i, name in enumerate(NAMES):
        assert sketches.features[name] == sketch_column(sent[:, i], profile.features[name])
    assert isinstance(sketches.score, NumericSketch)
    assert sketches.score.n == len(sent)
    assert sketches.score.edges == profile.score.edges  # type: ignore[union-attr]
    verdict = dataset_drift(profile, sketches)
    assert verdict.features[0].drifted  # the shifted feature
    for i, feature in enumerate(verdict.features):  # every score as on the raw samples
        raw = stats.wasserstein_distance(reference[:, i], sent[:, i]) / np.std(reference[:, i])
        assert feature.score == pytest.approx(raw, rel=0.01)
    assert verdict.score is not None
    assert verdict.score.current_size == len(sent)


async def test_a_version_without_reference_gets_log_histograms(served: InferenceServer) -> None:
    x = np.random.default_rng(2).normal(size=(50, 4)).astype(np.float32)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{served.http_port}") as http:
        assert (await http.post("/v2/models/plain/infer", json=_http_body(x))).status_code == 200
        answer = await http.get("/v2/models/plain/versions/1/sketches", headers=AUTH)
    sketches = decode_answer(answer.content)
    f0 = sketches.features["f0"]
    assert isinstance(f0, NumericSketch)
    assert f0.histogram is not None
    assert f0 == sketch_column(x[:, 0])
    assert sketches.score is not None
    assert sketches.score.n == 50


async def test_the_range_selects_windows(served: InferenceServer) -> None:
    x = np.zeros((2, 4), np.float32)
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{served.http_port}") as http:
        await http.post("/v2/models/clf/infer", json=_http_body(x))
        path = "/v2/models/clf/versions/1/sketches"
        old = decode_answer((await http.get(f"{path}?until=1000", headers=AUTH)).content)
        new = decode_answer((await http.get(f"{path}?since={later}", headers=AUTH)).content)
        now = decode_answer(
            (await http.get(f"{path}?since=1000&until={later}", headers=AUTH)).content
        )
    assert (old.rows, new.rows, now.rows) == (0, 0, 2)


@pytest.mark.parametrize(
    ("path", "headers", "status", "problem"),
    [
        ("/v2/models/clf/versions/1/sketches", {}, 401, "bearer"),
        ("/v2/models/clf/versions/1/sketches", {"authorization": "Bearer no"}, 401, "bearer"),
        ("/v2/models/clf/versions/1/sketches?since=yesterday", AUTH, 400, "since='yesterday'"),
        ("/v2/models/clf/versions/1/sketches?since=2000&until=1000", AUTH, 400, "before until"),
        ("/v2/models/clf/versions/1/sketches?window=5", AUTH, 400, "'window'"),
        # NOTE: past year 9999 in UTC: a 500 before (the fan-out's message overflowed)
        (
            "/v2/models/clf/versions/1/sketches?since=9999-12-31T23:59:59-14:00",
            AUTH,
            400,
            "within years 1-9999",
        ),
        (
            "/v2/models/clf/versions/1/sketches?until=0001-01-01T00:00:00%2B14:00",
            AUTH,
            400,
            "within years 1-9999",
        ),
        ("/v2/models/clf/versions/x/sketches", AUTH, 400, "name a version"),
        ("/v2/models/clf/sketches", AUTH, 400, "name a version"),
        ("/v2/models/nope/versions/1/sketches", AUTH, 404, "nope"),
    ],
)
async def test_sketch_reads_are_guarded_and_bad_ones_named(
    served: InferenceServer, path: str, headers: dict[str, str], status: int, problem: str
) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{served.http_port}") as http:
        answer = await http.get(path, headers=headers)
    assert answer.status_code == status, answer.text
    assert problem in answer.json()["error"].lower()


async def test_an_empty_answer_never_ends_before_it_starts(served: InferenceServer) -> None:
    """Nothing sketched in the range: the answer's range is the asked one completed with now
    (``until`` in the past and no ``since`` gave start = now, end = 1970 before)."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{served.http_port}") as http:
        for query in ("until=0", "since=4000000000", "since=1&until=2"):
            answer = await http.get(f"/v2/models/clf/versions/1/sketches?{query}", headers=AUTH)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["rows"] == 0
            assert body["start"] <= body["end"], (query, body["start"], body["end"])


async def test_sampling_sketches_the_configured_share(repo: Path) -> None:
    _, reference = _reference(np.random.default_rng(0))
    publish_version(
        repo, "clf", 1, {"model.onnx": classifier_bytes(1), "reference.json": reference}
    )
    server = await _start(repo, sample_rate=0.25)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
            for _ in range(40):
                await http.post(
                    "/v2/models/clf/infer", json=_http_body(np.ones((3, 4), np.float32))
                )
            answer = await http.get("/v2/models/clf/versions/1/sketches", headers=AUTH)
    finally:
        await server.stop()
    sketches = decode_answer(answer.content)
    assert (sketches.served, sketches.requests, sketches.rows) == (40, 10, 30)


async def test_a_malformed_reference_fails_the_load_with_the_reason(repo: Path) -> None:
    publish_version(repo, "clf", 1, {"model.onnx": classifier_bytes(1), "reference.json": b"{"})
    server = await _start(repo)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
            answer = await http.post("/v2/repository/models/clf/load", headers=AUTH)
    finally:
        await server.stop()
    assert answer.status_code == 409, answer.text
    assert "clf/1/reference.json: malformed reference profile" in answer.json()["error"]


async def test_string_inputs_are_counted_as_categories_with_new_ones_capped(repo: Path) -> None:
    pipeline, frame, model = fit_mixed_type_pipeline()
    score = pipeline.predict_proba(frame)[:, 1]
    profile = build_reference_profile(
        {"age": frame["age"].to_numpy(), "city": frame["city"].to_numpy()}, score=score
    )
    publish_version(repo, "churn", 1, {"model.onnx": model, "reference.json": encode(profile)})
    server = await _start(repo, max_categories=1)
    cities = ["oslo", "lima", "pune", "rome", "paris", "rome"] * 20
    rows = [{"age": 40.0 + i % 7, "city": c} for i, c in enumerate(cities)]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
            for start in range(0, len(rows), 12):
                answer = await http.post(
                    "/predict/batch?model=churn", json=rows[start : start + 12]
                )
                assert answer.status_code == 200, answer.text
            answer = await http.get("/v2/models/churn/versions/1/sketches", headers=AUTH)
    finally:
        await server.stop()
    sketches = decode_answer(answer.content)
    city = sketches.features["city"]
    assert isinstance(city, CategoricalSketch)
    # the reference's cities always, one new city (the cap), the rest pooled
    assert city.counts == {"lima": 20, "oslo": 20, "paris": 20, "pune": 20}
    assert city.other == 40
    verdict = dataset_drift(profile, sketches)
    by_name = {f.feature: f for f in verdict.features}
    assert by_name["city"].method.value == "chisquare"
    assert by_name["city"].drifted  # cities the reference never had
    assert by_name["age"].method.value == "ks"


async def test_a_full_sketch_queue_drops_and_counts_instead_of_waiting(repo: Path) -> None:
    publish_version(repo, "clf", 1, {"model.onnx": classifier_bytes(1)})
    server = await _start(repo, queue_size=1, flush_interval_s=3600.0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
            for _ in range(5):
                answer = await http.post("/v2/models/clf/infer", json=_http_body(np.ones((1, 4))))
                assert answer.status_code == 200
            answer = await http.get("/v2/models/clf/versions/1/sketches", headers=AUTH)
        dropped = server.sketches.dropped
        exposition = generate_latest(server.hooks.registry).decode()
    finally:
        await server.stop()
    sketches = decode_answer(answer.content)
    assert (sketches.served, sketches.requests, dropped) == (5, 1, 4)
    assert "modelyard_sketch_dropped_total 4.0" in exposition
    assert "modelyard_sketch_queued_total 1.0" in exposition
