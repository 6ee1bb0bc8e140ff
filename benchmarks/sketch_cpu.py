"""Server CPU per request with the drift sketches off and on, at a fixed rate (issue 16 §4).

Each variant gets a fresh ``modelyard serve`` (1 worker, pinned to CPU 0, prediction log off)
on the reference model, and the REST V2 open loop of :mod:`benchmarks.http_load` (one row per
request, from CPU 1) at ``--rate`` requests/s for ``--duration`` seconds after a 1-second
warm-up. The figure is the server's CPU seconds as the harness counts them
(:class:`benchmarks.server_cpu.ServerCpu`: its process group, all threads) from just before the
load starts until ``--settle`` seconds after it ends (so the background flushes catch up),
divided by the requests it answered meanwhile (its ``modelyard_inference_requests`` counter;
the load generator sheds what it cannot send in time on a busy machine); and, apart, the CPU
time of the sketch folds alone (the server's ``modelyard_sketch_cpu_seconds`` counter, the
folding thread's ``thread_time``: unlike the process figure, barely moved by other processes on
the machine). Variants:

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
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from benchmarks.messages import http_infer_body
from benchmarks.modelyard_server import serve_command
from benchmarks.processes import await_ready, free_port, pin, start_server
from benchmarks.reference import MODEL_NAME, build_reference
from benchmarks.server_cpu import ServerCpu
from benchmarks.server_metrics import counters
from converters.reference import REFERENCE, reference_data
from modelyard.sketches import build_reference_profile, encode

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("off", "log", "bins")


def _repositories(onnx: Path, work: Path) -> dict[str, Path]:
    """One repository without and one with a reference.json (5,000 training rows), under
    ``work``."""
    x = reference_data(REFERENCE)[0][:5000].astype(np.float32)
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    probabilities = session.run(["probabilities"], {"input": x})[0]
    names = [f"f{i}" for i in range(x.shape[1])]
    profile = build_reference_profile(
        {n: x[:, i] for i, n in enumerate(names)}, score=np.asarray(probabilities)[:, 1]
    )
    repos = {}
    for name, reference in (("plain", None), ("binned", encode(profile))):
        version = work / name / MODEL_NAME / "1"
        shutil.rmtree(work / name, ignore_errors=True)
        version.mkdir(parents=True)
        shutil.copyfile(onnx, version / "model.onnx")
        if reference is not None:
            (version / "reference.json").write_bytes(reference)
        repos[name] = work / name
    return repos


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
    log = args.work_dir / "sketch_cpu" / f"{variant}.log"
    server = start_server(f"sketch-{variant}", cmd, log, cwd=code, env=env)
    server.ports.update(http=http, metrics=metrics)
    try:
        url = f"http://127.0.0.1:{http}/v2/models/{MODEL_NAME}"
        await_ready(server, 60, http_urls=(f"{url}/ready",))
        cpu = ServerCpu(server.process.pid)  # NOTE: the server leads its own process group
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
        before, counted = cpu.snapshot(), counters(server)
        out = subprocess.run(load, cwd=ROOT, check=True, capture_output=True, text=True)
        time.sleep(args.settle)  # NOTE: lets the background flush run; CPU, not a sync
        used = cpu.snapshot().server_s - before.server_s
        after = counters(server)
        summary = json.loads(out.stdout)[0]
        if summary.get("error_codes"):
            print(f"  {variant}: errors {summary['error_codes']}", file=sys.stderr)
        requests = after["requests"] - counted["requests"]
        return used / requests * 1e6, (after["sketch_s"] - counted["sketch_s"]) / requests * 1e6
    finally:
        server.stop()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=3000.0)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="code to run as log-before/bins-before")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "benchmarks" / ".work")
    return parser.parse_args(argv)


def measure(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    """Run the interleaved rounds (printing each): per variant, ``server_us`` (server CPU
    per request) and ``fold_us`` (sketch fold CPU per request), one value a round."""
    variants = VARIANTS + (("log-before", "bins-before") if args.baseline else ())
    files = build_reference(args.work_dir)
    work = args.work_dir / "sketch_cpu"
    repos = _repositories(files.onnx, work)
    body = work / "body.json"
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
            + ", ".join(f"{v} {per[v][-1]:.1f} us (folds {fold[v][-1]:.2f})" for v in variants),
            flush=True,
        )
    return {v: {"server_us": per[v], "fold_us": fold[v]} for v in variants}


def summary_lines(result: dict[str, dict[str, list[float]]]) -> list[str]:
    """Per variant: the fold CPU, then the server CPU and its excess over ``off`` in the
    same round, each as median (min-max) over the rounds.

    >>> r = {"off": {"server_us": [50.0, 52.0, 60.0], "fold_us": [0.0, 0.0, 0.0]},
    ...      "log": {"server_us": [55.0, 57.0, 61.0], "fold_us": [2.0, 2.5, 3.0]}}
    >>> print("\\n".join(summary_lines(r)))
    off: folds 0.00 us/request (0.00-0.00)
    log: folds 2.50 us/request (2.00-3.00)
    off: 52.0 us/request (50.0-60.0); over off +0.0 us (+0.0 to +0.0)
    log: 57.0 us/request (55.0-61.0); over off +5.0 us (+1.0 to +5.0)
    """
    lines = []
    for variant, values in result.items():
        folds = sorted(values["fold_us"])
        lines.append(
            f"{variant}: folds {folds[len(folds) // 2]:.2f} us/request "
            f"({folds[0]:.2f}-{folds[-1]:.2f})"
        )
    off = result["off"]["server_us"]
    for variant, values in result.items():
        per = sorted(values["server_us"])
        extra = sorted(a - b for a, b in zip(values["server_us"], off, strict=True))
        lines.append(
            f"{variant}: {per[len(per) // 2]:.1f} us/request "
            f"({per[0]:.1f}-{per[-1]:.1f}); over off {extra[len(extra) // 2]:+.1f} us "
            f"({extra[0]:+.1f} to {extra[-1]:+.1f})"
        )
    return lines


def main() -> None:
    """Run the interleaved rounds and print the medians."""
    print("\n".join(summary_lines(measure(parse_args()))))


if __name__ == "__main__":
    main()
