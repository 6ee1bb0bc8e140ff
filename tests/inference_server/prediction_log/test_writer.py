"""The writer's parts over a real server and real files: sampling, overflow, flush, metrics,
torn spool records, replay without duplicates, upgrades."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import msgspec
import numpy as np
import pytest

from inference_server.core.types import InferRequest
from inference_server.prediction_log import records as records_module
from inference_server.prediction_log import writer as writer_module
from inference_server.prediction_log.capture import Capture
from inference_server.prediction_log.spool import Spool
from inference_server.prediction_log.writer import PredictionLogWriter
from modelyard.errors import ConfigurationError
from modelyard.model_repository import LogSampling, ModelConfig, publish_version, write_model_config
from modelyard.prediction_blocks import PredictionBlock, pending_blocks, tensor_column
from modelyard.settings import PredictionLogSettings
from modelyard.storage import Database
from tests.inference_server.conftest import classifier_bytes
from tests.inference_server.prediction_log.conftest import (
    N_FEATURES,
    FullDisk,
    LogSetup,
    infer_http,
    log_settings,
    logged,
    logging_server,
    oip_body,
)
from tests.waiting import until


def _repo(tmp_path: Path, sampling: LogSampling | None = None) -> Path:
    repo = tmp_path / "repo"
    publish_version(repo, "clf", 1, {"model.onnx": classifier_bytes(1)})
    if sampling is not None:
        write_model_config(repo / "clf", ModelConfig(prediction_log=sampling))
    return repo


def _x(rows: int = 1) -> np.ndarray:
    return np.random.default_rng(rows).normal(size=(rows, N_FEATURES)).astype(np.float32)


async def test_every_nth_request_is_sampled(database: Database, tmp_path: Path) -> None:
    repo = _repo(tmp_path, LogSampling(every=3))
    async with logging_server(repo, log_settings(database, tmp_path / "spool")) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
            ids = [(await infer_http(http, "clf", _x(), f"r{i}"))["id"] for i in range(9)]
        assert server.log_writer is not None
        assert await server.log_writer.flush()
    assert [r.request_id for r in await logged(database)] == [ids[0], ids[3], ids[6]]


async def test_a_model_can_switch_logging_off(database: Database, tmp_path: Path) -> None:
    repo = _repo(tmp_path, LogSampling(enabled=False))
    async with logging_server(repo, log_settings(database, tmp_path / "spool")) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
            answer = await infer_http(http, "clf", _x(), None)
            assert answer["id"]  # still returned: feedback may arrive for any answer
        assert server.log_writer is not None
        assert await server.log_writer.flush()
    assert await logged(database) == []


async def test_flush_admin_call_and_metrics(database: Database, tmp_path: Path) -> None:
    async with logging_server(_repo(tmp_path), log_settings(database, tmp_path / "spool")) as srv:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{srv.http_port}") as http:
            for i in range(5):
                await infer_http(http, "clf", _x(2), f"m{i}")
            flushed = await http.post("/v2/prediction_log/flush")
            assert flushed.status_code == 200, flushed.text
            body = flushed.json()
            assert (body["complete"], body["shipped"], body["workers_applied"]) == (True, 10, 1)
            wrong = await http.get("/v2/prediction_log/flush")
            assert wrong.status_code == 405
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{srv.metrics_port}") as metrics:
            text = (await metrics.get("/metrics")).text
    for line in (
        "modelyard_prediction_log_buffered_total 5.0",
        "modelyard_prediction_log_spooled_total 10.0",
        "modelyard_prediction_log_shipped_total 10.0",
        "modelyard_prediction_log_dropped_total 0.0",
    ):
        assert line in text
    assert len(await logged(database)) == 10


async def test_a_full_buffer_drops_and_counts(database: Database, tmp_path: Path) -> None:
    # The spool is capped below one line, so the buffer cannot drain: overflow decides.
    log = log_settings(database, tmp_path / "spool", buffer_capacity=3, max_spool_bytes=1024)
    async with logging_server(_repo(tmp_path), log) as server:
        writer = server.log_writer
        assert writer is not None
        (tmp_path / "spool" / "worker-0" / "9999999999999999.seg").write_bytes(b"x" * 2048)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
            for i in range(8):
                await infer_http(http, "clf", _x(), f"d{i}")
        assert writer.capture.dropped + writer.capture.buffered == 8
        assert writer.capture.dropped >= 5


async def test_a_full_spool_disk_loses_nothing_and_drains_when_space_returns(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, the first failed spool write ended the spooler thread: the records of that pass
    were lost uncounted, and nothing was spooled again until a restart."""
    disk = FullDisk(monkeypatch)
    sent: list[str] = []
    async with logging_server(_repo(tmp_path), log_settings(database, tmp_path / "spool")) as srv:
        writer = srv.log_writer
        assert writer is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{srv.http_port}") as http:
            await infer_http(http, "clf", _x(), "before")
            assert await writer.flush()
            disk.full = True
            for i in range(20):  # answered as ever while the spool's disk is full
                await infer_http(http, "clf", _x(), f"full{i}")
            # NOTE: the niced spooler may be slow to run on a loaded machine
            await until(lambda: writer.spool_failures > 0, "a failed spool write")
            assert disk.failed > 0
            assert not await writer.flush(timeout_s=0.5)  # they are not in the database yet
            disk.full = False
            await infer_http(http, "clf", _x(), "after")
            assert await writer.flush()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{srv.metrics_port}") as metrics:
            text = (await metrics.get("/metrics")).text
        sent = ["before", *(f"full{i}" for i in range(20)), "after"]
        assert (writer.spooled, writer.shipped, writer.capture.dropped) == (22, 22, 0)
    assert f"modelyard_prediction_log_spool_failures_total {writer.spool_failures}.0" in text
    assert [r.request_id for r in await logged(database)] == sent


