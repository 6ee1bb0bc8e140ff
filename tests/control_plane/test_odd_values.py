"""Values a client can send that the control plane stored, or choked on, before (a fuzz of
every route found them; both backends): NaN and the infinities as JSON strings, which the web
framework's lenient conversion turned into floats that were stored as ``null`` and broke every
later read of the object; a channel URL ``urlparse`` refuses; a test plan that overflows; paths
the operating system cannot look up. Each is now a 4xx naming the problem, and what was there
before stays readable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.control_plane.conftest import admin_token, started_control_plane


@pytest.fixture
async def client(backend: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with started_control_plane(backend, tmp_path / "state") as server:
        headers = {"Authorization": f"Bearer {admin_token(server)}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as http:
            yield http


SPACE = {"C": {"type": "float", "low": 0.5, "high": 2.0}}
AB_TEST: dict[str, Any] = {
    "model": "m",
    "variants": [
        {"version": 1, "weight": 0.5, "role": "control"},
        {"version": 2, "weight": 0.5, "role": "treatment"},
    ],
    "primary_metric": {"name": "conversion", "kind": "conversion"},
}
CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("PUT", "/v1/retraining/specs/m", {"data": "d.csv", "target": "y",
                                        "min_improvement": "Infinity"}, "min_improvement"),
    ("PUT", "/v1/retraining/specs/m", {"data": "d.csv", "target": "y",
                                        "guardrails": {"auc": "Infinity"}}, "guardrails"),
    ("PUT", "/v1/retraining/specs/m", {"data": "d.csv", "target": "y",
                                        "tune": {"timeout_s": "Infinity"}}, "timeout_s"),
    ("POST", "/v1/tuning/jobs", {"model": "logistic_regression", "n_trials": 1,
                                 "space": {"C": {"type": "float", "low": "NaN", "high": 1.0}}},
     "low"),
    ("POST", "/v1/tuning/jobs", {"model": "logistic_regression", "n_trials": 1,
                                 "space": {"C": {"type": "float", "low": "-Infinity",
                                                 "high": 1.0}}}, "low"),
    ("POST", "/v1/ab-tests/plan", {"baseline": 0.1, "minimum_detectable_effect": 0.02,
                                   "daily_traffic": 1000, "weights": ["Infinity", 1]}, "weights"),
    ("POST", "/v1/ab-tests/plan", {"baseline": 0.1, "minimum_detectable_effect": 0.02,
                                   "daily_traffic": 1000, "weights": [1e308, 1e308]},
     "cannot be computed"),
    ("POST", "/v1/ab-tests/plan", {"baseline": 0.1, "minimum_detectable_effect": 0.02,
                                   "daily_traffic": 5e-324}, "cannot be computed"),
    ("PUT", "/v1/monitoring/models/m/drift-policy", {"threshold": "Infinity"}, "threshold"),
    ("POST", "/v1/monitoring/channels", {"name": "x", "kind": "webhook",
                                         "target": "http://[::1"}, "Invalid IPv6 URL"),
    ("POST", "/v1/monitoring/channels", {"name": "x", "kind": "webhook",
                                         "target": "http://]x/"}, "channel target"),
    ("POST", "/v1/feedback", {"outcomes": [{"request_id": "r", "value": "NaN"}]}, "value"),
    # NOTE: below, finite numbers whose statistics overflowed (a second fuzz, 2026-12-06): an
    # outcome of 1e200 or a label of 10**400 stored, then every performance window or A/B
    # report over them failing; a plan of null days; a sample size no report could reach
    ("POST", "/v1/feedback", {"outcomes": [{"request_id": "r", "value": 1e200}]}, "value"),
    ("POST", "/v1/feedback", {"outcomes": [{"request_id": "r", "label": 10**400}]}, "label"),
    ("POST", "/v1/feedback", {"outcomes": [{"request_id": "r", "label": 2**64}]}, "label"),
    ("POST", "/v1/ab-tests/plan", {"baseline": 10.0, "minimum_detectable_effect": 1.0,
                                   "variance": 1e300, "daily_traffic": 1e-10},
     "cannot be computed"),
    ("POST", "/v1/tuning/jobs", {"model": "lightgbm", "n_trials": 1, "space": {
        "n_estimators": {"type": "int", "low": -(2**62), "high": 2**62}}}, "within +-10,000"),
    ("POST", "/v1/tuning/jobs", {"model": "logistic_regression", "n_trials": 1, "space": {
        "C": {"type": "float", "low": -1.7e308, "high": 1.7e308}}}, "wider than a float"),
    ("POST", "/v1/tuning/jobs", {"model": "logistic_regression", "n_trials": 1,
                                 "seed": 2**32}, "seed"),
    ("POST", "/v1/tuning/jobs", {"model": "logistic_regression", "n_trials": 1,
                                 "seed": -1}, "seed"),
    # NOTE: NUL in free text, which PostgreSQL refuses: a split's or conclusion's reason was
    # refused by the audit write after config.json had been rewritten (the file and the
    # database then disagreed)
    ("PUT", "/v1/ab-tests/t/split", {"weights": {"1": 1.0}, "reason": "\u0000"}, "reason"),
    ("POST", "/v1/ab-tests/t/conclude", {"version": 1, "reason": "a\u0000"}, "reason"),
    ("POST", "/v1/tokens", {"principal": "t", "role": "viewer", "description": "\u0000"},
     "description"),
    # NOTE: ids and versions past the INTEGER columns: PostgreSQL's own error, SQLite a 404
    ("GET", "/v1/monitoring/alerts/2147483648", {}, "alert_id"),
    ("GET", "/v1/monitoring/drift-reports/2147483648", {}, "report_id"),
    ("GET", "/v1/monitoring/alerts?model=m&version=2147483648", {}, "version"),
    ("GET", "/v1/monitoring/models/m/versions/2147483648/reference", {}, "version"),
    ("PUT", "/v1/monitoring/models/a%00b/drift-policy", {"threshold": 0.2},
     "model: Expected 1-128 letters"),
    ("GET", "/v1/monitoring/models/a%00b/drift-policy", {}, "model: Expected 1-128 letters"),
    # NOTE: NUL in a name or id in the path: PostgreSQL's own error ("invalid byte sequence"),
    # SQLite a 404 (or 200 and an empty list for a model's versions); now every text in a path
    # is a NamePath or a KeyPath (control_plane.params), refused naming the parameter
    *[(method, path, {}, named) for method, path, named in [
        ("GET", "/v1/models/a%00b/versions", "name"),
        ("GET", "/v1/models/a%00b/latest", "name"),
        ("POST", "/v1/models/a%00b/publish", "name"),
        ("GET", "/v1/models/a%00b/versions/1", "name"),
        ("GET", "/v1/models/churn%0A/versions", "name"),
        ("GET", "/v1/lineage/features/a%00b/1", "feature"),
        ("GET", "/v1/features/a%00b", "name"),
        ("DELETE", "/v1/features/a%00b", "name"),
        ("DELETE", "/v1/monitoring/channels/a%00b", "name"),
        ("GET", "/v1/monitoring/models/a%00b/performance", "model"),
        ("GET", "/v1/monitoring/models/a%00b/versions/1/reference", "model"),
        ("GET", "/v1/retraining/specs/a%00b", "model"),
        ("GET", "/v1/tuning/jobs/a%00b", "job_id"),
        ("POST", "/v1/tuning/jobs/a%00b/cancel", "job_id"),
        ("GET", "/v1/batch/jobs/a%00b", "job_id"),
        ("POST", "/v1/batch/jobs/a%00b/resume", "job_id"),
        ("GET", "/v1/retraining/runs/a%00b", "run_id"),
        ("GET", "/v1/ab-tests/a%00b/report", "test_id"),
        ("POST", "/v1/ab-tests/a%00b/promote", "test_id"),
        ("DELETE", "/v1/tokens/a%00b", "token_id"),
        ("POST", "/v1/scheduler/jobs/a%00b/run", "name"),
        ("GET", "/v1/tuning/jobs/" + "a" * 129, "job_id"),
    ]],
    ("POST", "/v1/monitoring/channels", {"name": "ch\n", "kind": "webhook",
                                         "target": "http://127.0.0.1:1/"}, "channel name"),
    ("POST", "/v1/features", {"name": "f1", "description": "d", "dtype": "int64", "entity": "e",
                              "owner": "o", "transformation": "t", "source": "s",
                              "tags": ["t\n"]}, "tags"),
    # NOTE: NUL in a query filter: PostgreSQL's own error, SQLite answered 200
    ("GET", "/v1/audit?actor=a%00", {}, "actor"),
    ("GET", "/v1/features?owner=%00", {}, "owner"),
    ("GET", "/v1/predictions?model=m%00", {}, "model"),
    ("GET", "/v1/models/versions?name=%00", {}, "name"),
    ("GET", "/v1/predictions?since=0001-01-01T00:00:00%2B14:00", {}, "since"),
    ("GET", "/v1/predictions?until=9999-12-31T23:59:59-14:00", {}, "until"),
    ("GET", "/v1/monitoring/models/m/performance?since=0001-01-01T00:00:00%2B14:00", {},
     "since"),
    # NOTE: the same times in a body: a generic "out of range" that named no field before
    ("POST", "/v1/monitoring/models/m/versions/1/drift-checks",
     {"since": "0001-01-01T00:00:00+14:00", "until": "2020-01-01T00:00:00Z"}, "since 0001"),
    ("POST", "/v1/monitoring/models/m/versions/1/drift-checks",
     {"until": "9999-12-31T23:59:59-14:00"}, "until 9999"),
    ("POST", "/v1/monitoring/models/m/versions/1/drift-checks",
     {"until": "0001-01-01T00:00:00Z", "window_s": 60}, "before year 1"),
    ("POST", "/v1/monitoring/models/m/versions/1/performance",
     {"since": "2020-01-01T00:00:00Z", "until": "9999-12-31T23:59:59-14:00"}, "until 9999"),
    ("POST", "/v1/monitoring/models/m/versions/1/performance",
     {"until": "0001-01-01T00:00:00Z"}, "before year 1"),
    ("POST", "/v1/ab-tests", {**AB_TEST, "variants": [
        {"version": 2**31, "weight": 0.5, "role": "control"},
        {"version": 2, "weight": 0.5, "role": "treatment"}]}, "version"),
    ("POST", "/v1/batch/jobs", {"model": "tiny", "version": 2**31, "input": "in",
                                "output": "o"}, "version"),
    ("POST", "/v1/ab-tests", {**AB_TEST, "minimum_sample_size": 10**400},
     "minimum_sample_size"),
    ("POST", "/v1/ab-tests", {**AB_TEST, "variants": [
        {"version": 1, "weight": 5e-324, "role": "control"},
        {"version": 2, "weight": 1.0, "role": "treatment"}]}, "at least 1e-06"),
    ("POST", "/v1/batch/jobs", {"model": "tiny", "version": 1, "input": "in\u0000",
                                "output": "o"}, "NUL"),
    ("POST", "/v1/batch/jobs", {"model": "tiny", "version": 1, "input": "in",
                                "output": "a" * 256}, "longer than 255 bytes"),
    ("POST", "/v1/batch/jobs", {"model": "tiny", "version": 1, "input": "in/" + "b" * 256,
                                "output": "o"}, "longer than 255 bytes"),
    ("POST", "/v1/tuning/jobs", {"model": "logistic_regression", "n_trials": 1,
                                 "dataset": "d" * 256 + ".csv"}, "longer than 255 bytes"),
]  # fmt: skip


@pytest.mark.slow
async def test_odd_values_are_4xx_naming_the_problem(client: httpx.AsyncClient) -> None:
    good = await client.put(
        "/v1/monitoring/models/m/drift-policy", json={"threshold": 0.2}
    )  # something stored before, to read back after
    assert good.status_code == 200, good.text
    for method, path, body, named in CASES:
        answer = await client.request(method, path, json=body)
        assert 400 <= answer.status_code < 500, (path, body, answer.text)
        assert named in answer.json()["error"], (path, body, answer.text)
    for path in ("/v1/tuning/jobs", "/v1/monitoring/models/m/drift-policy"):
        assert (await client.get(path)).status_code == 200, path
    assert (await client.get("/v1/monitoring/models/m/drift-policy")).json()["threshold"] == 0.2
