"""Fixtures: a real InferenceService over tiny ONNX models, served by the HTTP adapter on
127.0.0.1:0, and an HTTP client bound to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from inference_server.http.server import HttpServer, start_http_server
from inference_server.service import InferenceService
from modelyard.model_repository import ModelConfig, VersionPolicy, write_model_config
from modelyard.settings import ServerSettings

from ..conftest import running_service

BODY_LIMIT = 64 * 1024


@pytest.fixture
async def service(repo: Path, publish: Callable[..., Path]) -> AsyncIterator[InferenceService]:
    publish("clf", 1)
    publish("clf", 2)
    policy = VersionPolicy(kind="all")
    write_model_config(repo / "clf", ModelConfig(version_policy=policy, default_version=1))
    async with running_service(repo) as svc:
        yield svc


@pytest.fixture
async def server(service: InferenceService) -> AsyncIterator[HttpServer]:
    settings = ServerSettings(max_request_bytes=BODY_LIMIT, drain_timeout_s=2.0)
    srv = await start_http_server(service, "127.0.0.1", 0, settings)
    yield srv
    await srv.close()


@pytest.fixture
async def client(server: HttpServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
        yield http
