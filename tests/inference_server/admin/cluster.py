"""A real ``modelyard serve --workers 2`` for tests: ports, readiness lines, metrics, load."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from examples.churn.processes import free_ports

from ..conftest import serve_subprocess

ROW = [0.5, -1.0, 2.0, 0.25]
WORKERS = 2
_REQUESTS = re.compile(
    r'^modelyard_inference_requests_total\{[^}]*version="(\d+)"[^}]*\} (\S+)$', re.M
)


class Cluster:
    """A running multi-worker server: its process, ports and workers' readiness lines."""

    def __init__(self, proc: subprocess.Popen[str], http_port: int, metrics_port: int) -> None:
        self.proc = proc
        self.http_port = http_port
        self.metrics_port = metrics_port
        self.url = f"http://127.0.0.1:{http_port}"
        self.lines: list[dict[str, Any]] = []

    def read_line(self) -> dict[str, Any]:
        """The next readiness line (a worker listening), blocking."""
        assert self.proc.stdout is not None
        text = self.proc.stdout.readline()
        assert text, f"server exited with {self.proc.poll()}"
        line: dict[str, Any] = json.loads(text)
        self.lines.append(line)
        return line

    def requests_by_version(self, worker: int) -> dict[str, float]:
        """Successful inference requests per version, from worker ``worker``'s own metrics."""
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port + worker}/metrics").text
        return {version: float(count) for version, count in _REQUESTS.findall(text)}

    def served(self) -> list[float]:
        """Total successful requests per worker."""
        return [sum(self.requests_by_version(w).values()) for w in range(WORKERS)]


START_ATTEMPTS = 3
"""Starts tried when the server exits before every worker listened: the ports are probed free
and then released (N workers share the gRPC and HTTP ports and take metrics ports p..p+N-1, so
port 0 cannot name them), and another process may bind one in between (seen once in CI:
EADDRINUSE on a metrics port). A server that fails for any other reason fails every attempt."""


@contextmanager
def two_workers(repo: Path, *args: str) -> Iterator[Cluster]:
    """``modelyard serve --workers 2`` on free ports, returned once both workers listen."""
    for attempt in range(1, START_ATTEMPTS + 1):
        grpc_port, http_port = free_ports(1), free_ports(1)
        metrics = free_ports(WORKERS)
        ports = ["--grpc-port", str(grpc_port), "--http-port", str(http_port)]
        ports += ["--metrics-port", str(metrics), "--workers", str(WORKERS)]
        with serve_subprocess(repo, *ports, *args) as proc:
            cluster = Cluster(proc, http_port, metrics)
            try:
                for _ in range(WORKERS):
                    cluster.read_line()
            except AssertionError:
                if attempt < START_ATTEMPTS and proc.wait(timeout=60) != 0:
                    continue  # NOTE: a port taken between the probe and the bind: new ports
                raise
            yield cluster
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0
            return


def fresh_client(url: str) -> httpx.Client:
    """A client opening a new connection per request, so the kernel spreads them over workers."""
    return httpx.Client(base_url=url, limits=httpx.Limits(max_keepalive_connections=0), timeout=30)


class Load:
    """Concurrent clients, each request on a new connection.

    Samples are (sent, status, version or error, routing key, received), monotonic times.
    """

    def __init__(self, url: str, clients: int = 6, keys: int = 0) -> None:
        self.url = url
        self.clients = clients
        self.keys = keys
        self.samples: list[tuple[float, int, str, str | None, float]] = []
        self.stop = False
        self._progress = asyncio.Event()

    async def _client(self, index: int) -> None:
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=self.url, limits=limits, timeout=30) as http:
            n = 0
            while not self.stop:
                n += 1
                key = f"user-{index}-{n % self.keys}" if self.keys else None
                params = {"model": "clf", **({"routing_key": key} if key else {})}
                sent = time.monotonic()
                answer = await http.post("/predict", params=params, json=ROW)
                body = answer.json()
                version = body.get("version", "") if answer.status_code == 200 else body["error"]
                self.samples.append((sent, answer.status_code, version, key, time.monotonic()))
                self._progress.set()

    def start(self) -> asyncio.Future[list[None]]:
        return asyncio.gather(*(self._client(i) for i in range(self.clients)))

    async def wait_sent_after(self, moment: float, count: int, limit_s: float = 60.0) -> None:
        """Return once ``count`` requests sent after ``moment`` were answered (no sleeping)."""
        async with asyncio.timeout(limit_s):
            while sum(1 for s in self.samples if s[0] > moment) < count:
                self._progress.clear()
                await self._progress.wait()
