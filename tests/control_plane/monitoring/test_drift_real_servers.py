"""Property 23 over real inference servers, both backends: two servers (port 0, admin token)
serve a version published with its reference.json; shifted or unshifted traffic is sent to
both; the control plane's check_drift pulls and merges their sketches, stores the report and
raises a drift alert whose details are the report's per-feature verdicts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from control_plane.monitoring.build import build_monitoring
from control_plane.monitoring.drift_models import DriftCheckRequest
from control_plane.monitoring.models import AlertType
from control_plane.monitoring.sketch_client import SketchClient
from inference_server.app import InferenceServer
from modelyard.model_repository import publish_version
from modelyard.settings import ServerSettings, Settings
from modelyard.sketches import build_reference_profile, decode_profile, encode
from tests.conftest import SyncDatabase
from tests.control_plane.monitoring import helpers
from tests.inference_server.conftest import classifier_bytes, classifier_reference

ADMIN = "adm-" + "m" * 28
NAMES = [f"f{i}" for i in range(4)]


def _publish(repo: Path, model: str) -> None:
    x = np.random.default_rng(0).normal(size=(3000, 4)).astype(np.float32)
    score = classifier_reference(1, x)[:, 1]
    profile = build_reference_profile({n: x[:, i] for i, n in enumerate(NAMES)}, score=score)
    publish_version(
        repo, model, 1, {"model.onnx": classifier_bytes(1), "reference.json": encode(profile)}
    )


async def _serve_traffic(
    servers: list[InferenceServer], model: str, shift: float, seed: int
) -> int:
    rng = np.random.default_rng(seed)
    rows = 0
    for server in servers:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.http_port}") as http:
            assert (
                await http.post(
                    f"/v2/repository/models/{model}/load",
                    headers={"authorization": f"Bearer {ADMIN}"},
                )
            ).status_code == 200
            for _ in range(15):
                batch = rng.normal(size=(int(rng.integers(5, 20)), 4)).astype(np.float32)
                batch[:, 0] += shift
                batch[:, 1] += shift
                body = {
                    "inputs": [
                        {
                            "name": "input",
                            "shape": list(batch.shape),
                            "datatype": "FP32",
                            "data": batch.ravel().tolist(),
                        }
                    ]
                }
                answer = await http.post(f"/v2/models/{model}/infer", json=body)
                assert answer.status_code == 200, answer.text
                rows += len(batch)
    return rows


@settings(
    max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(shift=st.sampled_from([0.0, 1.5]), seed=st.integers(0, 2**16))
def test_property_23_drift_detection_generates_alerts_with_details(
    sync_database: SyncDatabase, tmp_path: Path, shift: float, seed: int
) -> None:
    run = sync_database.run
    model = sync_database.unique("m")
    repo = tmp_path / "repo"
    repo.mkdir(exist_ok=True)
    _publish(repo, model)
    servers = [
        InferenceServer(
            Settings(
                server=ServerSettings(
                    model_repository=str(repo),
                    grpc_port=0,
                    http_port=0,
                    metrics_port=None,
                    control_mode="explicit",
                    admin_token=ADMIN,
                )
            )
        )
        for _ in range(2)
    ]
    for server in servers:
        run(server.start())
    try:
        rows = run(_serve_traffic(servers, model, shift, seed))
        urls = [f"http://127.0.0.1:{s.http_port}" for s in servers]
        monitoring = build_monitoring(
            helpers.settings(), sync_database.database, sketches=SketchClient(urls, ADMIN)
        )
        reference = (repo / model / "1" / "reference.json").read_bytes()
        run(monitoring.drift.store_reference(model, 1, decode_profile(reference)))
        now = dt.datetime.now(dt.UTC)
        window = DriftCheckRequest(
            since=now - dt.timedelta(hours=1), until=now + dt.timedelta(minutes=1)
        )
        report = run(monitoring.drift.check_drift(model, 1, window))
        alerts = run(monitoring.alerts.list_alerts(model=model))
    finally:
        for server in servers:
            run(server.stop())
    assert report.rows == rows  # both servers' sketches merged
    verdicts = {f.feature: f for f in report.result.features}
    assert set(verdicts) == set(NAMES)
    assert all(v.current_size == rows for v in verdicts.values())
    if shift:
        assert report.drifted
        assert verdicts["f0"].drifted
        assert verdicts["f1"].drifted
    score_drifted = report.result.score is not None and report.result.score.drifted
    if not (report.drifted or score_drifted):
        assert alerts == []
        assert report.alert_id is None
        return
    [alert] = alerts
    assert alert.id == report.alert_id
    assert alert.type is AlertType.DRIFT
    judged = [
        f for f in [*report.result.features, report.result.score] if f and f.score is not None
    ]
    assert [d.feature for d in alert.details] == [f.feature for f in judged]
    for detail, verdict in zip(alert.details, judged, strict=True):
        assert (detail.method, detail.threshold, detail.flagged) == (
            verdict.method.value,
            verdict.threshold,
            verdict.drifted,
        )
        assert detail.score == verdict.score
