"""``make loadtest``: run the locust HTTP and gRPC users headless with SLA assertions.

Against a running server (``--host``, ``--http-port``, ``--grpc-port``), or against a server
this command starts itself from the harness catalogue (``--start modelyard``, ``--start naive``,
``--start echo-grpc``...; pinned to CPU 0, free ports, readiness awaited). Locust runs pinned
to CPU 1, one protocol after the other; the exit code is non-zero when any SLA failed.

The locust commands, their output and the verdict go to stdout and, with ``log`` (the CLI's
``--log``, by default ``benchmarks/results/loadtest-latest.log``: the one load-test file kept
in git, replaced by each run, see :mod:`benchmarks.results_files`), to that file too.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from benchmarks.contenders import Context
from benchmarks.harness import all_contenders
from benchmarks.processes import ServerProcess, pin

LOCUST_DIR = Path(__file__).parent / "locust"


@dataclass(frozen=True)
class LoadTest:
    """Parameters of one load test."""

    host: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    protocols: tuple[str, ...] = ("http", "grpc")
    users: int = 16
    run_time: str = "20s"
    target_rps: float = 0.0
    sla_p99_ms: float = 25.0
    sla_max_error_rate: float = 0.001
    sla_min_rps: float = 0.0
    no_predict: bool = False
    client_cpus: str = "1"
    log: Path | None = None
    command: str = ""
    """The command line that started the test (first line of the log)."""


def locust_command(test: LoadTest, protocol: str) -> list[str]:
    """The headless locust command for one protocol."""
    if protocol == "http":
        locustfile, host = "http_user.py", f"http://{test.host}:{test.http_port}"
    else:
        locustfile, host = "grpc_user.py", f"{test.host}:{test.grpc_port}"
    cmd = [
        *pin(test.client_cpus),
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUST_DIR / locustfile),
        "--headless",
        "--only-summary",
        "--host",
        host,
        "-u",
        str(test.users),
        "-r",
        str(test.users),
        "-t",
        test.run_time,
        "--stop-timeout",
        "5",
        "--target-rps",
        str(test.target_rps),
        "--sla-p99-ms",
        str(test.sla_p99_ms),
        "--sla-max-error-rate",
        str(test.sla_max_error_rate),
        "--sla-min-rps",
        str(test.sla_min_rps),
    ]
    if protocol == "http" and test.no_predict:
        cmd.append("--no-predict")
    return cmd


def start_local(name: str, work_dir: Path) -> tuple[ServerProcess, tuple[str, ...]]:
    """Start contender ``name`` from the harness catalogue; return it and its protocols."""
    contender = next((c for c in all_contenders() if c.name == name), None)
    if contender is None or contender.start is None:
        raise SystemExit(f"no server contender named {name!r}")
    work_dir = work_dir.resolve()
    ctx = Context(work_dir=work_dir, server_cpus=contender.server_cpus)
    server = contender.start(ctx)
    return server, tuple(dict.fromkeys(e.protocol for e in contender.endpoints))


def tee(command: Sequence[str], log: TextIO | None) -> int:
    """Run ``command``, copying its output (stdout and stderr) line by line to stdout and to
    ``log``; return its exit code."""
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            _say(line, log)
    return process.returncode


def _say(text: str, log: TextIO | None) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
    if log is not None:
        log.write(text)
        log.flush()


def run_loadtest(test: LoadTest) -> int:
    """Run locust for each protocol; return 0 when every SLA held, else 1."""
    failed = []
    log = None
    if test.log is not None:
        test.log.parent.mkdir(parents=True, exist_ok=True)
        log = test.log.open("w")
    try:
        if test.command:
            _say(f"$ {test.command}\n", log)
        for protocol in test.protocols:
            command = locust_command(test, protocol)
            _say(f"== locust {protocol}: {' '.join(command)}\n", log)
            if tee(command, log) != 0:
                failed.append(protocol)
        verdict = f"FAILED for {', '.join(failed)}" if failed else "passed"
        _say(f"loadtest: SLA {verdict}\n", log)
    finally:
        if log is not None:
            log.close()
    return 1 if failed else 0
