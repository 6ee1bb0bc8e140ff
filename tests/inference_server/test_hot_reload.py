"""Hot reload: atomic swaps under load, half-written and broken versions, control modes."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import numpy as np
import pytest

from inference_server.app import InferenceServer
from inference_server.grpc._generated import grpc_service_pb2 as pb
from modelyard.errors import ConfigurationError, FailedPrecondition, NotFound, Unavailable
from modelyard.model_repository import publish_version
from modelyard.settings import ServerSettings, Settings

from .conftest import classifier_bytes, classifier_reference

if TYPE_CHECKING:
    from collections.abc import Callable

    from inference_server.grpc._generated import grpc_service_pb2_grpc as pbg
    from inference_server.service import InferenceService

X = np.random.default_rng(42).normal(size=(1, 4)).astype(np.float32)
EXPECTED = {v: classifier_reference(v, X) for v in range(1, 13)}


def _request(version: str = "") -> pb.ModelInferRequest:
    tensor = pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP32", shape=X.shape)
    return pb.ModelInferRequest(
        model_name="clf",
        model_version=version,
        inputs=[tensor],
        raw_input_contents=[X.tobytes()],
    )


class Load:
    """Closed-loop clients that check every answer against the version it names."""

    def __init__(self, stub: pbg.GRPCInferenceServiceStub, clients: int) -> None:
        self.stub = stub
        self.clients = clients
        self.samples: list[tuple[float, float, str]] = []  # (start, latency, version)
        self.failures: list[str] = []
        self.stop = False

    async def _client(self) -> None:
        request = _request()
        while not self.stop:
            start = time.perf_counter()
            try:
                resp = await self.stub.ModelInfer(request)
            except grpc.aio.AioRpcError as exc:
                self.failures.append(f"{exc.code()}: {exc.details()}")
                continue
            latency = time.perf_counter() - start
            names = [o.name for o in resp.outputs]
            probs = np.frombuffer(resp.raw_output_contents[names.index("probabilities")], "<f4")
            if not np.allclose(probs.reshape(1, 2), EXPECTED[int(resp.model_version)], rtol=1e-5):
                self.failures.append(f"answer does not match version {resp.model_version}")
            self.samples.append((start, latency, resp.model_version))

    async def run(self) -> asyncio.Future[list[None]]:
        return asyncio.gather(*(self._client() for _ in range(self.clients)))

    def p99(self, since: float, until: float) -> float:
        window = [lat for start, lat, _ in self.samples if since <= start < until]
        assert len(window) > 100, len(window)
        return float(np.percentile(window, 99))


async def _wait_for_version(load: Load, version: str, limit_s: float = 20.0) -> None:
    deadline = time.perf_counter() + limit_s
    while time.perf_counter() < deadline:
        if load.samples and load.samples[-1][2] == version:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"version {version} never answered")


@pytest.mark.slow
async def test_ten_swaps_under_load_lose_nothing(
    server: InferenceServer, stub: pbg.GRPCInferenceServiceStub, repo: Path
) -> None:
    models = {v: classifier_bytes(v) for v in range(2, 12)}
    load = Load(stub, clients=8)
    clients = await load.run()
    await _wait_for_version(load, "1")  # the load is flowing
    # NOTE: latency during swaps is a benchmark figure, not asserted here (a p99 bound in a
    # unit test failed under CI load: performance lives in benchmarks/, docs/architecture.md).
    for version in range(2, 12):
        files = {"model.onnx": models[version]}
        await asyncio.to_thread(publish_version, repo, "clf", version, files)  # off the loop
        await _wait_for_version(load, str(version))
    load.stop = True
    await clients
    assert load.failures == []
    seen = {v for _, _, v in load.samples}
    assert seen == {str(v) for v in range(1, 12)}
    index = await server.service.repository_index()
    assert [(m.version, m.state) for m in index] == [("11", "READY")]


async def _until_state(
    service: InferenceService, version: int, state: str | None, limit_s: float = 30.0
) -> None:
    deadline = time.perf_counter() + limit_s
    while True:
        index = {m.version: m.state for m in await service.repository_index()}
        if index.get(str(version)) == state:
            return
        assert time.perf_counter() < deadline, f"version {version} never {state}: {index}"
        await asyncio.sleep(0.01)


async def _default_version(service: InferenceService, name: str = "clf") -> str:
    from inference_server.core.types import InferRequest, RequestInput

    request = InferRequest(
        model_name=name,
        inputs=[RequestInput(name="input", datatype="FP32", shape=X.shape, data=X)],
    )
    version: str = (await service.infer(request)).model_version
    return version


async def test_half_written_and_broken_versions_never_serve(
    server: InferenceServer, repo: Path
) -> None:
    service = server.service
    model_dir = repo / "clf"
    (model_dir / ".2.tmp-abc").mkdir()
    (model_dir / ".2.tmp-abc" / "model.onnx").write_bytes(classifier_bytes(2))
    (model_dir / "3").mkdir()  # a version directory still being filled
    (model_dir / "3" / "model.onnx.partial").write_bytes(classifier_bytes(3)[:10])
    (model_dir / "4").mkdir()  # copied in place and caught half-way
    (model_dir / "4" / "model.onnx").write_bytes(classifier_bytes(4)[:200])
    await _until_state(service, 4, "UNAVAILABLE")
    assert (await _default_version(service)) == "1"
    meta = service.model_metadata("clf")
    assert meta.versions == ["1"]
    assert "version 4" in meta.parameters["error"]
    index = {(m.version, m.state) for m in await service.repository_index()}
    assert index == {("1", "READY"), ("4", "UNAVAILABLE")}
    with pytest.raises(Unavailable, match="version 4 is UNAVAILABLE"):
        service.model_metadata("clf", "4")
    with pytest.raises(NotFound):
        service.model_metadata("clf", "3")
    # the copy finishes: the fingerprint changes and the version loads and takes over
    (model_dir / "4" / "model.onnx").write_bytes(classifier_bytes(4))
    await _until_state(service, 4, "READY")
    assert (await _default_version(service)) == "4"
    assert "error" not in service.model_metadata("clf").parameters


async def test_explicit_mode_and_config_default_version(repo: Path) -> None:
    publish_version(repo, "clf", 1, {"model.onnx": classifier_bytes(1)})
    publish_version(repo, "clf", 2, {"model.onnx": classifier_bytes(2)})
    (repo / "clf" / "config.json").write_text(
        json.dumps({"version_policy": {"kind": "all"}, "default_version": 1})
    )
    settings = Settings(
        server=ServerSettings(
            model_repository=str(repo),
            grpc_port=0,
            http_port=None,
            metrics_port=None,
            control_mode="explicit",
        )
    )
    srv = InferenceServer(settings)
    await srv.start()
    try:
        service = srv.service
        assert service.model_metadata("clf").versions == ["1", "2"]
        assert (await _default_version(service)) == "1"
        publish_version(repo, "clf", 3, {"model.onnx": classifier_bytes(3)})
        await asyncio.sleep(0.1)
        assert service.model_metadata("clf").versions == ["1", "2"]  # explicit: no polling
        await service.load_model("clf")
        assert service.model_metadata("clf").versions == ["1", "2", "3"]
        assert (await _default_version(service)) == "1"
        await service.unload_model("clf")
        with pytest.raises(NotFound):
            await _default_version(service)
        with pytest.raises(NotFound):
            await service.load_model("nope")
    finally:
        await srv.stop()


async def test_model_without_any_ready_version_is_retryable(repo: Path) -> None:
    (repo / "broken" / "1").mkdir(parents=True)
    (repo / "broken" / "1" / "model.onnx").write_bytes(b"not an onnx model")
    settings = Settings(
        server=ServerSettings(
            model_repository=str(repo),
            grpc_port=0,
            http_port=None,
            metrics_port=None,
            control_mode="poll",
            poll_interval_s=0.05,
        )
    )
    srv = InferenceServer(settings)
    await srv.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{srv.grpc_port}")
    try:
        from inference_server.grpc._generated import grpc_service_pb2_grpc as pbg

        stub = pbg.GRPCInferenceServiceStub(channel)
        request = _request()
        request.model_name = "broken"
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ModelInfer(request)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        details = info.value.details()
        assert details is not None
        assert "not a loadable ONNX model" in details
        ready = await stub.ModelReady(pb.ModelReadyRequest(name="broken"))
        assert not ready.ready
    finally:
        await channel.close(None)
        await srv.stop()


async def test_explicit_load_reports_a_failed_version_and_keeps_serving(
    server: InferenceServer, repo: Path
) -> None:
    service = server.service
    (repo / "clf" / "2").mkdir()
    (repo / "clf" / "2" / "model.onnx").write_bytes(b"garbage")
    with pytest.raises(FailedPrecondition, match=r"version 2: .*still serving \[1\]"):
        await service.load_model("clf")
    assert (await _default_version(service)) == "1"


async def test_a_model_that_cannot_be_synced_does_not_stop_the_polling(
    server: InferenceServer,
    repo: Path,
    tmp_path: Path,
    publish: Callable[..., Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before, the poller caught only OSError: a loaded model whose folder became a symlink out
    of the repository (InvalidArgument) ended the polling task, and no new model or version was
    loaded again until a restart."""
    outside = tmp_path / "outside"
    outside.mkdir()
    await server.watcher.stop()  # NOTE: a poll between the two steps would unload clf
    (repo / "clf").rename(outside / "clf")
    (repo / "clf").symlink_to(outside / "clf")
    await server.watcher.start(scan=False)
    for _ in range(400):
        if "model 'clf' failed" in caplog.text:
            break
        await asyncio.sleep(0.05)  # a poll period
    assert "resolves outside the model repository" in caplog.text
    publish("other", 1)  # a model the polling must still find
    for _ in range(400):
        if "other" in {s.name for s in server.manager.slots() if s.ready}:
            break
        await asyncio.sleep(0.05)
    assert await _default_version(server.service, "other") == "1"
    assert await _default_version(server.service) == "1"  # clf keeps serving what it loaded
    assert caplog.text.count("model 'clf' failed") == 1  # logged once, not at every poll


