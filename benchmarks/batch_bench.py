"""Batch scoring benchmark: a 2,000,000-row Parquet file through a batch job, against
onnxruntime's raw batch throughput on the same cores, in interleaved rounds.

``python -m benchmarks.batch_bench [--rows N] [--rounds R] [--workers W]``

- The model is the harness's reference model (``benchmarks.reference``: LightGBM binary,
  300 trees, 32 features, ONNX via the converters), built once into ``benchmarks/.work``.
- The input is the reference data tiled to ``--rows`` rows plus an ``id`` column, written once
  as Parquet in 100,000-row groups (streamed, never whole in memory).
- **batch**: ``python -m control_plane.batch.runner`` on that file (W worker processes, one
  onnxruntime session each with ``cores // W`` threads, 65,536-row shards, Parquet out); wall
  time from start to exit, and the peak of the summed RSS of the job process tree sampled
  every 50 ms (psutil).
- **raw**: W processes, each one session with the same threads, scoring its share of the same
  row count from a 65,536-row float32 block already in memory: no I/O, no Arrow, no writing.
- Rounds alternate batch, raw, batch, raw ... so machine noise hits both alike; ``uptime``
  is recorded before and after. Results go to ``benchmarks/results/batch-<UTC>.json``.
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
from control_plane.batch.fingerprint import fingerprint_parts, job_fingerprint
from control_plane.batch.models import BatchOptions
from control_plane.batch.shards import JOB_FILE, JobDescription, save_json
from control_plane.batch.sources import list_inputs
from converters.reference import REFERENCE, reference_data

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work" / "batch"
CHUNK = 65_536


def feature_names(onnx: Path) -> list[str]:
    """The model's column names (its converters metadata)."""
    import onnxruntime as ort

    from control_plane.batch.schema import model_info

    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    return list(model_info(session).feature_names)


def build_input(rows: int, names: list[str]) -> Path:
    """The reference data tiled to ``rows`` rows (written once, streamed)."""
    path = WORK / f"input-{rows}.parquet"
    if path.exists():
        return path
    features = reference_data(REFERENCE)[0]
    tmp = path.with_suffix(".tmp")
    schema = pa.schema([("id", pa.int64())] + [(n, pa.float32()) for n in names])
    with pq.ParquetWriter(tmp, schema) as writer:
        for start in range(0, rows, 100_000):
            count = min(100_000, rows - start)
            block = np.resize(features, (count, features.shape[1]))
            columns = [pa.array(np.arange(start, start + count))]
            columns += [pa.array(block[:, i]) for i in range(block.shape[1])]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
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


def run_batch(output: Path) -> tuple[float, int]:
    """Run the job process on ``output``; (seconds, peak tree RSS bytes)."""
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "control_plane.batch.runner", str(output)], cwd=ROOT
    )
    watched, peak = psutil.Process(child.pid), 0
    while child.poll() is None:
        peak = max(peak, tree_rss(watched))
        time.sleep(0.05)
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


def main() -> None:
    """Build, run the interleaved rounds, print and save the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    onnx = build_reference(ROOT / "benchmarks" / ".work").onnx
    input_path = build_input(args.rows, feature_names(onnx))
    record: dict[str, object] = {
        "started": dt.datetime.now(dt.UTC).isoformat(),
        "rows": args.rows,
        "workers": args.workers,
        "cores": os.cpu_count(),
        "uptime_before": uptime(),
        "rounds": [],
    }
    rounds: list[dict[str, float]] = []
    for index in range(args.rounds):
        seconds, peak = run_batch(prepare(onnx, input_path, args.workers, index))
        raw = run_raw(onnx, args.rows, args.workers)
        rounds.append(
            {
                "batch_s": seconds,
                "batch_rows_per_s": args.rows / seconds,
                "batch_peak_rss_mib": peak / 2**20,
                "raw_s": raw,
                "raw_rows_per_s": args.rows / raw,
                "ratio": raw / seconds,
            }
        )
        print(json.dumps(rounds[-1]), flush=True)
        shutil.rmtree(WORK / f"out-{index}", ignore_errors=True)
    record["rounds"] = rounds
    record["uptime_after"] = uptime()
    results = ROOT / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    (results / f"batch-{stamp}.json").write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
