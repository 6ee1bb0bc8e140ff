"""Server CPU per request with the drift sketches off and on, at a fixed rate (issue 16 §4).

Each variant gets a fresh ``modelyard serve`` (1 worker, pinned to CPU 0, prediction log
off) on the reference model, and the REST V2 open loop of :mod:`benchmarks.http_load` (one
row per request, from CPU 1) at ``--rate`` requests/s for ``--duration`` seconds after a
1-second warm-up. The figure is the server process's utime + stime (``/proc/<pid>/stat``, all
threads) from just before the load starts until ``--settle`` seconds after it ends (so the
background flushes catch up), divided by the requests it answered meanwhile (its
``modelyard_inference_requests`` counter; the load generator sheds what it cannot send in
time on a busy machine); and, apart, the CPU time of the
sketch folds alone (the server's ``modelyard_sketch_cpu_seconds`` counter, the folding
thread's ``thread_time``: unlike the process figure, barely moved by other processes on the
machine). Variants:

* ``off``: ``server.sketches`` off;
* ``log``: sketches on, the version has no ``reference.json`` (log-bucket histograms, as in
  the harness's observation pair);
* ``bins``: sketches on, the version carries a ``reference.json`` (counts on its bins: 32
  features of 107 quantile bins and the score).

With ``--baseline DIR`` (a checkout of the code before a change), ``log-before`` and
``bins-before`` run that code in the same rounds. Variants are interleaved per round;
medians over ``--rounds`` are printed with the spread, and the extra CPU of each sketching
variant over ``off`` in the same round. CPU time rather than throughput, because the machine
is shared.

Usage: ``python -m benchmarks.sketch_cpu [--rate 3000] [--duration 8] [--rounds 5]
[--baseline DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import onnxruntime as ort

from benchmarks.messages import http_infer_body
from benchmarks.modelyard_server import serve_command
from benchmarks.processes import await_ready, free_port, pin, start_server
from benchmarks.reference import MODEL_NAME, build_reference
from converters.reference import REFERENCE, reference_data
from modelyard.sketches import build_reference_profile, encode

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work" / "sketch_cpu"
VARIANTS = ("off", "log", "bins")


def _repositories(onnx: Path) -> dict[str, Path]:
    """One repository without and one with a reference.json (5,000 training rows)."""
    x = reference_data(REFERENCE)[0][:5000].astype(np.float32)
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    probabilities = session.run(["probabilities"], {"input": x})[0]
    names = [f"f{i}" for i in range(x.shape[1])]
    profile = build_reference_profile(
        {n: x[:, i] for i, n in enumerate(names)}, score=np.asarray(probabilities)[:, 1]
    )
    repos = {}
    for name, reference in (("plain", None), ("binned", encode(profile))):
        version = WORK / name / MODEL_NAME / "1"
        shutil.rmtree(WORK / name, ignore_errors=True)
        version.mkdir(parents=True)
        shutil.copyfile(onnx, version / "model.onnx")
        if reference is not None:
            (version / "reference.json").write_bytes(reference)
        repos[name] = WORK / name
    return repos


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _counters(metrics: int) -> tuple[float, float]:
    """(answered requests, sketch fold CPU seconds) from the server's metrics endpoint."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5) as answer:
        text = answer.read().decode()

    def total(name: str) -> float:
        pattern = rf"^{name}(?:{{[^}}]*}})? (\S+)$"
        return sum(float(v) for v in re.findall(pattern, text, re.MULTILINE))

    return total("modelyard_inference_requests_total"), total("modelyard_sketch_cpu_seconds_total")


def run_variant(
    variant: str, repo: Path, body: Path, args: argparse.Namespace, code: Path = ROOT
) -> tuple[float, float]:
    """Server CPU and fold CPU, µs per request, of one variant (a fresh server on ``code``)."""
    http, metrics = free_port(), free_port()
    cmd = serve_command(sys.executable, repo, "0", 1, free_port(), http, metrics)
    env = {
        "MODELYARD_SERVER_SKETCHES": "false" if variant == "off" else "true",
        "MODELYARD_PREDICTION_LOG_ENABLED": "false",
        "PYTHONPATH": str(code),
    }
    server = start_server(f"sketch-{variant}", cmd, WORK / f"{variant}.log", cwd=code, env=env)
    try:
        url = f"http://127.0.0.1:{http}/v2/models/{MODEL_NAME}"
        await_ready(server, 60, http_urls=(f"{url}/ready",))
        pid = server.process.pid
        load = [
            *pin("1"),
            sys.executable,
            "-m",
            "benchmarks.http_load",
            "--url",
            f"{url}/infer",
            "--body-file",
            str(body),
            "--rate",
            str(args.rate),
            "--duration",
            str(args.duration),
            "--connections",
            "16",
        ]
        before, (answered, folds) = _cpu_seconds(pid), _counters(metrics)
        out = subprocess.run(load, cwd=ROOT, check=True, capture_output=True, text=True)
        time.sleep(args.settle)  # NOTE: lets the background flush run; CPU, not a sync
        used = _cpu_seconds(pid) - before
        answered_after, folds_after = _counters(metrics)
        summary = json.loads(out.stdout)[0]
        if summary.get("error_codes"):
            print(f"  {variant}: errors {summary['error_codes']}", file=sys.stderr)
        requests = answered_after - answered
        return used / requests * 1e6, (folds_after - folds) / requests * 1e6
    finally:
        server.stop()


def main() -> None:
    """Run the interleaved rounds and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=3000.0)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="code to run as log-before/bins-before")
    args = parser.parse_args()
    variants = VARIANTS + (("log-before", "bins-before") if args.baseline else ())
    files = build_reference(ROOT / "benchmarks" / ".work")
    repos = _repositories(files.onnx)
    body = WORK / "body.json"
    body.write_bytes(http_infer_body(np.load(files.rows)[:1]))
    per: dict[str, list[float]] = {v: [] for v in variants}
    fold: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(args.rounds):
        for variant in variants:
            repo = repos["binned" if variant.startswith("bins") else "plain"]
            code = args.baseline if variant.endswith("-before") else ROOT
            used, folded = run_variant(variant, repo, body, args, code)
            per[variant].append(used)
            fold[variant].append(folded)
        print(
            f"round {r + 1}: "
            + ", ".join(f"{v} {per[v][-1]:.1f} us (folds {fold[v][-1]:.2f})" for v in variants)
        )
    for variant in variants:
        folds = sorted(fold[variant])
        print(
            f"{variant}: folds {folds[len(folds) // 2]:.2f} us/request "
            f"({folds[0]:.2f}-{folds[-1]:.2f})"
        )
    for variant in variants:
        values = sorted(per[variant])
        extra = sorted(a - b for a, b in zip(per[variant], per["off"], strict=True))
        print(
            f"{variant}: {values[len(values) // 2]:.1f} us/request "
            f"({values[0]:.1f}-{values[-1]:.1f}); over off {extra[len(extra) // 2]:+.1f} us "
            f"({extra[0]:+.1f} to {extra[-1]:+.1f})"
        )


if __name__ == "__main__":
    main()
