"""Batch scoring benchmark: a 2,000,000-row Parquet file through a batch job, against
onnxruntime's raw batch throughput on the same cores, in interleaved rounds.

``python -m benchmarks.batch_bench [--rows N] [--rounds R] [--workers W] [--row-group G]
[--memory-only] [--out FILE]``

- The model is the harness's reference model (``benchmarks.reference``: LightGBM binary,
  300 trees, 32 features, ONNX via the converters), built once into ``benchmarks/.work``.
- The input is the reference data tiled to ``--rows`` rows plus an ``id`` column, written once
  as Parquet in ``--row-group``-row groups (default 100,000; streamed, never whole in memory).
- **batch**: ``python -m control_plane.batch.runner`` on that file (W worker processes, one
  onnxruntime session each with ``cores // W`` threads, 65,536-row shards, Parquet out); wall
  time from start to exit, and the peak of the summed RSS of the job process tree sampled
  every 50 ms (psutil).
- **raw**: W processes, each one session with the same threads, scoring its share of the same
  row count from a 65,536-row float32 block already in memory: no I/O, no Arrow, no writing.
- Rounds alternate batch, raw, batch, raw ... so machine noise hits both alike; ``uptime``
  is recorded before and after. The raw result goes to ``--out``, by default
  ``benchmarks/results/batch-latest.json``, replacing the previous run's (the folder keeps one
  file per benchmark kind: :mod:`benchmarks.results_files`).
- ``--memory-only``: batch rounds only (no raw, no ratio), sampling every 100 ms also each
  process's USS (memory it alone holds; psutil ``memory_full_info``, which reads smaps and so
  costs more than RSS): the peaks per process show whether memory depends on the file size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.reference import build_reference
from benchmarks.results_files import checked_output, latest
from control_plane.batch.fingerprint import fingerprint_parts, job_fingerprint
from control_plane.batch.models import BatchOptions
from control_plane.batch.shards import JOB_FILE, JobDescription, save_json
from control_plane.batch.sources import list_inputs
from converters.reference import REFERENCE, reference_data

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work" / "batch"
CHUNK = 65_536
GROUP = 100_000


def feature_names(onnx: Path) -> list[str]:
    """The model's column names (its converters metadata)."""
    import onnxruntime as ort

    from control_plane.batch.schema import model_info

    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    return list(model_info(session).feature_names)


def build_input(rows: int, names: list[str], group: int = GROUP) -> Path:
    """The reference data tiled to ``rows`` rows in ``group``-row groups (written once,
    streamed ``max(group, 100_000)`` rows at a time)."""
    suffix = "" if group == GROUP else f"-g{group}"
    path = WORK / f"input-{rows}{suffix}.parquet"
    if path.exists():
        return path
    features = reference_data(REFERENCE)[0]
    tmp = path.with_suffix(".tmp")
    schema = pa.schema([("id", pa.int64())] + [(n, pa.float32()) for n in names])
    step = max(GROUP, group)  # NOTE: a row group never spans two write_table calls
    with pq.ParquetWriter(tmp, schema) as writer:
        for start in range(0, rows, step):
            count = min(step, rows - start)
            block = np.resize(features, (count, features.shape[1]))
            columns = [pa.array(np.arange(start, start + count))]
            columns += [pa.array(block[:, i]) for i in range(block.shape[1])]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema), group)
    tmp.replace(path)
    return path


def prepare(onnx: Path, input_path: Path, workers: int, round_index: int) -> Path:
    """A fresh output folder with the ``job.json`` the service would write."""
    output = WORK / f"out-{round_index}"
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    sha = hashlib.sha256(onnx.read_bytes()).hexdigest()
    options = BatchOptions(chunk_size=CHUNK, workers=workers, id_columns=("id",))
    files = list_inputs(input_path)
    description = JobDescription(
        job_id=f"bench-{round_index}",
        fingerprint=job_fingerprint("reference", 1, sha, files, options),
        model="reference",
        version=1,
        onnx_path=str(onnx),
        onnx_sha256=sha,
        input=str(input_path),
        options=options,
        parts=fingerprint_parts("reference", 1, sha, files, options),
    )
    save_json(output / JOB_FILE, description)
    return output


