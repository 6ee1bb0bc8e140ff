"""Durability of the prediction log over real server processes and a real database outage.

- SIGTERM: everything answered is in the database when the process has exited.
- ``kill -9`` under load: a restarted server ships what the dead one spooled; the only
  answers missing are the ones given in the last flush interval before the kill (measured).
- Database down (PostgreSQL): the log points at a schema that does not exist yet; the spool
  grows, nothing reaches the database; once the schema is migrated the spool drains: every
  answer exactly once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelyard.model_repository import publish_version
from modelyard.storage import Database, upgrade
from tests.conftest import POSTGRES_URL, PostgresSchema, require_postgres
from tests.inference_server.conftest import ROOT, classifier_bytes
from tests.inference_server.prediction_log.conftest import (
    N_FEATURES,
    log_settings,
    logged,
    logging_server,
    oip_body,
)
from tests.waiting import until

FLUSH_INTERVAL_MS = 50


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    publish_version(root, "clf", 1, {"model.onnx": classifier_bytes(1)})
    return root


@pytest.fixture
async def sqlite_log(tmp_path: Path) -> Any:
    database = Database(f"sqlite:///{tmp_path / 'log.db'}")
    await upgrade(database)
    yield database
    await database.dispose()


@contextmanager
def serve(
    repo: Path, database: Database, spool: Path
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``modelyard serve`` (one worker, ports 0) logging into ``database``; (process, port)."""
    env = {
        **os.environ,
        "MODELYARD_PREDICTION_LOG_ENABLED": "true",
        "MODELYARD_PREDICTION_LOG_DATABASE_URL": database.url,
        "MODELYARD_PREDICTION_LOG_SPOOL_DIR": str(spool),
        "MODELYARD_PREDICTION_LOG_FLUSH_INTERVAL_MS": str(FLUSH_INTERVAL_MS),
    }
    command = [sys.executable, "-m", "modelyard", "serve", "--model-repository", str(repo)]
    command += ["--host", "127.0.0.1", "--workers", "1", "--grpc-port", "0", "--http-port", "0"]
    command += ["--metrics-port", "-1", "--log-level", "warning"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=ROOT, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, f"server exited with {proc.wait(timeout=30)} before listening"
        yield proc, json.loads(line)["http_port"]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
        if proc.stdout is not None:
            proc.stdout.close()


async def _client_loop(
    port: int,
    answered: dict[str, float],
    stop: asyncio.Event,
    rows: int = 1,
    enough: tuple[int, asyncio.Event] | None = None,
) -> None:
    """Send requests until ``stop`` or the server goes away; record each answer's wall time
    (``time.time()``, the clock of the records' ``created_at``); set ``enough``'s event once
    that many are answered."""
    rng = np.random.default_rng()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        while not stop.is_set():
            rid = uuid.uuid4().hex
            x = rng.normal(size=(rows, N_FEATURES)).astype(np.float32)
            try:
                answer = await client.post("/v2/models/clf/infer", json=oip_body(x, rid))
            except httpx.TransportError:
                return
            if answer.status_code == 200:
                answered[answer.json()["id"]] = time.time()
                if enough is not None and len(answered) >= enough[0]:
                    enough[1].set()


async def test_sigterm_flushes_everything(repo: Path, sqlite_log: Database, tmp_path: Path) -> None:
    answered: dict[str, float] = {}
    with serve(repo, sqlite_log, tmp_path / "spool") as (proc, port):
        stop = asyncio.Event()
        clients = [
            asyncio.create_task(_client_loop(port, answered, stop, rows=3)) for _ in range(4)
        ]
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*clients)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 60) == 0
    records = await logged(sqlite_log)
    assert answered
    keys = [(r.request_id, r.row_index) for r in records]
    assert len(keys) == len(set(keys)) == 3 * len(answered)
    assert {r.request_id for r in records} == set(answered)
    assert not list((tmp_path / "spool" / "worker-0").glob("*.seg"))[1:], "spool not drained"


