"""A real inference server (port 0) whose prediction log writes into the test database."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import numpy as np
import pytest
import sqlalchemy as sa

from inference_server.app import InferenceServer
from inference_server.prediction_log import spool as spool_module
from modelyard.prediction_blocks import unpack_blocks
from modelyard.prediction_log import PredictionRecord, prediction_log, record_from_row
from modelyard.settings import DatabaseSettings, PredictionLogSettings, ServerSettings, Settings
from modelyard.storage import Database
from tests.conftest import POSTGRES_URL

N_FEATURES = 4


class LogSetup(NamedTuple):
    """A prediction log in the test database: its settings section, database and schema."""

    section: PredictionLogSettings
    database_url: str
    schema: str | None


def log_settings(database: Database, spool: Path, **overrides: Any) -> LogSetup:
    """An enabled log pointing at ``database`` (its file, or its PostgreSQL schema)."""
    values: dict[str, Any] = {"enabled": True, "spool_dir": str(spool), "fsync": False}
    values.update(overrides)
    return LogSetup(
        section=PredictionLogSettings(**values),
        database_url=database.url if database.is_sqlite else POSTGRES_URL,
        schema=None if database.is_sqlite else database.schema,
    )


@asynccontextmanager
async def logging_server(repo: Path, log: LogSetup) -> AsyncIterator[InferenceServer]:
    """A started server (gRPC + HTTP + metrics on port 0) over ``repo`` with ``log``."""
    settings = Settings(
        database=DatabaseSettings(url=log.database_url),
        server=ServerSettings(
            model_repository=str(repo),
            grpc_port=0,
            http_port=0,
            metrics_port=0,
            control_mode="explicit",
            max_request_bytes=1024 * 1024,
        ),
        prediction_log=log.section,
    )
    server = InferenceServer(settings, log_schema=log.schema)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def logged(database: Database) -> list[PredictionRecord]:
    """Every record in the log, by id, after unpacking every shipped block (what the
    control plane does before a read)."""
    while True:
        async with database.write() as conn:
            if not (await unpack_blocks(conn)).blocks:
                break
    async with database.read() as conn:
        rows = await conn.execute(sa.select(prediction_log).order_by(prediction_log.c.id))
        return [record_from_row(row._asdict()) for row in rows]


def oip_body(x: np.ndarray, request_id: str | None, **parameters: Any) -> dict[str, Any]:
    """An OIP JSON infer body for the rows ``x``."""
    body: dict[str, Any] = {
        "inputs": [
            {
                "name": "input",
                "datatype": "FP32",
                "shape": list(x.shape),
                "data": x.ravel().tolist(),
            }
        ]
    }
    if request_id is not None:
        body["id"] = request_id
    if parameters:
        body["parameters"] = parameters
    return body


async def infer_http(
    client: httpx.AsyncClient, model: str, x: np.ndarray, request_id: str | None, **params: Any
) -> dict[str, Any]:
    """One OIP infer over HTTP; the decoded answer."""
    answer = await client.post(f"/v2/models/{model}/infer", json=oip_body(x, request_id, **params))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


class FullDisk:
    """The spool's writes as on a disk that fills up: while ``full``, each write puts a few
    bytes of its first piece in the file for real, then fails with ENOSPC (as ``writev`` on a
    full disk does after a short write)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = False
        self.failed = 0
        self.failing = threading.Event()
        """Set at the first failed write."""
        real = spool_module._write_all

        def write_all(fd: int, pieces: Sequence[bytes]) -> int:
            if not self.full:
                return real(fd, pieces)
            self.failed += 1
            self.failing.set()
            os.write(fd, pieces[0][:7])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(spool_module, "_write_all", write_all)
