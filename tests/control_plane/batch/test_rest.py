"""Batch jobs over REST on a real control plane (both backends): submit, follow, cancel,
resume, and the refusals (bad paths, columns that do not fit, a fingerprint that moved)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pyarrow as pa
import pytest

from control_plane.batch.shards import read_results
from control_plane.registry.card_rules import minimal_card_data
from control_plane.registry.models import ModelRegistration
from control_plane.server import ControlPlaneServer
from modelyard.models import DatasetRef, ModelCard, ModelLineage
from modelyard.settings import load_settings
from tests.conftest import POSTGRES_URL, PostgresSchema
from tests.control_plane.batch.helpers import input_table, model_bytes, write_inputs
from tests.control_plane.registry.helpers import DEVELOPER

pytestmark = pytest.mark.slow


@pytest.fixture
async def server(backend: str, tmp_path: Path) -> AsyncIterator[ControlPlaneServer]:
    """A started control plane whose batch data root is ``tmp_path / 'data'``."""
    schema = PostgresSchema() if backend == "postgresql" else None
    url = f"sqlite:///{tmp_path / 'modelyard.db'}"
    if schema is not None:
        await schema.create()
        url = POSTGRES_URL
    raw = {
        "MODELYARD_DATABASE_URL": url,
        "MODELYARD_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "MODELYARD_TRACKING_ARTIFACT_ROOT": str(tmp_path / "mlartifacts"),
        "MODELYARD_REGISTRY_ARTIFACT_STORE": str(tmp_path / "artifacts"),
        "MODELYARD_REGISTRY_MODEL_REPOSITORY": str(tmp_path / "repository"),
        "MODELYARD_REGISTRY_MIRROR_TO_MLFLOW": "false",
        "MODELYARD_CONTROL_PLANE_ADMIN_TOKEN_FILE": str(tmp_path / "admin-token"),
        "MODELYARD_BATCH_DATA_ROOT": str(tmp_path / "data"),
    }
    settings = load_settings(environ=raw, config_dir=None)
    control_plane = ControlPlaneServer(settings, port=0, schema=schema.name if schema else None)
    await control_plane.start()
    try:
        yield control_plane
    finally:
        await control_plane.stop()
        if schema is not None:
            await schema.drop()


async def _register(server: ControlPlaneServer) -> None:
    assert server.services is not None
    lineage = ModelLineage(
        mlflow_run_id="run-1",
        training_dataset=DatasetRef(uri="file:///train.parquet", sha256="ab" * 32),
        code_version="0" * 40,
        features=(),
        hyperparameters={},
    )
    card = msgspec.convert(minimal_card_data(), ModelCard)
    registration = ModelRegistration(onnx=model_bytes(), card=card, lineage=lineage)
    await server.services.registry.register("tiny", registration, DEVELOPER)


def _client(server: ControlPlaneServer) -> httpx.AsyncClient:
    token = Path(server.settings.control_plane.admin_token_file).read_text().strip()
    return httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


async def _until(
    client: httpx.AsyncClient, job_id: str, states: set[str], min_rows: int = 0
) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = (await client.get(f"/v1/batch/jobs/{job_id}")).json()
        if job["progress"]["state"] in states and job["progress"]["rows_done"] >= min_rows:
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {states}: {job}")


async def test_submit_and_follow_a_job(server: ControlPlaneServer, tmp_path: Path) -> None:
    await _register(server)
    write_inputs(tmp_path / "data" / "in", [120, 45])
    body = {
        "model": "tiny", "version": 1, "input": "in", "output": "out",
        "options": {"chunk_size": 50, "id_columns": ["id"], "carry_columns": ["note"]},
    }  # fmt: skip
    async with _client(server) as client:
        answer = await client.post("/v1/batch/jobs", json=body)
        assert answer.status_code == 201, answer.text
        job = await _until(client, answer.json()["id"], {"succeeded", "failed"})
        listed = (await client.get("/v1/batch/jobs")).json()
    assert job["progress"]["state"] == "succeeded", job
    assert (job["progress"]["rows_done"], job["progress"]["rows_total"]) == (165, 165)
    assert job["progress"]["shards_done"] == 3 + 1
    assert [j["id"] for j in listed] == [job["id"]]
    results = read_results(tmp_path / "data" / "out")
    assert sorted(results.column("id").to_pylist()) == list(range(165))


async def test_the_job_row_gets_its_final_state_through_failed_writes(
    server: ControlPlaneServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Before, one failed progress write ended the task that follows the job: its row stayed
    ``running`` for good, cancel answered "not running" and resume was allowed beside it."""
    await _register(server)
    assert server.services is not None
    service = server.services.batch_service
    store = service._store
    real = store.set_progress
    failures = {"running": 1, "final": 2}  # the first write of each kind fails

    async def flaky(conn: Any, job_id: str, progress: Any, at: Any) -> None:
        kind = (
            "final" if progress.state.value in ("succeeded", "failed", "cancelled") else "running"
        )
        if failures[kind]:
            failures[kind] -= 1
            raise OSError(f"injected: the database is unreachable ({kind})")
        await real(conn, job_id, progress, at)

    store.set_progress = flaky  # type: ignore[method-assign]
    write_inputs(tmp_path / "data" / "in", [120_000])  # 600 shards: several watch periods
    body = {"model": "tiny", "version": 1, "input": "in", "output": "out",
            "options": {"chunk_size": 200}}  # fmt: skip
    async with _client(server) as client:
        answer = await client.post("/v1/batch/jobs", json=body)
        assert answer.status_code == 201, answer.text
        job_id = answer.json()["id"]
        await _until(client, job_id, {"succeeded", "failed"})
        await asyncio.wait_for(asyncio.gather(*service._watchers.values()), timeout=60)
        job = (await client.get(f"/v1/batch/jobs/{job_id}")).json()  # from the row now
    assert job["progress"]["state"] == "succeeded", job
    assert failures == {"running": 0, "final": 0}, "both kinds of write failed once"
    assert "its final state succeeded: not written yet" in caplog.text


