"""Idle requests to a cheap model run on the event loop; batches and costly models do not."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import cast

import numpy as np
import pytest

from inference_server import runtime
from inference_server.loaded_version import AnswerTap, LoadedVersion, NullHooks
from modelyard.model_repository import BatchingConfig, ModelConfig, scan_model


async def _load(repo: Path, config: ModelConfig) -> LoadedVersion:
    [entry] = scan_model(repo / "clf").values()
    return await LoadedVersion.load("clf", entry, config, NullHooks())


async def test_an_idle_single_row_request_runs_inline_and_a_burst_uses_the_thread(
    repo: Path, publish: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # NOTE: the cost measured at load decides inline; on a loaded machine its median could pass
    # the 100 us bound, so the test states it (10 us, about what it measures idle)
    monkeypatch.setattr(runtime, "_row_cost", lambda run, feeds: (10_000, 10_000))
    publish("clf", 1)
    version = await _load(repo, ModelConfig())
    try:
        assert version.model.row_cost_ns > 0
        assert version.batcher is not None
        x = np.ones((1, 4), np.float32)
        for _ in range(5):  # a closed loop of one client: every request finds the model idle
            await version.submit([x], 1, None)
        assert version.model._thread is None  # never handed off
        assert version.stats.execution_count == 5

        # 40 requests ready at once: the first yields one loop pass, sees the others queue and
        # hands off; the rest run as batches in the session thread
        burst = [version.submit([x], 1, None) for _ in range(40)]
        answers = await asyncio.gather(*burst)
        assert len(answers) == 40
        assert version.model._thread is not None  # queued requests ran as batches off the loop
        assert version.stats.execution_count < 5 + 40
    finally:
        version.retire()
        await asyncio.sleep(0)


async def test_inline_switched_off_always_hands_off(
    repo: Path, publish: Callable[..., Path]
) -> None:
    publish("clf", 1)
    version = await _load(repo, ModelConfig(batching=BatchingConfig(inline_max_us=0)))
    try:
        await version.submit([np.ones((1, 4), np.float32)], 1, None)
        assert version.model._thread is not None
    finally:
        version.retire()
        await asyncio.sleep(0)


async def test_a_failing_tap_on_a_version_without_batching_still_answers(
    repo: Path, publish: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    """Without a batcher the run is tapped in the version itself; a failing tap (the log's or
    the sketches' code) failed the request there, although its answer was computed."""
    publish("clf", 1)
    [entry] = scan_model(repo / "clf").values()
    calls: list[int] = []

    def tap(*_: object) -> None:
        calls.append(1)
        raise RuntimeError("a bug in the log")

    config = ModelConfig(batching=BatchingConfig(enabled=False))
    answers = cast("AnswerTap", tap)  # NOTE: its parameters are the protocol's, unused
    version = await LoadedVersion.load("clf", entry, config, NullHooks(), answers=answers)
    try:
        assert version.batcher is None
        answer = await version.submit([np.ones((2, 4), np.float32)], 2, None)
        assert answer[0].shape[0] == 2
        assert calls == [1]
        assert "the answer tap failed" in caplog.text
        assert version.stats.execution_count == 1
    finally:
        version.retire()
        await asyncio.sleep(0)
