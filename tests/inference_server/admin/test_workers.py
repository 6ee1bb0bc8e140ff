"""Two worker processes behave as one server: every admin call is applied on both before it
answers, and a restarted worker comes up in the server's desired state (issue 16 §1)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from examples.churn.processes import free_ports
from modelyard.model_repository import ModelConfig, VersionPolicy, write_model_config
from modelyard.routing import assign_arm

from ..conftest import serve_subprocess
from .cluster import WORKERS, Cluster, Load, fresh_client, two_workers
from .test_routes_api import INVALID_ROUTES, ROW

pytestmark = pytest.mark.slow


def _expected_version(returned: dict[int, float], sent: float) -> int:
    """The newest version whose load had returned when the request was sent."""
    return max((v for v, moment in returned.items() if moment < sent), default=1)


async def test_explicit_loads_and_unload_apply_on_every_worker_before_answering(
    repo: Path, publish: Callable[..., Path]
) -> None:
    publish("clf", 1)
    with two_workers(repo, "--model-control-mode", "explicit") as cluster:
        load = Load(cluster.url)
        clients = load.start()
        returned: dict[int, float] = {}
        async with httpx.AsyncClient(base_url=cluster.url, timeout=60) as admin:
            await load.wait_sent_after(time.monotonic(), 30)
            for version in range(2, 6):
                await asyncio.to_thread(publish, "clf", version)
                answer = await admin.post("/v2/repository/models/clf/load")
                returned[version] = time.monotonic()
                assert answer.status_code == 200, answer.text
                assert answer.json() == {
                    "model": "clf",
                    "versions": [version],
                    "workers_applied": 2,
                }
                await load.wait_sent_after(returned[version], 60)
            unloading = time.monotonic()
            answer = await admin.post("/v2/repository/models/clf/unload")
            unloaded = time.monotonic()
            assert answer.json() == {"model": "clf", "workers_applied": 2}
            await load.wait_sent_after(unloaded, 40)
        load.stop = True
        await clients
        late = [s for s in load.samples if s[0] > unloaded]
        assert {s[1] for s in late} == {404}
        # answered before the unload began: all from the newest version loaded when sent
        wrong = [
            (sent, status, version)
            for sent, status, version, _, received in load.samples
            if received < unloading
            and (status != 200 or int(version) < _expected_version(returned, sent))
        ]
        assert wrong == [], wrong[:5]
        # both workers answered, each from the newest version at the end
        assert all(cluster.requests_by_version(w).get("5", 0) > 0 for w in range(WORKERS))


async def test_route_changes_apply_on_every_worker_before_answering(
    repo: Path, publish: Callable[..., Path]
) -> None:
    publish("clf", 1)
    publish("clf", 2)
    write_model_config(repo / "clf", ModelConfig(version_policy=VersionPolicy(kind="all")))
    splits = [(1.0, 0.0), (0.0, 1.0), (0.3, 0.7), (0.9, 0.1), (0.5, 0.5)]
    with two_workers(repo, "--model-control-mode", "explicit") as cluster:
        load = Load(cluster.url, keys=50)
        clients = load.start()
        windows: list[tuple[float, float, tuple[float, float]]] = []
        async with httpx.AsyncClient(base_url=cluster.url, timeout=60) as admin:
            for weights in splits:
                arms = [
                    {"version": 1, "weight": weights[0]},
                    {"version": 2, "weight": weights[1], "variant": "treatment"},
                ]
                started = time.monotonic()
                if windows:
                    windows[-1] = (windows[-1][0], started, windows[-1][2])
                answer = await admin.put("/v2/models/clf/routes", json={"routes": arms})
                assert answer.status_code == 200, answer.text
                assert answer.json()["workers_applied"] == 2
                windows.append((time.monotonic(), float("inf"), weights))
                await load.wait_sent_after(windows[-1][0], 60)
        load.stop = True
        await clients
        checked = 0
        for sent, status, version, key, received in load.samples:
            for begin, end, weights in windows:
                if begin < sent and received < end:  # sent after one change, done before the next
                    assert status == 200
                    assert int(version) == 1 + assign_arm(key, weights), (key, weights)
                    checked += 1
        assert checked >= 60 * len(splits)
        assert all(total > 0 for total in cluster.served())


async def test_restarted_worker_comes_up_in_the_desired_state(
    repo: Path, publish: Callable[..., Path]
) -> None:
    publish("clf", 1)
    publish("other", 1)
    with two_workers(repo, "--model-control-mode", "explicit") as cluster:
        with fresh_client(cluster.url) as admin:
            publish("clf", 2)
            assert admin.post("/v2/repository/models/clf/load").json()["versions"] == [2]
            assert admin.post("/v2/repository/models/other/unload").status_code == 200
            routes = [{"version": 2, "weight": 1.0, "variant": "control"}]
            assert admin.put("/v2/models/clf/routes", json={"routes": routes}).is_success
            publish("clf", 3)  # on disk, never loaded: a fresh scan would serve it
            victim = next(line for line in cluster.lines if line["worker"] == 1)
            os.kill(victim["pid"], signal.SIGKILL)
            line = await asyncio.to_thread(cluster.read_line)
            assert (line["worker"], line["pid"] != victim["pid"]) == (1, True)
            state = admin.get("/v2/repository/workers").json()
            assert state["workers_applied"] == 2
            assert {w["pid"] for w in state["workers"]} >= {line["pid"]}
            assert [w["models"] for w in state["workers"]] == [{"clf": [2]}] * 2
            assert admin.get("/v2/models/clf/routes").json()["routes"] == routes
            for _ in range(30):  # new connections land on both workers
                answer = admin.post("/predict", params={"model": "clf"}, json=[0, 0, 0, 0])
                assert answer.json()["version"] == "2"
                assert (
                    admin.post("/predict", params={"model": "other"}, json=[0] * 4).status_code
                    == 404
                )
        assert cluster.requests_by_version(1).get("2", 0) > 0


@contextlib.contextmanager
def _worker_1_stopped(repo: Path) -> Iterator[tuple[Cluster, int]]:
    """Two workers in explicit mode with a 5 s admin timeout, worker 1 stopped (SIGSTOP) while
    the block runs (its pid given), resumed after it unless it is gone by then."""
    # NOTE: the timeout also bounds the healthy worker's own apply (5 s: a loaded machine),
    # and the client waits longer than it
    os.environ["MODELYARD_SERVER_ADMIN_TIMEOUT_S"] = "5"
    try:
        cluster_cm = two_workers(repo, "--model-control-mode", "explicit")
        cluster = cluster_cm.__enter__()
    finally:
        del os.environ["MODELYARD_SERVER_ADMIN_TIMEOUT_S"]
    try:
        stopped = next(line["pid"] for line in cluster.lines if line["worker"] == 1)
        os.kill(stopped, signal.SIGSTOP)
        try:
            yield cluster, stopped
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(stopped, signal.SIGCONT)
    finally:
        cluster_cm.__exit__(None, None, None)


async def _post_to_the_live_worker(url: str, path: str) -> httpx.Response:
    """POST ``path`` on a connection the live worker holds: a health check that times out
    means the kernel gave the connection to the stopped worker (try another); one answered,
    and the call goes on the same connection."""
    for _ in range(40):
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as admin:
            try:
                await admin.get("/v2/health/live", timeout=1)
            except httpx.TimeoutException:
                continue
            return await admin.post(path)
    raise AssertionError("no connection reached the live worker in 40 tries")


async def test_a_worker_that_does_not_answer_fails_the_call_with_the_reason(
    repo: Path, publish: Callable[..., Path]
) -> None:
    publish("clf", 1)
    with _worker_1_stopped(repo) as (cluster, _):
        answer = await _post_to_the_live_worker(cluster.url, "/v2/repository/models/clf/load")
        assert answer.status_code == 504, answer.text
        assert "worker 1" in answer.json()["error"]
        assert "1 of 2 workers applied repository.load" in answer.json()["error"]


async def test_a_worker_restarted_after_a_failed_apply_comes_up_as_the_others_are(
    repo: Path, publish: Callable[..., Path]
) -> None:
    """An unload that one worker did not apply (stopped, then killed) answered that it failed;
    the desired state kept the model loaded, so the restarted worker loaded it again while
    the other had unloaded it: the two answered differently for good (a fuzz, 2026-12-06)."""
    publish("clf", 1)
    publish("other", 1)
    with _worker_1_stopped(repo) as (cluster, stopped):
        answer = await _post_to_the_live_worker(cluster.url, "/v2/repository/models/other/unload")
        assert answer.status_code == 504, answer.text
        assert "1 of 2 workers applied repository.unload" in answer.json()["error"]
        os.kill(stopped, signal.SIGKILL)
        line = await asyncio.to_thread(cluster.read_line)
        assert (line["worker"], line["pid"] != stopped) == (1, True)
        with fresh_client(cluster.url) as admin:
            state = admin.get("/v2/repository/workers").json()
            assert state["workers_applied"] == 2
            assert [w["models"] for w in state["workers"]] == [{"clf": [1]}] * 2


async def test_a_worker_failing_before_it_listens_stops_the_server_with_exit_1(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "no-such-repository"
    ports = ["--grpc-port", str(free_ports(1)), "--http-port", str(free_ports(1))]
    with serve_subprocess(missing, *ports, "--metrics-port", "-1", "--workers", "2") as proc:
        assert await asyncio.to_thread(proc.wait, 60) == 1


async def test_poll_mode_routes_and_unloads_hold_on_every_worker_and_after_a_restart(
    repo: Path, publish: Callable[..., Path]
) -> None:
    publish("clf", 1)
    publish("clf", 2)
    publish("other", 1)
    write_model_config(repo / "clf", ModelConfig(version_policy=VersionPolicy(kind="all")))
    args = ("--model-control-mode", "poll", "--poll-interval", "0.2")
    with two_workers(repo, *args) as cluster, fresh_client(cluster.url) as admin:
        routes = [{"version": 1, "weight": 1.0, "variant": "control"}]
        answer = admin.put("/v2/models/clf/routes", json={"routes": routes})
        assert answer.json()["workers_applied"] == 2
        assert admin.post("/v2/repository/models/other/unload").json()["workers_applied"] == 2
        victim = next(line for line in cluster.lines if line["worker"] == 1)
        os.kill(victim["pid"], signal.SIGKILL)
        assert (await asyncio.to_thread(cluster.read_line))["worker"] == 1
        state = admin.get("/v2/repository/workers").json()
        assert [w["models"] for w in state["workers"]] == [{"clf": [1, 2]}] * 2
        assert admin.get("/v2/models/clf/routes").json()["routes"] == routes
        for _ in range(20):  # polls keep reading config.json's routes; "other" stays unloaded
            assert (
                admin.post("/predict", params={"model": "clf"}, json=[0] * 4).json()["version"]
                == "1"
            )
            assert (
                admin.post("/predict", params={"model": "other"}, json=[0] * 4).status_code == 404
            )


async def test_invalid_admin_calls_fail_alike_on_two_workers_and_change_nothing(
    repo: Path, publish: Callable[..., Path]
) -> None:
    """What a single server refuses, two workers refuse with the same 4xx and reason (the
    fan-out carries the error back, never a 5xx), config.json is untouched and both go on."""
    for version in (1, 2, 3):
        publish("clf", version)
    config = repo / "clf" / "config.json"
    write_model_config(
        repo / "clf",
        ModelConfig(
            version_policy=VersionPolicy(kind="specific", versions=(1, 2)), default_version=1
        ),
    )
    before = config.read_bytes()
    with two_workers(repo, "--model-control-mode", "explicit") as cluster:
        async with httpx.AsyncClient(base_url=cluster.url, timeout=60) as admin:
            for routes, problem in INVALID_ROUTES:
                text = routes if isinstance(routes, str) else json.dumps(routes)
                body = f'{{"routes": {text}}}'
                answer = await admin.put("/v2/models/clf/routes", content=body)
                assert answer.status_code == 400, answer.text
                assert problem in answer.json()["error"]
            calls: list[tuple[str, str, dict[str, Any] | None, int]] = [
                ("post", "/v2/repository/models/clf/load", {"parameters": {"c": 1}}, 400),
                ("post", "/v2/repository/models/nope/load", None, 404),
                ("post", "/v2/repository/models/nope/unload", None, 404),
                ("put", "/v2/models/nope/routes", {"routes": []}, 404),
                ("put", "/v2/models/clf/routes", {}, 400),
                ("get", "/v2/models/nope/versions/1/sketches", None, 404),
            ]
            for method, path, body_json, status in calls:
                answer = await admin.request(method, path, json=body_json)
                assert answer.status_code == status, (path, answer.text)
                assert answer.json()["error"], path
            assert config.read_bytes() == before
            assert (await admin.get("/v2/models/clf/routes")).json()["routes"] == []
        with fresh_client(cluster.url) as client:
            for _ in range(8):  # new connections: the kernel spreads them over both workers
                answer = client.post("/predict", params={"model": "clf"}, json=ROW)
                assert answer.status_code == 200, answer.text
                assert answer.json()["version"] == "1"
