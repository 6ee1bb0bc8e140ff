"""Start contender servers pinned to a CPU, await their readiness, stop them cleanly.

Readiness is awaited by probing (port file, then the V2 health endpoints), never by sleeping
a fixed time; a server that exits or does not get ready within its timeout fails with the tail
of its log, so a broken contender is reported, not waited on forever.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from benchmarks.portfile import read_ports
from inference_server.grpc._generated import grpc_service_pb2 as pb
from inference_server.grpc._generated import grpc_service_pb2_grpc as pb_grpc

POLL_S = 0.05


class ContenderUnavailable(Exception):
    """A contender cannot run here (missing tool, server not built, failed start)."""


def free_port() -> int:
    """A port that is free now, for servers that cannot bind port 0 themselves."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


BIND_ATTEMPTS = 3
"""Starts of one server tried on fresh ports when a port was taken meanwhile."""


def on_fresh_ports(start_once: Callable[[], ServerProcess]) -> ServerProcess:
    """``start_once()`` (which picks its ports with :func:`free_port`), tried again on fresh
    ports when the server could not bind one: a port is free when picked, but a client's
    ephemeral port can take it before the server binds (seen: a corun's second server failed
    with EADDRINUSE). Any other failure, and the last attempt's, is raised.

    Raises:
        ContenderUnavailable: the server did not start.
    """
    for attempt in range(BIND_ATTEMPTS):
        try:
            return start_once()
        except ContenderUnavailable as exc:
            if "address already in use" not in str(exc) or attempt + 1 == BIND_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def flags(**options: object) -> list[str]:
    """Command-line flags from keyword arguments (``rows_file=p`` -> ``--rows-file p``).

    >>> flags(rows_file="r.npy", concurrency=8)
    ['--rows-file', 'r.npy', '--concurrency', '8']
    """
    return [
        item
        for key, value in options.items()
        for item in (f"--{key.replace('_', '-')}", str(value))
    ]


def pin(cpus: str) -> list[str]:
    """The command prefix that pins a process to ``cpus`` (e.g. "0" or "0,1")."""
    return ["taskset", "-c", cpus]


@dataclass
class ServerProcess:
    """A started server process, its log and the ports it listens on."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    ports: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    cleanup: list[Callable[[], None]] = field(default_factory=list)
    """Called (in order) once the process has stopped, e.g. to drop a database it used."""

    def log_tail(self, chars: int = 1500) -> str:
        """The last ``chars`` characters of the server log."""
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def check_alive(self) -> None:
        """Raise ContenderUnavailable when the process has exited."""
        if self.process.poll() is not None:
            raise ContenderUnavailable(
                f"{self.name} exited with {self.process.returncode}: {self.log_tail()}"
            )

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the server's own process group (its workers included), then SIGKILL it if
        it does not exit in time."""
        group = self.process.pid  # start_server made the server a group leader
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            self.process.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)  # stray workers of a server that exited
        while self.cleanup:
            self.cleanup.pop(0)()


def start_server(
    name: str,
    cmd: list[str],
    log: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> ServerProcess:
    """Start ``cmd`` with stdout and stderr going to ``log`` (``env``: added to this
    process's environment)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
            env={**os.environ, **env} if env else None,
        )
    return ServerProcess(name, process, log)


def await_port_file(server: ServerProcess, path: Path, timeout: float) -> dict[str, int]:
    """Wait until the server wrote its bound ports to ``path``."""
    deadline = time.monotonic() + timeout
    while (ports := read_ports(path)) is None:
        server.check_alive()
        if time.monotonic() > deadline:
            raise ContenderUnavailable(f"{server.name} wrote no port file: {server.log_tail()}")
        time.sleep(POLL_S)
    server.ports.update(ports)
    return ports


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(200 <= response.status < 300)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _grpc_model_ready(target: str, model: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        try:
            reply = stub.ModelReady(pb.ModelReadyRequest(name=model), timeout=2)
        except grpc.RpcError:
            return False
        return bool(reply.ready)


def await_ready(
    server: ServerProcess,
    timeout: float,
    *,
    http_urls: tuple[str, ...] = (),
    grpc_targets: tuple[str, ...] = (),
    model: str = "reference",
) -> None:
    """Probe the HTTP URLs and the gRPC ModelReady RPCs until all answer ready.

    Raises:
        ContenderUnavailable: the server exited or was not ready within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    pending_http, pending_grpc = list(http_urls), list(grpc_targets)
    while pending_http or pending_grpc:
        server.check_alive()
        pending_http = [u for u in pending_http if not _http_ok(u)]
        pending_grpc = [t for t in pending_grpc if not _grpc_model_ready(t, model)]
        if not (pending_http or pending_grpc):
            return
        if time.monotonic() > deadline:
            raise ContenderUnavailable(
                f"{server.name} not ready after {timeout:.0f}s "
                f"({pending_http + pending_grpc}): {server.log_tail()}"
            )
        time.sleep(POLL_S)