def tree_rss(process: psutil.Process) -> int:
    """Summed RSS of a process and its descendants (0 for ones that vanished)."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue
    return total


def tree_uss(process: psutil.Process, peaks: dict[str, int]) -> None:
    """Raise ``peaks`` (``job``, ``worker-<pid>``, multiprocessing's ``resource-tracker-<pid>``)
    to each process's current USS."""
    for member in [process, *process.children(recursive=True)]:
        try:
            uss = member.memory_full_info().uss
            tracker = "resource_tracker" in " ".join(member.cmdline())
        except psutil.Error:
            continue
        name = "job" if member.pid == process.pid else f"worker-{member.pid}"
        name = f"resource-tracker-{member.pid}" if tracker else name
        peaks[name] = max(peaks.get(name, 0), uss)


def run_batch(output: Path, uss: dict[str, int] | None = None) -> tuple[float, int]:
    """Run the job process on ``output``; (seconds, peak tree RSS bytes). With ``uss``, also
    record each process's peak USS there (sampled every 100 ms instead of 50)."""
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "control_plane.batch.runner", str(output)], cwd=ROOT
    )
    watched, peak = psutil.Process(child.pid), 0
    while child.poll() is None:
        peak = max(peak, tree_rss(watched))
        if uss is not None:
            tree_uss(watched, uss)
        time.sleep(0.05 if uss is None else 0.1)
    seconds = time.perf_counter() - start
    if child.returncode != 0:
        raise SystemExit(f"batch job failed: {(output / 'progress.json').read_text()}")
    return seconds, peak


def _raw_worker(onnx: str, rows: int, threads: int, ready: Any, go: Any, times: Any) -> None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
    block = np.resize(reference_data(REFERENCE)[0], (CHUNK, REFERENCE.n_features))
    ready.release()
    go.wait()
    start = time.perf_counter()
    done = 0
    while done < rows:
        count = min(CHUNK, rows - done)
        session.run(None, {"input": block[:count]})
        done += count
    times.put(time.perf_counter() - start)


def run_raw(onnx: Path, rows: int, workers: int) -> float:
    """W processes of one session each scoring ``rows`` in total; seconds of scoring only
    (timed from a common start once every session is built and the block is in memory;
    the batch figure includes its start-up, so the comparison favours raw)."""
    context = mp.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // workers)
    shares = [rows // workers + (1 if i < rows % workers else 0) for i in range(workers)]
    ready, go, times = context.Semaphore(0), context.Event(), context.Queue()
    processes = [
        context.Process(target=_raw_worker, args=(str(onnx), share, threads, ready, go, times))
        for share in shares
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.acquire()
    go.set()
    seconds = max(times.get() for _ in processes)
    for process in processes:
        process.join()
    return float(seconds)


def uptime() -> str:
    """``uptime`` output (machine load)."""
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def measure_memory(
    onnx: Path, input_path: Path, rows: int, workers: int, rounds: int
) -> list[dict[str, object]]:
    """Batch rounds alone, with the peak USS of every process of the job."""
    measured: list[dict[str, object]] = []
    for index in range(rounds):
        peaks: dict[str, int] = {}
        seconds, peak = run_batch(prepare(onnx, input_path, workers, index), peaks)
        measured.append(
            {
                "batch_s": seconds,
                "batch_rows_per_s": rows / seconds,
                "batch_peak_rss_mib": peak / 2**20,
                "peak_uss_mib": {name: value / 2**20 for name, value in sorted(peaks.items())},
            }
        )
        print(json.dumps(measured[-1]), flush=True)
        shutil.rmtree(WORK / f"out-{index}", ignore_errors=True)
    return measured


def measure_throughput(
    onnx: Path, input_path: Path, rows: int, workers: int, rounds: int
) -> list[dict[str, object]]:
    """Interleaved rounds of the batch job and of raw onnxruntime."""
    measured: list[dict[str, object]] = []
    for index in range(rounds):
        seconds, peak = run_batch(prepare(onnx, input_path, workers, index))
        raw = run_raw(onnx, rows, workers)
        measured.append(
            {
                "batch_s": seconds,
                "batch_rows_per_s": rows / seconds,
                "batch_peak_rss_mib": peak / 2**20,
                "raw_s": raw,
                "raw_rows_per_s": rows / raw,
                "ratio": raw / seconds,
            }
        )
        print(json.dumps(measured[-1]), flush=True)
        shutil.rmtree(WORK / f"out-{index}", ignore_errors=True)
    return measured


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (``--out`` checked against :mod:`benchmarks.results_files`)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--row-group", type=int, default=GROUP)
    parser.add_argument("--memory-only", action="store_true")
    parser.add_argument(
        "--out", type=Path, default=latest("batch"), help="raw result (replaced by each run)"
    )
    args = parser.parse_args(argv)
    args.out = checked_output(args.out, "batch")
    return args


def main() -> None:
    """Build, run the interleaved rounds, print and save the figures."""
    args = parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    onnx = build_reference(ROOT / "benchmarks" / ".work").onnx
    input_path = build_input(args.rows, feature_names(onnx), args.row_group)
    record: dict[str, object] = {
        "started": dt.datetime.now(dt.UTC).isoformat(),
        "rows": args.rows,
        "row_group": args.row_group,
        "workers": args.workers,
        "cores": os.cpu_count(),
        "memory_only": args.memory_only,
        "uptime_before": uptime(),
    }
    measure = measure_memory if args.memory_only else measure_throughput
    record["rounds"] = measure(onnx, input_path, args.rows, args.workers, args.rounds)
    record["uptime_after"] = uptime()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