async def test_bad_requests_name_the_problem(server: ControlPlaneServer, tmp_path: Path) -> None:
    await _register(server)
    write_inputs(tmp_path / "data" / "in", [10])
    (tmp_path / "data" / "bad").mkdir()
    import pyarrow.parquet as pq

    pq.write_table(input_table(5).drop_columns(["f3"]), tmp_path / "data" / "bad" / "x.parquet")
    base = {"model": "tiny", "version": 1, "input": "in", "output": "out"}
    async with _client(server) as client:
        escape = await client.post("/v1/batch/jobs", json=base | {"output": "../elsewhere"})
        columns = await client.post("/v1/batch/jobs", json=base | {"input": "bad"})
        unknown = await client.post("/v1/batch/jobs", json=base | {"version": 9})
        nobody = await client.post(
            "/v1/batch/jobs", json=base, headers={"Authorization": "Bearer nope"}
        )
    assert escape.status_code == 422
    assert "must be a path inside the batch data root" in escape.json()["error"]
    assert columns.status_code == 422
    assert columns.json()["error"] == (
        "input x.parquet does not fit the model: missing column 'f3'"
    )
    assert unknown.status_code == 404
    assert nobody.status_code == 401


async def test_hostile_inputs_and_outputs_are_refused_at_submit(
    server: ControlPlaneServer, tmp_path: Path
) -> None:
    """What a fuzz of batch jobs found (2026-12-06): a link in the input folder read a file
    outside the data root; an output path under a file was a 500; kept columns named like
    output columns were overwritten silently. (A damaged Parquet footer: test_runner.py.)"""
    import pyarrow.parquet as pq

    await _register(server)
    data = tmp_path / "data"
    outside = write_inputs(tmp_path / "outside", [7])
    (data / "linked").mkdir(parents=True)
    write_inputs(data / "linked", [5])
    (data / "linked" / "zz.parquet").symlink_to(outside / "in-000.parquet")
    write_inputs(data / "in", [10])
    (data / "clash").mkdir()
    pq.write_table(
        input_table(5).append_column("label", pa.array([1] * 5)), data / "clash" / "x.parquet"
    )
    write_inputs(data / "mixed", [3])
    write_inputs(data / "mixed-csv", [2], "csv")
    (data / "mixed-csv" / "in-000.csv").rename(data / "mixed" / "in-001.csv")
    base = {"model": "tiny", "version": 1, "input": "in", "output": "out"}
    dask = {"dask_scheduler": "tcp://127.0.0.1:9"}
    cases = [
        (base | {"input": "mixed", "options": dask}, "mixes .csv and .parquet files"),
        (base | {"input": "linked"}, "zz.parquet in linked is a link leading out of its folder"),
        (base | {"output": "in/in-000.parquet/sub"}, "cannot be made a folder"),
        (base | {"input": "clash", "options": {"carry_columns": ["label", "note"]}},
         "kept columns ['label'] have the names of output columns"),
    ]  # fmt: skip
    async with _client(server) as client:
        for body, named in cases:
            answer = await client.post("/v1/batch/jobs", json=body)
            assert answer.status_code == 422, (body, answer.text)
            assert named in answer.json()["error"], (body, answer.text)
        fine = await client.post("/v1/batch/jobs", json=base)
        assert fine.status_code == 201, fine.text
        assert (await _until(client, fine.json()["id"], {"succeeded"}))["progress"][
            "rows_done"
        ] == 10


