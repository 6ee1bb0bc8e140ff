"""Optional cross-check with Triton's perf_analyzer (from the ``tritonclient==2.41.0`` wheel).

The binary needs ``libb64-0d`` (Debian) and ``libcudart.so.12`` (PyPI
``nvidia-cuda-runtime-cu12``) on ``LD_LIBRARY_PATH``, no GPU. Both Python packages go into
``<work>/triton-venv``. perf_analyzer only drives servers that answer Triton's ModelConfig RPC
(our echo server and modelyard; MLServer does not). When anything is missing the point is
skipped with the reason.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks.processes import ContenderUnavailable, flags, pin
from benchmarks.stats import Summary

PACKAGES = ("tritonclient==2.41.0", "nvidia-cuda-runtime-cu12==12.9.79")
LIBB64 = Path("/usr/lib/x86_64-linux-gnu/libb64.so.0d")
"""Debian's libb64-0d, which the perf_analyzer binary links against."""


def perf_analyzer_venv(work_dir: Path) -> Path:
    """Where perf_analyzer is installed below a work folder."""
    return work_dir / "triton-venv"


def cuda_lib_dir(venv: Path) -> Path | None:
    """The folder of libcudart.so.12 in the venv, if installed."""
    found = sorted(venv.glob("lib/python*/site-packages/nvidia/cuda_runtime/lib"))
    return found[0] if found else None


def install_perf_analyzer(work_dir: Path) -> Path:
    """Install perf_analyzer (and the CUDA runtime it loads) once; return the binary.

    Raises:
        ContenderUnavailable: the installation failed.
    """
    venv = perf_analyzer_venv(work_dir)
    binary = venv / "bin" / "perf_analyzer"
    if not binary.exists():
        shutil.rmtree(venv, ignore_errors=True)
        steps = [
            [sys.executable, "-m", "venv", str(venv)],
            [str(venv / "bin" / "pip"), "install", "-q", "--no-deps", *PACKAGES],
        ]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                raise ContenderUnavailable(f"perf_analyzer install failed: {done.stderr[-800:]}")
    return binary


def ensure_perf_analyzer(work_dir: Path) -> tuple[Path, Path]:
    """Install perf_analyzer once; return (binary, folder of libcudart.so.12).

    Raises:
        ContenderUnavailable: the installation failed or libb64 is missing.
    """
    binary = install_perf_analyzer(work_dir)
    libs = cuda_lib_dir(perf_analyzer_venv(work_dir))
    if not binary.exists() or libs is None:
        raise ContenderUnavailable("perf_analyzer or libcudart.so.12 not found after install")
    if not LIBB64.exists():
        raise ContenderUnavailable(
            "perf_analyzer needs libb64: `apt-get update && apt-get install -y libb64-0d`"
        )
    return binary, libs


def _summary(row: dict[str, str], concurrency: int) -> Summary:
    rate = float(row["Inferences/Second"])
    return {
        "throughput": rate,
        "rows_per_s": rate,
        "p50_ms": int(row["p50 latency"]) / 1e3,
        "p90_ms": int(row["p90 latency"]) / 1e3,
        "p99_ms": int(row["p99 latency"]) / 1e3,
        "max_ms": None,
        "errors": 0,
        "concurrency": concurrency,
        "rate": 0.0,
        "tool": "perf_analyzer",
    }


def perf_analyzer_point(
    work_dir: Path, client_cpus: str, address: str, model: str, concurrency: int, duration: float
) -> Summary:
    """One perf_analyzer run (gRPC, 1x32 FP32 rows, sync calls) at ``concurrency``.

    Raises:
        ContenderUnavailable: perf_analyzer is not usable here or failed against the server.
    """
    binary, libs = ensure_perf_analyzer(work_dir)
    report = work_dir / "perf_analyzer.csv"
    # A shared machine rarely gives three windows within a tight band; this is a cross-check
    # of our client, so any three windows are accepted (stability 100%, their average).
    options = flags(
        concurrency_range=concurrency,
        measurement_interval=max(500, int(duration * 1000 / 3)),
        max_trials=5,
        stability_percentage=100,
    )
    cmd = [
        "env",
        f"LD_LIBRARY_PATH={libs}",
        *pin(client_cpus),
        str(binary),
        "-m",
        model,
        "-i",
        "grpc",
        "-u",
        address,
        "--shape",
        "input:1,32",
        *options,
        "-f",
        str(report),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration * 6 + 60)
    if done.returncode != 0:
        raise ContenderUnavailable(f"perf_analyzer failed: {(done.stdout + done.stderr)[-400:]}")
    return _summary(next(csv.DictReader(io.StringIO(report.read_text()))), concurrency)


if __name__ == "__main__":  # `python -m benchmarks.perf_analyzer WORK_DIR`: install only (make)
    install_perf_analyzer(Path(sys.argv[1]))
