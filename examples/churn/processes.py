"""Child processes the demo owns: started, awaited until they announce readiness, stopped.

Every service prints a machine-readable line once it listens (the inference server one JSON
line per worker, the control plane its URL); :meth:`ManagedProcess.wait_for` reads stdout
until a line matches, so nothing polls or sleeps. :class:`ProcessGroup` stops every process it
started — SIGTERM, then SIGKILL after a grace period — on normal exit, on failure and on Ctrl-C.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from queue import Empty, Queue
from typing import Any


def free_port() -> int:
    """A TCP port nothing listens on right now (for multi-worker servers, which cannot
    share an ephemeral port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> int:
    """A port p such that p .. p+count-1 are free now (metrics: worker k serves on p + k).

    Raises:
        RuntimeError: no such range was found in 100 tries.
    """
    for _ in range(100):
        base = free_port()
        if base + count > 65535:
            continue
        held = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise RuntimeError(f"no range of {count} free ports found")


class ManagedProcess:
    """One child process whose stdout is read line by line on a thread."""

    def __init__(self, name: str, args: list[str], *, cwd: Path, env: dict[str, str], log: Path):
        self.name = name
        self.log_path = log
        self._log = log.open("w")
        self.process = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            start_new_session=True,
        )
        self._lines: Queue[str | None] = Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._log.write(line)
            self._log.flush()
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def wait_for(self, matches: Callable[[str], Any], timeout: float = 120.0) -> Any:
        """The first truthy ``matches(line)`` of stdout.

        Raises:
            RuntimeError: the process exited first, or ``timeout`` seconds passed.
        """
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except Empty:
                raise RuntimeError(
                    f"{self.name} not ready after {timeout:.0f} s; see {self.log_path}"
                ) from None
            if line is None:
                raise RuntimeError(
                    f"{self.name} exited ({self.process.wait()}); see {self.log_path}"
                )
            found = matches(line)
            if found:
                return found

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM the process group, SIGKILL it if it has not exited after ``grace`` s."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._reader.join(timeout=5)
        self._log.close()


def control_plane_url(line: str) -> str | None:
    """The URL in the control plane's ``listening on`` line."""
    match = re.search(r"listening on (http://\S+)", line)
    return match.group(1) if match else None


def listening_worker(line: str) -> dict[str, Any] | None:
    """The inference server's per-worker ``{"event": "listening", ...}`` line."""
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) and event.get("event") == "listening" else None


class ProcessGroup:
    """The processes of one demo run; :meth:`stop_all` ends them in reverse start order."""

    def __init__(self, cwd: Path, env: dict[str, str], log_dir: Path) -> None:
        self.cwd = cwd
        self.env = env
        self.log_dir = log_dir
        self.processes: list[ManagedProcess] = []

    def start(self, name: str, *args: str) -> ManagedProcess:
        """Start ``python -m modelyard ARGS`` as ``name``."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        process = ManagedProcess(
            name,
            [sys.executable, "-m", "modelyard", *args],
            cwd=self.cwd,
            env=self.env,
            log=self.log_dir / f"{name}.log",
        )
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        """Stop every process (idempotent)."""
        while self.processes:
            self.processes.pop().stop()


@contextmanager
def owned_processes(group: ProcessGroup, *, keep_running: bool) -> Iterator[ProcessGroup]:
    """Stop the group's processes on exit (also on failure and Ctrl-C) unless asked not to
    after a successful run."""
    succeeded = False
    try:
        yield group
        succeeded = True
    finally:
        if not (keep_running and succeeded):
            group.stop_all()
