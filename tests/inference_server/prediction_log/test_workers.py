"""Two worker processes, one server: the flush admin call reaches both workers' logs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from modelyard.model_repository import publish_version
from modelyard.storage import Database, upgrade
from tests.inference_server.admin.cluster import fresh_client, two_workers
from tests.inference_server.conftest import classifier_bytes
from tests.inference_server.prediction_log.conftest import N_FEATURES, logged, oip_body


async def test_flush_applies_on_every_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    publish_version(repo, "clf", 1, {"model.onnx": classifier_bytes(1)})
    database = Database(f"sqlite:///{tmp_path / 'log.db'}")
    await upgrade(database)
    monkeypatch.setenv("MODELYARD_PREDICTION_LOG_ENABLED", "true")
    monkeypatch.setenv("MODELYARD_PREDICTION_LOG_DATABASE_URL", database.url)
    monkeypatch.setenv("MODELYARD_PREDICTION_LOG_SPOOL_DIR", str(tmp_path / "spool"))
    # NOTE: a long interval, so only the flush call can have moved the records this fast.
    monkeypatch.setenv("MODELYARD_PREDICTION_LOG_FLUSH_INTERVAL_MS", "10000")
    x = np.ones((1, N_FEATURES), np.float32)
    try:
        with two_workers(repo, "--model-control-mode", "poll") as cluster:
            with fresh_client(cluster.url) as http:
                ids = []
                for i in range(40):
                    answer = http.post("/v2/models/clf/infer", json=oip_body(x, f"w{i}"))
                    assert answer.status_code == 200, answer.text
                    ids.append(answer.json()["id"])
                flushed = await asyncio.to_thread(http.post, "/v2/prediction_log/flush")
            assert flushed.status_code == 200, flushed.text
            body = flushed.json()
            assert (body["complete"], body["workers_applied"], body["shipped"]) == (True, 2, 40)
            records = await logged(database)
            assert sorted(r.request_id for r in records) == sorted(ids)
            assert {r.worker for r in records} <= {0, 1}
    finally:
        await database.dispose()