async def test_missing_repository_is_a_configuration_error(tmp_path: Path) -> None:
    settings = Settings(
        server=ServerSettings(
            model_repository=str(tmp_path / "nope"), grpc_port=0, http_port=None, metrics_port=None
        )
    )
    with pytest.raises(ConfigurationError, match="not a directory"):
        await InferenceServer(settings).start()


async def test_config_change_reloads_only_when_serving_settings_change(
    server: InferenceServer, repo: Path
) -> None:
    from modelyard.model_repository import BatchingConfig, ModelConfig, write_model_config

    service = server.service
    before = service.model_statistics("clf")[0]
    # the file names the batching the version runs with (the server's default): no serving change
    batching = server.settings.server.default_batching
    write_model_config(repo / "clf", ModelConfig(default_version=1, batching=batching))
    await service.load_model("clf")
    assert service.model_statistics("clf")[0] is before  # same loaded version object's stats
    write_model_config(
        repo / "clf", ModelConfig(batching=BatchingConfig(enabled=False), allow_non_finite=True)
    )
    await service.load_model("clf")
    assert not service.model_config("clf").dynamic_batching
    bad = np.array([[np.nan, 0, 0, 0]], np.float32)
    from inference_server.core.types import InferRequest, RequestInput

    request = InferRequest(
        model_name="clf",
        inputs=[RequestInput(name="input", datatype="FP32", shape=(1, 4), data=bad)],
    )
    assert (await service.infer(request)).model_version == "1"  # NaN now allowed


