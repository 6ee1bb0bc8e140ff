"""The harness's starter of ``modelyard serve``: a port taken between picking it and binding it
makes it start again on fresh ports, and nothing else does."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from benchmarks import modelyard_server, processes
from benchmarks.processes import ContenderUnavailable


def _fake_starts(monkeypatch: pytest.MonkeyPatch, failures: list[str]) -> list[list[int]]:
    """Patch the starter's parts; each start fails with the next of ``failures`` ("" starts);
    returns the ports each start was given."""
    given: list[list[int]] = []
    ports = iter(range(20_000, 20_100))
    outcomes = iter(failures)
    monkeypatch.setattr(modelyard_server, "check_available", lambda ctx: None)
    monkeypatch.setattr(modelyard_server, "write_repository", lambda ctx, n, b: Path("r"))
    monkeypatch.setattr(modelyard_server, "observation_env", lambda ctx, n, o: ({}, None))
    monkeypatch.setattr(modelyard_server, "free_port", lambda: next(ports))

    def serve_command(python: Any, root: Any, cpus: Any, workers: Any, *ports: int) -> list[str]:
        given.append(list(ports))
        return ["serve"]

    def start_server(name: str, cmd: Any, log: Any, **kwargs: Any) -> Any:
        return SimpleNamespace(ports={}, cleanup=[], stop=lambda: None)

    def await_ready(server: Any, timeout: float, **kwargs: Any) -> None:
        failure = next(outcomes)
        if failure:
            raise ContenderUnavailable(failure)

    monkeypatch.setattr(modelyard_server, "serve_command", serve_command)
    monkeypatch.setattr(modelyard_server, "start_server", start_server)
    monkeypatch.setattr(modelyard_server, "await_ready", await_ready)
    monkeypatch.setattr(modelyard_server, "_await_http", lambda server, port: None)
    return given


def _ctx() -> Any:
    return SimpleNamespace(
        modelyard_python="python", modelyard_code=None, work_dir=Path("w"), log=Path
    )


def test_a_port_taken_meanwhile_starts_again_on_fresh_ports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    given = _fake_starts(monkeypatch, ["s exited with 1: OSError: address already in use", ""])
    server = modelyard_server.starter("s", {}, 1, "0")(_ctx())
    assert len(given) == 2
    assert not set(given[0]) & set(given[1])
    assert server.ports == dict(zip(("grpc", "http", "metrics"), given[1], strict=True))


def test_other_failures_and_the_last_attempt_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    given = _fake_starts(monkeypatch, ["s exited with 1: no model"])
    with pytest.raises(ContenderUnavailable, match="no model"):
        modelyard_server.starter("s", {}, 1, "0")(_ctx())
    assert len(given) == 1
    taken = "s exited with 1: address already in use"
    given = _fake_starts(monkeypatch, [taken] * processes.BIND_ATTEMPTS)
    with pytest.raises(ContenderUnavailable, match="address already in use"):
        modelyard_server.starter("s", {}, 1, "0")(_ctx())
    assert len(given) == processes.BIND_ATTEMPTS
