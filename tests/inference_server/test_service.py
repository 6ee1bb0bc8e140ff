"""InferenceService over real tiny ONNX models in a temporary repository."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inference_server.core.types import InferRequest, RequestedOutput, RequestInput
from inference_server.service import InferenceService
from modelyard.errors import InvalidArgument, NotFound

from .conftest import classifier_reference, running_service


@pytest.fixture
async def service(repo: Path, publish: Callable[..., Path]) -> AsyncIterator[InferenceService]:
    publish("clf", 1)
    async with running_service(repo) as svc:
        yield svc


def _request(x: np.ndarray, **kw: Any) -> InferRequest:
    return InferRequest(
        model_name="clf",
        inputs=[RequestInput(name="input", datatype="FP32", shape=x.shape, data=x)],
        **kw,
    )


async def test_infer_matches_reference(service: InferenceService) -> None:
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    response = await service.infer(_request(x, id="r1", parameters={"a": 1}))
    assert response.model_version == "1"
    assert response.id == "r1"
    assert response.parameters == {"a": 1}
    out = {o.name: o for o in response.outputs}
    np.testing.assert_allclose(out["probabilities"].data, classifier_reference(1, x), rtol=1e-5)
    assert out["label"].shape == (5,)
    assert out["label"].datatype == "INT64"


async def test_requested_outputs_and_unknown(service: InferenceService) -> None:
    x = np.zeros((1, 4), dtype=np.float32)
    response = await service.infer(_request(x, outputs=[RequestedOutput(name="label")]))
    assert [o.name for o in response.outputs] == ["label"]
    with pytest.raises(InvalidArgument, match="unknown output 'nope'"):
        await service.infer(_request(x, outputs=[RequestedOutput(name="nope")]))


async def test_concurrent_requests_are_batched_and_split(service: InferenceService) -> None:
    import asyncio

    rng = np.random.default_rng(2)
    xs = [rng.normal(size=(int(n), 4)).astype(np.float32) for n in rng.integers(1, 5, size=40)]
    responses = await asyncio.gather(*(service.infer(_request(x)) for x in xs))
    for x, r in zip(xs, responses, strict=False):
        probs = {o.name: o.data for o in r.outputs}["probabilities"]
        np.testing.assert_allclose(probs, classifier_reference(1, x), rtol=1e-5)
    stats = service.model_statistics("clf")[0]
    assert stats.inference_count == sum(len(x) for x in xs) + 0
    assert stats.execution_count < len(xs)


async def test_errors(service: InferenceService) -> None:
    x = np.zeros((1, 4), dtype=np.float32)
    with pytest.raises(NotFound):
        await service.infer(InferRequest(model_name="nope", inputs=[]))
    with pytest.raises(NotFound):
        await service.infer(_request(x, model_version="7"))
    with pytest.raises(InvalidArgument, match="4 features"):
        await service.infer(_request(np.zeros((1, 3), dtype=np.float32)))
    for value in (np.nan, np.inf, -np.inf):
        bad = np.array([[value, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32)
        with pytest.raises(InvalidArgument, match="NaN"):
            await service.infer(_request(bad))
    assert (await service.infer(_request(x))).model_version == "1"


async def test_predict_rows(service: InferenceService) -> None:
    result = await service.predict_rows("clf", [{"f0": 1, "f1": 2, "f2": 3, "f3": 4}, [0, 0, 0, 0]])
    assert result.model_version == "1"
    assert result.labels is not None
    assert len(result.labels) == 2
    assert result.probabilities is not None
    assert len(result.probabilities[0]) == 2
    assert result.class_labels == [0, 1]


async def test_metadata_config_index(service: InferenceService) -> None:
    meta = service.model_metadata("clf")
    assert meta.versions == ["1"]
    assert meta.inputs[0].shape == [-1, 4]
    config = service.model_config("clf")
    assert config.max_batch_size == 64
    assert config.inputs[0].shape == [4]
    index = await service.repository_index()
    assert [(m.name, m.version, m.state) for m in index] == [("clf", "1", "READY")]
    assert service.model_ready("clf")
    assert service.server_ready()
    await service.unload_model("clf")
    with pytest.raises(NotFound):
        service.model_ready("clf")
    await service.load_model("clf")
    assert service.model_ready("clf", "1")


def test_raw_decoding_refuses_impossible_shapes_without_allocating() -> None:
    from inference_server.core.tensors import decode_raw

    with pytest.raises(InvalidArgument, match="cannot hold"):
        decode_raw("s", "BYTES", (10**12, 1), b"\0\0\0\0")
    with pytest.raises(InvalidArgument, match="needs"):
        decode_raw("x", "FP32", (10**12, 4), b"\0" * 16)
    with pytest.raises(InvalidArgument, match="negative"):
        decode_raw("x", "FP32", (-1, 4), b"\0" * 16)


async def test_max_rows_per_request_from_config_json(service: InferenceService, repo: Path) -> None:
    from modelyard.model_repository import ModelConfig, write_model_config

    write_model_config(repo / "clf", ModelConfig(max_rows_per_request=3))
    await service.load_model("clf")
    with pytest.raises(InvalidArgument, match="at most 3 per request"):
        await service.infer(_request(np.zeros((4, 4), dtype=np.float32)))
    assert (await service.infer(_request(np.zeros((3, 4), dtype=np.float32)))).outputs
    write_model_config(repo / "clf", ModelConfig())  # the limit lifted: the version reloads
    await service.load_model("clf")
    assert (await service.infer(_request(np.zeros((4, 4), dtype=np.float32)))).outputs


async def test_a_failed_load_leaves_no_phantom_entry(
    service: InferenceService, repo: Path, tmp_path: Path
) -> None:
    (repo / "empty").mkdir()  # a folder without any complete version
    (repo / "half" / "1").mkdir(parents=True)  # a version folder without model.onnx
    (tmp_path / "elsewhere" / "1").mkdir(parents=True)
    (repo / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    for name in ("empty", "half", "nope"):
        with pytest.raises(NotFound):
            await service.load_model(name)
    for name in ("link", "../elsewhere", str(tmp_path / "elsewhere"), "a/b", ".x"):
        with pytest.raises(InvalidArgument):
            await service.load_model(name)
    index = await service.repository_index()
    assert [(m.name, m.version) for m in index] == [("clf", "1")]
    assert [slot.name for slot in service.manager.slots()] == ["clf"]
