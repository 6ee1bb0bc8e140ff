"""docs/api.md stays true: the error table, the gRPC methods and the inference-server routes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from control_plane.errors import HTTP_STATUS_BY_CODE
from inference_server.grpc._generated import grpc_service_pb2, modelyard_admin_pb2
from inference_server.grpc.errors import GRPC_STATUS
from inference_server.http.errors import STATUS
from inference_server.http.server import HttpServer, start_http_server
from modelyard.errors import ErrorCode
from modelyard.model_repository import publish_version
from modelyard.settings import ServerSettings
from tests.inference_server.conftest import classifier_bytes, running_service

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


def _between(start: str, end: str) -> str:
    text = _doc()
    return text[text.index(start) + len(start) : text.index(end)]


def _rows(block: str) -> list[list[str]]:
    """The body rows of a markdown table, cells stripped of spaces and backticks."""
    rows = [
        [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        for line in block.splitlines()
        if line.strip().startswith("|")
    ]
    return rows[2:]


def _section(title: str) -> str:
    text = _doc()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_error_table_matches_the_three_dicts() -> None:
    rows = _rows(_between("<!-- error-codes -->", "<!-- /error-codes -->"))
    table = {row[0]: (int(row[1]), int(row[2]), row[3]) for row in rows}
    expected = {
        code.name: (HTTP_STATUS_BY_CODE[code], STATUS[code], GRPC_STATUS[code].name)
        for code in ErrorCode
    }
    assert table == expected


def test_every_grpc_method_is_documented() -> None:
    section = _section("gRPC")
    documented = set(re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE))
    for module in (grpc_service_pb2, modelyard_admin_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            assert service.full_name in section
            for method in service.methods:
                assert method.name in documented, f"{service.full_name}/{method.name}"


def _documented_routes() -> list[tuple[str, str]]:
    rows = _rows(_between("<!-- inference-http-routes -->", "<!-- /inference-http-routes -->"))
    return [(row[0], row[1]) for row in rows]


def test_routes_are_documented() -> None:
    routes = _documented_routes()
    assert ("POST", "/v2/models/{m}/infer") in routes
    assert ("POST", "/predict") in routes


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[HttpServer]:
    repo = tmp_path / "repo"
    repo.mkdir()
    publish_version(repo, "clf", 1, {"model.onnx": classifier_bytes(1)})
    async with running_service(repo) as service:
        srv = await start_http_server(service, "127.0.0.1", 0, ServerSettings())
        try:
            yield srv
        finally:
            await srv.close()


async def test_every_documented_route_is_answered(server: HttpServer) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        for method, path in _documented_routes():
            url = path.replace("{m}", "clf").replace("{v}", "1")
            answer = await client.request(method, url)
            assert not (answer.status_code == 404 and "no route for" in answer.text), (
                f"{method} {path}: {answer.text}"
            )
            assert answer.status_code != 405, f"{method} {path}: {answer.text}"
