"""Bad input on every route gets a clear ``{"error": ...}`` and the server answers the next
good request."""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import httpx
import numpy as np
import pytest

from inference_server.http.server import HttpServer
from inference_server.service import InferenceService

from .conftest import BODY_LIMIT

GOOD = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [0, 1, 2, 3]}]}


async def _still_serves(client: httpx.AsyncClient) -> None:
    response = await client.post("/v2/models/clf/infer", json=GOOD)
    assert response.status_code == 200, response.text


def _with_input(**changes: object) -> dict[str, Any]:
    tensor = {**GOOD["inputs"][0], **changes}
    return {"inputs": [tensor]}


BAD_INFER = [
    ("/v2/models/nope/infer", GOOD, 404, "model 'nope'"),
    ("/v2/models/clf/versions/9/infer", GOOD, 404, "version 9"),
    ("/v2/models/clf/infer", _with_input(datatype="INT64"), 400, "'input'"),
    ("/v2/models/clf/infer", _with_input(datatype="FP99"), 400, "'input'"),
    ("/v2/models/clf/infer", _with_input(shape=[1, 3], data=[0, 1, 2]), 400, "'input'"),
    ("/v2/models/clf/infer", _with_input(shape=[2, 4]), 400, "'input'"),
    ("/v2/models/clf/infer", _with_input(data=[[0, 1], 2, 3]), 400, "'input'"),
    ("/v2/models/clf/infer", _with_input(data=["a", "b", "c", "d"]), 400, "'input'"),
    ("/v2/models/clf/infer", _with_input(name="other"), 400, "'other'"),
    ("/v2/models/clf/infer", {"inputs": []}, 400, "no inputs"),
    ("/v2/models/clf/infer", {**GOOD, "extra": 1}, 400, "extra"),
    ("/v2/models/clf/infer", {**GOOD, "outputs": [{"name": "nope"}]}, 400, "'nope'"),
    ("/v2/models/clf/infer", _with_input(data=None), 400, "neither data"),
    ("/v2/models/clf/infer", _with_input(data=[None, 1, 2, 3]), 400, "'input'"),
]


@pytest.mark.parametrize(("path", "body", "status", "names"), BAD_INFER)
async def test_bad_infer_then_good(
    client: httpx.AsyncClient, path: str, body: object, status: int, names: str
) -> None:
    response = await client.post(path, content=json.dumps(body, allow_nan=True))
    assert response.status_code == status, response.text
    assert names in response.json()["error"]
    await _still_serves(client)


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/v2/models/clf/infer", b"{not json", 400),
        ("POST", "/v2/models/clf/infer", b"", 400),
        ("POST", "/v2/models/clf/infer", b"[1, 2]", 400),
        ("GET", "/v2/models/clf/infer", b"", 405),
        ("POST", "/v2/health/live", b"", 405),
        ("GET", "/v2/models/nope", b"", 404),
        ("GET", "/v2/models/clf/versions/9", b"", 404),
        ("GET", "/v2/models/nope/ready", b"", 404),
        ("GET", "/v2/models/clf/bogus", b"", 404),
        ("GET", "/nowhere", b"", 404),
        ("POST", "/v2/repository/index", b"{oops", 400),
        ("POST", "/v2/repository/models/clf/load", b'{"parameters": {"config": "{}"}}', 400),
        ("POST", "/v2/repository/models/clf/reload", b"", 404),
        ("POST", "/predict", b"{bad", 400),
        ("POST", "/predict/batch?model=clf", b'{"rows": 1}', 400),
    ],
)
async def test_bad_request_then_good(
    client: httpx.AsyncClient, method: str, path: str, body: bytes, status: int
) -> None:
    response = await client.request(method, path, content=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]
    await _still_serves(client)


def _binary(
    head: dict[str, Any], tail: bytes, header_length: int | None = None
) -> tuple[bytes, dict[str, str]]:
    encoded = json.dumps(head).encode()
    length = len(encoded) if header_length is None else header_length
    return encoded + tail, {"Inference-Header-Content-Length": str(length)}


@pytest.mark.parametrize(
    ("size", "tail_bytes", "header_length", "message"),
    [
        (16, 12, None, "binary_data_size 16"),
        (12, 12, None, "'input'"),
        (16, 20, None, "4 binary bytes"),
        (16, 16, 10_000, "Inference-Header-Content-Length"),
    ],
)
async def test_binary_size_mismatch(
    client: httpx.AsyncClient,
    size: int,
    tail_bytes: int,
    header_length: int | None,
    message: str,
) -> None:
    head = {
        "inputs": [
            {
                "name": "input",
                "shape": [1, 4],
                "datatype": "FP32",
                "parameters": {"binary_data_size": size},
            }
        ]
    }
    body, headers = _binary(head, np.zeros(tail_bytes // 4, "<f4").tobytes(), header_length)
    response = await client.post("/v2/models/clf/infer", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]
    await _still_serves(client)


@pytest.mark.parametrize(
    ("encoding", "body", "status"),
    [
        ("br", b"xx", 415),
        ("gzip", b"not gzip at all", 400),
        ("gzip", gzip.compress(b" " * (BODY_LIMIT + 1), mtime=0), 413),  # NOTE: the same bytes
        # in every collection (pytest-xdist compares the test ids of its workers)
    ],
)
async def test_bad_content_encoding(
    client: httpx.AsyncClient, encoding: str, body: bytes, status: int
) -> None:
    headers = {"Content-Encoding": encoding}
    response = await client.post("/v2/models/clf/infer", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["error"]
    await _still_serves(client)


async def test_non_finite_binary_values(client: httpx.AsyncClient) -> None:
    head = {
        "inputs": [
            {
                "name": "input",
                "shape": [1, 4],
                "datatype": "FP32",
                "parameters": {"binary_data_size": 16},
            }
        ]
    }
    body, headers = _binary(head, np.array([np.nan, 1, 2, np.inf], "<f4").tobytes())
    response = await client.post("/v2/models/clf/infer", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert "'input'" in response.json()["error"]
    await _still_serves(client)


async def test_oversized_body_is_refused_before_it_is_read(
    server: HttpServer, client: httpx.AsyncClient
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"POST /v2/models/clf/infer HTTP/1.1\r\nhost: x\r\n"
        b"content-length: %d\r\n\r\n" % (BODY_LIMIT * 100)
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 413")
    assert b"connection: close" in head
    writer.close()
    big = await client.post("/v2/models/clf/infer", content=b"x" * (BODY_LIMIT + 1))
    assert big.status_code == 413
    assert "exceeds the limit" in big.json()["error"]
    await _still_serves(client)


async def test_malformed_http_gets_400_and_others_unaffected(
    server: HttpServer, client: httpx.AsyncClient
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GARBAGE\x00 / HTTP/1.1\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    assert answer.startswith(b"HTTP/1.1 400")
    writer.close()
    await _still_serves(client)


async def test_retryable_states_are_not_400(
    client: httpx.AsyncClient, service: InferenceService
) -> None:
    service.draining = True
    response = await client.post("/v2/models/clf/infer", json=GOOD)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    service.draining = False
    await _still_serves(client)
