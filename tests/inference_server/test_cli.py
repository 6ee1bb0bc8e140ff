"""``modelyard serve`` as a user runs it: readiness line, SIGTERM drain, two workers."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import grpc
import numpy as np
import pytest

from inference_server.grpc._generated import grpc_service_pb2 as pb
from inference_server.grpc._generated import grpc_service_pb2_grpc as pbg

from .admin.cluster import two_workers
from .conftest import serve_subprocess


def _serve(repo: Path, *args: str) -> AbstractContextManager[subprocess.Popen[str]]:
    return serve_subprocess(repo, "--http-port", "-1", *args)


def _request() -> pb.ModelInferRequest:
    x = np.ones((1, 4), np.float32)
    tensor = pb.ModelInferRequest.InferInputTensor(name="input", datatype="FP32", shape=x.shape)
    return pb.ModelInferRequest(model_name="clf", inputs=[tensor], raw_input_contents=[x.tobytes()])


WARM_CALLS = 60
"""Answered calls before SIGTERM: the drain happens under real load."""


async def _hammer(port: int, stop: asyncio.Event, codes: list[str], warm: asyncio.Event) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pbg.GRPCInferenceServiceStub(channel)
        while not stop.is_set():
            try:
                await stub.ModelInfer(_request(), timeout=10)
                codes.append("OK")
            except grpc.aio.AioRpcError as exc:
                codes.append(exc.code().name)
                return
            if len(codes) >= WARM_CALLS:
                warm.set()


@pytest.mark.slow
async def test_sigterm_drains_and_exits_zero(repo: Path, publish: Callable[..., Path]) -> None:
    publish("clf", 1)
    with _serve(repo, "--grpc-port", "0", "--metrics-port", "-1", "--workers", "1") as proc:
        assert proc.stdout is not None
        ready = json.loads(await asyncio.to_thread(proc.stdout.readline))
        stop, warm = asyncio.Event(), asyncio.Event()
        codes: list[str] = []
        port = ready["grpc_port"]
        clients = [asyncio.create_task(_hammer(port, stop, codes, warm)) for _ in range(16)]
        await asyncio.wait_for(warm.wait(), timeout=30)
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
        stop.set()
        await asyncio.gather(*clients)
    assert code == 0
    assert codes.count("OK") >= WARM_CALLS
    # each client stops at its first failure: only calls racing the shutdown fail (the C core
    # cancels streams no handler has picked up yet), with retryable codes, never a hang
    failures = [c for c in codes if c != "OK"]
    assert len(failures) <= len(clients)
    assert set(failures) <= {"UNAVAILABLE", "CANCELLED"}, set(failures)


@pytest.mark.slow
async def test_two_workers_share_the_port(repo: Path, publish: Callable[..., Path]) -> None:
    publish("clf", 1)
    # NOTE: two_workers probes fixed ports (N workers cannot share port 0) and starts again
    # on new ones when another process took one in between.
    with two_workers(repo) as cluster:
        lines = cluster.lines
        (port,) = {line["grpc_port"] for line in lines}  # one port, shared
        assert len({line["pid"] for line in lines}) == 2
        metrics = cluster.metrics_port
        assert {line["metrics_port"] for line in lines} == {metrics, metrics + 1}
        for _ in range(4):  # new connections land on either worker
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                response = await pbg.GRPCInferenceServiceStub(channel).ModelInfer(_request())
                assert response.model_version == "1"


def test_a_started_worker_freezes_its_heap_and_sets_the_young_threshold() -> None:
    # In a fresh interpreter: the test process's own collector stays as it is.
    code = (
        "import gc; from inference_server.cli import settle_heap; "
        "before = gc.get_threshold(); settle_heap(12345); after = gc.get_threshold(); "
        "print(after[0], after[1:] == before[1:], gc.get_freeze_count() > 0); "
        "settle_heap(0); print(gc.get_threshold()[0])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == ["12345", "True", "True", "12345"]