async def test_a_shutdown_on_a_full_disk_counts_what_it_could_not_spool(
    database: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    disk = FullDisk(monkeypatch)
    log = log_settings(database, tmp_path / "spool", shutdown_timeout_s=0.5)
    async with logging_server(_repo(tmp_path), log) as srv:
        writer = srv.log_writer
        assert writer is not None
        disk.full = True
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{srv.http_port}") as http:
            for i in range(3):
                await infer_http(http, "clf", _x(), f"f{i}")
            assert await asyncio.to_thread(
                disk.failing.wait, 30
            )  # a pass failed: what it took waits in memory ...
            for i in range(3, 5):  # ... and these wait in the buffer behind it
                await infer_http(http, "clf", _x(), f"f{i}")
    # the server stopped: it retried until its shutdown deadline, then counted the loss
    assert (writer.spooled, writer.capture.dropped) == (0, 5)
    assert "shutdown with the records of 5 requests that could not be spooled" in caplog.text
    assert await logged(database) == []


async def test_a_pass_that_cannot_make_blocks_counts_its_records_and_the_spooler_goes_on(
    database: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before, an exception from making blocks (a bug) ended the spooler thread: the records it
    had taken were lost uncounted and nothing was spooled again."""
    real = records_module.pass_blocks
    broken = [True]

    def pass_blocks(*args: Any, **kwargs: Any) -> Any:
        if broken:
            broken.pop()
            raise ValueError("a bug in making blocks")
        return real(*args, **kwargs)

    monkeypatch.setattr(writer_module, "pass_blocks", pass_blocks)
    async with logging_server(_repo(tmp_path), log_settings(database, tmp_path / "spool")) as srv:
        writer = srv.log_writer
        assert writer is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{srv.http_port}") as http:
            await infer_http(http, "clf", _x(), "lost")
            assert await writer.flush()
            await infer_http(http, "clf", _x(), "kept")
            assert await writer.flush()
        assert writer.capture.dropped == 1
    assert "could not be made into blocks" in caplog.text
    assert [r.request_id for r in await logged(database)] == ["kept"]


async def test_reject_policy_answers_resource_exhausted(database: Database, tmp_path: Path) -> None:
    log = log_settings(
        database, tmp_path / "spool", buffer_capacity=2, max_spool_bytes=1024, overflow="reject"
    )
    async with logging_server(_repo(tmp_path), log) as server:
        (tmp_path / "spool" / "worker-0" / "9999999999999999.seg").write_bytes(b"x" * 2048)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
            codes = [
                (await http.post("/v2/models/clf/infer", json=oip_body(_x(), f"j{i}"))).status_code
                for i in range(5)
            ]
    assert codes[:2] == [200, 200]
    assert set(codes[2:]) == {429}


async def test_an_overlong_client_id_is_refused(database: Database, tmp_path: Path) -> None:
    async with logging_server(_repo(tmp_path), log_settings(database, tmp_path / "spool")) as srv:
        url = f"http://127.0.0.1:{srv.http_port}"
        async with httpx.AsyncClient(base_url=url) as http:
            answer = await http.post("/v2/models/clf/infer", json=oip_body(_x(), "x" * 129))
            long_key = oip_body(_x(), "ok", routing_key="k" * 257)
            refused_key = await http.post("/v2/models/clf/infer", json=long_key)
        assert answer.status_code == 400
        assert "request id" in answer.json()["error"]
        assert refused_key.status_code == 400
        assert "routing_key" in refused_key.json()["error"]


@pytest.mark.parametrize(
    ("sampling", "low", "high"),
    [
        (LogSampling(), 300, 300),
        (LogSampling(enabled=False), 0, 0),
        (LogSampling(every=3), 100, 100),
        (LogSampling(share=0.0), 0, 0),
        (LogSampling(share=0.5), 120, 180),  # 150 +- 3.5 sigma (seeded: the same every run)
        (LogSampling(every=2, share=0.5), 55, 95),
    ],
)
def test_admit_samples_as_the_models_config_says(
    sampling: LogSampling, low: int, high: int
) -> None:
    """How many of 300 requests a version's sampling records (the server's flag for the
    default, the sampling rule for the rest)."""
    random.seed(7)
    handle = SimpleNamespace(
        name="m",
        config=ModelConfig(prediction_log=sampling),
        logs_every_request=sampling.records_all,
    )
    capture = Capture(PredictionLogSettings())
    admitted = [
        capture.admit(InferRequest(model_name="m", inputs=[]), handle)  # type: ignore[arg-type]
        for _ in range(300)
    ]
    assert low <= sum(admitted) <= high


def test_generated_ids_are_unique_across_stems_and_workers() -> None:
    """Ids the log generates: 32 hex digits (a per-process prefix, then a counter whose last
    three digits come from a table), in counter order across the 4,096-id stems."""
    policy = SimpleNamespace(name="m", config=ModelConfig(), logs_every_request=True)
    captures = [Capture(PredictionLogSettings()) for _ in range(2)]
    ids: list[str] = []
    for capture in captures:
        for _ in range(2 * 4096 + 3):
            request = InferRequest(model_name="m", inputs=[])
            assert capture.admit(request, policy)  # type: ignore[arg-type]
            ids.append(request.id)
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    first = ids[: 2 * 4096 + 3]
    assert [int(i[16:], 16) for i in first] == list(range(len(first)))
    client = InferRequest(model_name="m", inputs=[], id="mine")
    captures[0].admit(client, policy)  # type: ignore[arg-type]
    assert client.id == "mine"


def test_a_torn_line_is_skipped_and_the_folder_is_exclusive(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    spool = Spool(folder, segment_bytes=1 << 20, fsync=False)
    spool.append([b'"a"\n', b'"b"\n'])
    with pytest.raises(ConfigurationError, match="in use"):
        Spool(folder, segment_bytes=1 << 20, fsync=False)
    spool.close()
    # A kill -9 in the middle of a write leaves half a line at the end of the segment.
    with (folder / "0000000000000001.seg").open("ab") as segment:
        segment.write(b'"c", "tor')
    again = Spool(folder, segment_bytes=1 << 20, fsync=False)
    again.append([b'"d"\n'])
    lines, after = again.read(again.checkpoint(), 10)
    assert lines == [b'"a"\n', b'"b"\n']
    again.commit(after)
    lines, after = again.read(after, 10)
    assert lines == [b'"d"\n']
    assert again.segments() == [2]  # the finished, shipped segment is gone
    again.close()


def test_a_line_longer_than_a_read_chunk_is_read_whole(tmp_path: Path) -> None:
    # A block of many large requests can be one spool line of several MiB; small segments
    # make it end a segment the spooler has left (which a read that finds no line deletes).
    spool = Spool(tmp_path / "w", segment_bytes=1024, fsync=False)
    long = b'"' + b"x" * (9 * 1024 * 1024) + b'"\n'
    spool.append([long])
    spool.append([b'"after"\n'])
    lines, after = spool.read(spool.checkpoint(), 10)
    assert lines == [long]
    lines, after = spool.read(after, 10)
    assert lines == [b'"after"\n']
    spool.close()


@pytest.mark.parametrize("unpacked_between", [False, True], ids=["blocks-pending", "unpacked"])
async def test_replaying_the_spool_inserts_nothing_twice(
    database: Database, tmp_path: Path, unpacked_between: bool
) -> None:
    # A replayed block whose first copy still waits is ignored by its key; one whose first
    # copy was unpacked (and deleted) is unpacked again, and its records are ignored.
    log = log_settings(database, tmp_path / "spool")
    async with logging_server(_repo(tmp_path), log) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
            for i in range(4):
                await infer_http(http, "clf", _x(3), f"p{i}")
        assert server.log_writer is not None
        assert await server.log_writer.flush()
        # A crash between the database commit and the checkpoint: everything is sent again.
        (tmp_path / "spool" / "worker-0" / "checkpoint").unlink()
    async with database.read() as conn:
        pending = await pending_blocks(conn)
    assert pending[1] == 12
    if unpacked_between:
        assert len(await logged(database)) == 12
    writer = PredictionLogWriter(log.section, 0, database_url=log.database_url, schema=log.schema)
    writer.start()
    try:
        assert await writer.flush()
        await asyncio.sleep(0.2)
    finally:
        await writer.close()
    async with database.read() as conn:
        assert await pending_blocks(conn) == pending  # each block waits once
    records = await logged(database)
    assert len(records) == 12
    assert len({(r.request_id, r.row_index) for r in records}) == 12


async def test_a_spool_of_the_previous_release_ships_after_an_upgrade(
    database: Database, tmp_path: Path
) -> None:
    # Previous releases spooled newline-delimited JSON, without a file header: one record per
    # line (a JSON array), then one block per line (a JSON object, tensors in base64). Such a
    # segment, left in the folder (its last line torn by a kill), ships as it is, before the
    # framed blocks the new release spools after it.
    folder = tmp_path / "spool" / "worker-0"
    folder.mkdir(parents=True)
    old_block = PredictionBlock(
        key="old-2-key",
        model="clf",
        version=1,
        worker=0,
        input_names=["input"],
        feature_names=[f"f{i}" for i in range(N_FEATURES)],
        output_names=["label", "probabilities"],
        request_ids=["old-2"],
        times=[dt.datetime(2026, 12, 1, 11, tzinfo=dt.UTC).timestamp()],
        variants=["none"],
        routing_keys=[None],
        shadows=[False],
        protocols=["http"],
        latencies_ms=[0.5],
        rows=[1],
        inputs=[tensor_column(np.array([[9, 10, 11, 12]], dtype=np.float32))],
        outputs=[
            tensor_column(np.array([1], dtype=np.int64)),
            tensor_column(np.array([[0.25, 0.75]], dtype=np.float32)),
        ],
    )
    (folder / "0000000000000001.seg").write_bytes(
        b'["old-1",0,"2026-12-01T10:00:00.000001Z","clf",1,"none",null,false,"http",0.5,'
        b'{"f0":1.0,"f1":2.0,"f2":3.0,"f3":4.0},{"label":1,"probabilities":[0.25,0.75]},0]\n'
        b'["old-1",1,"2026-12-01T10:00:00.000001Z","clf",1,"none","k",false,"http",0.5,'
        b'{"f0":5.0,"f1":6.0,"f2":7.0,"f3":8.0},{"label":0,"probabilities":[0.5,0.5]},0]\n'
        + msgspec.json.encode(old_block)
        + b'\n["old-3",0,"2026-12-01T1'
    )
    log = log_settings(database, tmp_path / "spool")
    async with logging_server(_repo(tmp_path), log) as server:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
            await infer_http(http, "clf", _x(2), "new-1")
        assert server.log_writer is not None
        assert await server.log_writer.flush()
        assert server.log_writer.corrupt == 0
        assert server.log_writer.shipped == 5
    records = await logged(database)
    assert [(r.request_id, r.row_index) for r in records] == [
        ("old-1", 0),
        ("old-1", 1),
        ("old-2", 0),
        ("new-1", 0),
        ("new-1", 1),
    ]
    assert records[1].routing_key == "k"
    assert records[1].inputs == {"f0": 5.0, "f1": 6.0, "f2": 7.0, "f3": 8.0}
    assert records[0].created_at == dt.datetime(2026, 12, 1, 10, 0, 0, 1, tzinfo=dt.UTC)
    assert records[2].inputs == {"f0": 9.0, "f1": 10.0, "f2": 11.0, "f3": 12.0}
    assert records[2].outputs == {"label": 1, "probabilities": [0.25, 0.75]}


@pytest.mark.parametrize(
    ("ship_batch", "segment_bytes"), [(5000, 8 * 1024**2), (7, 1024)], ids=["memory", "spool"]
)
async def test_records_shipped_from_memory_or_read_back_are_the_same(
    database: Database, tmp_path: Path, ship_batch: int, segment_bytes: int
) -> None:
    # Default batches ship what the spooler hands over; 7-record batches and 1 KiB segments
    # (a roll every few lines) make the shipper read most records back from the spool. A
    # 120-row request fills more than one multi-row insert statement.
    log = log_settings(
        database, tmp_path / "spool", ship_batch=ship_batch, segment_bytes=segment_bytes
    )
    sent: list[tuple[str, int, list[float]]] = []
    async with logging_server(_repo(tmp_path), log) as server:
        writer = server.log_writer
        assert writer is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
            for i in range(30):
                x = _x(120 if i == 10 else 1 + i % 4)
                await infer_http(http, "clf", x, f"s{i}")
                sent += [(f"s{i}", row, x[row].tolist()) for row in range(len(x))]
        assert await writer.flush()
        assert writer.shipped == writer.spooled == len(sent)
        assert writer.corrupt == 0
        if ship_batch == 5000:
            assert writer.shipped_from_memory > 0
        else:
            assert writer.shipped_from_memory < writer.shipped
    records = await logged(database)
    assert [(r.request_id, r.row_index, list(r.inputs.values())) for r in records] == sent


async def test_the_spool_is_fsynced_only_for_what_the_database_has_not_taken(
    database: Database, tmp_path: Path
) -> None:
    # Keeping up, every line reaches the database (durable commits) before it waited a ship
    # interval: no spool fsync at all. With the table missing (a database not migrated yet),
    # the lines wait, and the shipper fsyncs them in the spool.
    log = log_settings(database, tmp_path / "spool", fsync=True)
    async with logging_server(_repo(tmp_path), log) as server:
        writer = server.log_writer
        assert writer is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
            for i in range(20):
                await infer_http(http, "clf", _x(2), f"k{i}")
                if i % 5 == 4:
                    assert await writer.flush()
        assert writer.spool_fsyncs == 0
    assert len(await logged(database)) == 40

    down = LogSetup(
        section=PredictionLogSettings(
            enabled=True,
            spool_dir=str(tmp_path / "spool-down"),
            fsync=True,
            ship_interval_ms=20,
            shutdown_timeout_s=0,
        ),
        database_url=f"sqlite:///{tmp_path / 'not-migrated.db'}",
        schema=None,
    )
    async with logging_server(_repo(tmp_path / "down"), down) as server:
        writer = server.log_writer
        assert writer is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
            await infer_http(http, "clf", _x(2), "waiting")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if writer.spool_fsyncs:
                break
            await asyncio.sleep(0.01)
        assert writer.spool_fsyncs >= 1
        assert writer.ship_failures >= 1


async def test_background_threads_are_demoted_and_the_loop_is_not(
    database: Database, tmp_path: Path
) -> None:
    # server.background_nice (default 10): the spooler, the shipper and the sketch fold give
    # themselves that nice value (Linux: one per thread); the event loop's thread keeps its own.
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    async with logging_server(_repo(tmp_path), log_settings(database, tmp_path / "spool")) as srv:
        assert srv.settings.server.background_nice == 10
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{srv.http_port}") as http:
            await infer_http(http, "clf", _x(3), "nice")
        assert srv.log_writer is not None
        assert await srv.log_writer.flush()
        await srv.sketches.flush()
        nice = {
            t.name: os.getpriority(os.PRIO_PROCESS, t.native_id)
            for t in threading.enumerate()
            if t.native_id is not None
        }
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own
    demoted = max(own, 10)
    assert nice["prediction-log-spooler"] == nice["prediction-log-shipper"] == demoted
    folds = [value for name, value in nice.items() if name.startswith("sketch-fold")]
    assert folds == [demoted]
    if "ort-run" in nice:  # NOTE: started on the first hand-off; an idle request runs inline
        assert nice["ort-run"] == own
