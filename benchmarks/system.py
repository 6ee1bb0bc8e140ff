"""Describe the machine, the versions measured and the memory of a server's processes.

The machine is shared with other work while measuring, so the load average is recorded before
and after the run: compare contenders within one run only.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "grpcio",
    "protobuf",
    "uvloop",
    "uvicorn",
    "httptools",
    "fastapi",
    "starlette",
    "pydantic",
    "onnxruntime",
    "lightgbm",
    "numpy",
    "msgspec",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe_machine() -> dict[str, Any]:
    """CPU model and count, memory, kernel and the current load average."""
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "memory_gib": round(pages / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average": load_average(),
    }


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages now."""
    return [round(x, 2) for x in os.getloadavg()]


def _command_output(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "not available"
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0] if lines else "not available"


def versions(work_dir: Path) -> dict[str, str]:
    """Versions of the packages and tools that were measured."""
    found: dict[str, str] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    mlserver_python = work_dir / "mlserver-venv" / "bin" / "python"
    if mlserver_python.exists():
        found["mlserver (own venv)"] = _command_output(
            [
                str(mlserver_python),
                "-c",
                "from importlib.metadata import version as v; "
                "print(v('mlserver'), 'lightgbm-runtime', v('mlserver-lightgbm'), "
                "'uvloop', v('uvloop'), 'protobuf', v('protobuf'))",
            ]
        )
    found["wrk"] = _command_output(["wrk", "-v"])
    found["modelyard commit"] = _command_output(["git", "rev-parse", "--short", "HEAD"])
    return found


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def memory_of_group(group: int) -> list[dict[str, Any]]:
    """Peak (VmHWM) and current (VmRSS) memory of every process in process group ``group``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            if os.getpgid(pid) != group:
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
            found.append(
                {
                    "pid": pid,
                    "cmd": cmdline.strip(),
                    "peak_rss_mib": round(_status_kib(pid, "VmHWM") / 1024, 1),
                    "rss_mib": round(_status_kib(pid, "VmRSS") / 1024, 1),
                }
            )
        except (OSError, ProcessLookupError):
            continue
    return found