async def test_cancel_then_resume_refused_when_input_changed_else_completes(
    server: ControlPlaneServer, tmp_path: Path
) -> None:
    await _register(server)
    write_inputs(tmp_path / "data" / "in", [4000])
    write_inputs(tmp_path / "data" / "in2", [4000])
    async with _client(server) as client:
        ids = []
        for name in ("in", "in2"):
            body = {
                "model": "tiny", "stage": "None", "input": name, "output": f"out-{name}",
                "options": {"chunk_size": 10, "id_columns": ["id"]},
            }  # fmt: skip
            answer = await client.post("/v1/batch/jobs", json=body)
            assert answer.status_code == 201, answer.text
            ids.append(answer.json()["id"])
        for job_id in ids:
            # Cancelled once it has committed rows: a SIGTERM before the job process has
            # started at all simply ends it (then 'failed ... resume it').
            await _until(client, job_id, {"running", "succeeded"}, min_rows=1)
            assert (await client.post(f"/v1/batch/jobs/{job_id}/cancel")).status_code == 202
            cancelled = await _until(client, job_id, {"cancelled", "succeeded"})
            assert cancelled["progress"]["state"] == "cancelled"
        assert (await client.post(f"/v1/batch/jobs/{ids[0]}/cancel")).status_code == 409
        write_inputs(tmp_path / "data" / "in", [4001])  # the input changed
        refused = await client.post(f"/v1/batch/jobs/{ids[0]}/resume")
        # NOTE: two resumes at once: both were accepted, and two job processes wrote one folder
        resumed, again = await asyncio.gather(
            client.post(f"/v1/batch/jobs/{ids[1]}/resume"),
            client.post(f"/v1/batch/jobs/{ids[1]}/resume"),
        )
        if resumed.status_code != 202:
            resumed, again = again, resumed
        assert resumed.status_code == 202, resumed.text
        assert again.status_code == 409, again.text
        assert "or resuming" in again.json()["error"]
        done = await _until(client, ids[1], {"succeeded", "failed"})
    assert refused.status_code == 409
    assert "fingerprint no longer matches (input changed" in refused.json()["error"]
    assert done["progress"]["state"] == "succeeded"
    results = read_results(tmp_path / "data" / "out-in2")
    assert sorted(results.column("id").to_pylist()) == list(range(4000))