async def test_kill_9_loses_at_most_the_last_flush_interval(
    repo: Path, sqlite_log: Database, tmp_path: Path
) -> None:
    """What is lost is what arrived after the spooler's last pass, never anything older.

    The record order is the spool order, and a pass takes the whole buffer: so the lost
    answers are a suffix of the answers in the order they were recorded. Shown without timing:
    each lost answer reached its client after the newest record that survived was made (its
    ``created_at``). How old the oldest lost answer was is the measurement (printed; the
    default flush interval, 50 ms, bounds it on a machine that runs the spooler when due). A
    ceiling of 20 intervals only catches a spooler that does not run at its interval at all:
    on a loaded 2-core machine the spooler (niced, beside 8 clients and another test process)
    can be late by more than the interval, and a tighter figure here would time the machine,
    not the log (one run measured 33.7 ms against a 150 ms bound).
    """
    spool = tmp_path / "spool"
    answered: dict[str, float] = {}
    with serve(repo, sqlite_log, spool) as (proc, port):
        stop, enough = asyncio.Event(), asyncio.Event()
        clients = [
            asyncio.create_task(_client_loop(port, answered, stop, enough=(1000, enough)))
            for _ in range(8)
        ]
        async with asyncio.timeout(120):
            await enough.wait()
        proc.send_signal(signal.SIGKILL)
        killed_at = time.time()
        stop.set()
        await asyncio.gather(*clients)
    # A new process on the same spool ships what the dead one wrote; SIGTERM drains it.
    with serve(repo, sqlite_log, spool) as (proc, _):
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 60) == 0
    records = await logged(sqlite_log)
    logged_ids = {r.request_id for r in records}
    assert len(records) == len(logged_ids), "a record was shipped twice"
    lost = {rid: killed_at - at for rid, at in answered.items() if rid not in logged_ids}
    interval_s = FLUSH_INTERVAL_MS / 1000
    window = [at for at in answered.values() if at >= killed_at - interval_s]
    print(  # NOTE: the measured loss, reported by `pytest -s` (docs/prediction-log.md).
        f"\nkill -9: {len(answered)} answered, {len(lost)} lost, {len(window)} answered in the "
        f"last {FLUSH_INTERVAL_MS} ms, oldest lost answer "
        f"{max(lost.values(), default=0) * 1000:.1f} ms before the kill"
    )
    newest = max(_wall(r.created_at) for r in records)
    assert all(answered[rid] > newest for rid in lost), "an answer older than a spooled one"
    assert len(lost) < len(answered) / 2, "the spooler did not keep up with the load"
    assert all(age <= 20 * interval_s for age in lost.values()), lost


def _wall(moment: dt.datetime) -> float:
    """Seconds since the epoch of a record's time (SQLite gives it back naive, in UTC)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


@pytest.fixture
def postgres() -> None:
    """PostgreSQL is reachable (skipped locally, failed under CI=true otherwise)."""
    require_postgres()


@pytest.mark.usefixtures("postgres")
async def test_database_down_spool_grows_then_drains(repo: Path, tmp_path: Path) -> None:
    schema = PostgresSchema()  # NOTE: not created yet: the log's database is "down".
    database = Database(POSTGRES_URL, schema=schema.name)
    log = log_settings(database, tmp_path / "spool", segment_bytes=4096)
    answered: list[str] = []
    try:
        async with logging_server(repo, log) as server:
            writer = server.log_writer
            assert writer is not None
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
                rng = np.random.default_rng(0)
                for i in range(200):
                    x = rng.normal(size=(2, N_FEATURES)).astype(np.float32)
                    rid = None if i % 2 else f"client-{i}"
                    answer = await http.post("/v2/models/clf/infer", json=oip_body(x, rid))
                    answered.append(answer.json()["id"])
                # NOTE: the niced spooler and shipper may be slow to run on a loaded machine
                await until(
                    lambda: writer.spooled == 400 and writer.ship_failures > 0,
                    "400 rows spooled and a failed write to the absent database",
                )
                assert not await writer.flush(timeout_s=0.5)  # the database is down
                assert writer.shipped == 0
                assert len(list((tmp_path / "spool" / "worker-0").glob("*.seg"))) > 1
                await schema.create()
                await upgrade(database)
                assert await writer.flush(timeout_s=30)
                records = await logged(database)
        keys = [(r.request_id, r.row_index) for r in records]
        assert len(keys) == len(set(keys)) == 400
        assert {r.request_id for r in records} == set(answered)
        # In order: ids grow in the order the answers were given (one worker).
        first_rows = [r.request_id for r in records if r.row_index == 0]
        assert first_rows == answered
    finally:
        await database.dispose()
        await schema.drop()