@pytest.mark.parametrize(
    "server",
    [dict(max_batch_size=16, max_queue_delay_us=500, queue_capacity=77, queue_timeout_ms=9)],
    indirect=True,
)
async def test_a_partial_batching_section_takes_the_servers_settings_for_the_rest(
    server: InferenceServer, repo: Path
) -> None:
    service = server.service
    (repo / "clf" / "config.json").write_text(json.dumps({"batching": {"max_batch_size": 8}}))
    await service.load_model("clf")
    config = service.model_config("clf")
    assert config.max_batch_size == 8  # the file's key
    assert (config.max_queue_delay_us, config.max_queue_size) == (500, 77)  # the server's
    assert config.default_queue_timeout_us == 9000


@pytest.mark.parametrize(
    "server",
    [dict(max_batch_size=16, max_queue_delay_us=500, queue_capacity=77, queue_timeout_ms=9)],
    indirect=True,
)
async def test_an_older_registrys_pinned_defaults_take_the_servers_settings(
    server: InferenceServer, repo: Path
) -> None:
    from tests.modelyard.test_model_repository import LEGACY_REGISTRY_FILES

    service = server.service
    (repo / "clf" / "config.json").write_text(LEGACY_REGISTRY_FILES[-1])
    await service.load_model("clf")
    config = service.model_config("clf")
    assert config.max_batch_size == 16
    assert (config.max_queue_delay_us, config.max_queue_size) == (500, 77)
    assert config.default_queue_timeout_us == 9000  # not the 0 (no limit) the file pinned


async def test_removed_versions_stop_serving(server: InferenceServer, repo: Path) -> None:
    from modelyard.model_repository import remove_version

    service = server.service
    publish_version(repo, "clf", 2, {"model.onnx": classifier_bytes(2)})
    await _until_state(service, 2, "READY")
    await _until_state(service, 1, None)
    remove_version(repo, "clf", 2)  # version 1 is still on disk: latest-1 serves it again
    await _until_state(service, 1, "READY")
    await _until_state(service, 2, None)
    assert (await _default_version(service)) == "1"
    remove_version(repo, "clf", 1)
    await _until_state(service, 1, None)
    with pytest.raises(Unavailable, match="no version ready"):
        await _default_version(service)
    import shutil

    shutil.rmtree(repo / "clf")
    deadline = time.perf_counter() + 30
    while True:
        try:
            await _default_version(service)
        except NotFound:
            break
        except Unavailable:
            assert time.perf_counter() < deadline
            await asyncio.sleep(0.01)
