"""The demo's batch job: 100,000 customers scored from a Parquet file, killed once, resumed.

The file is written under the control plane's batch data root; ``POST /v1/batch/jobs`` starts a
job process (one onnxruntime session per worker process, Parquet streamed in chunks, each shard
written aside, renamed into place and recorded in a manifest). Halfway, the demo kills the job
process with SIGKILL, as a crash would; the job ends failed, ``resume`` continues from the
committed shards, and the output holds every input row exactly once.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
from tqdm import tqdm

from examples.churn.features import engineer
from modelyard.datasets import generate_churn

TERMINAL = ("succeeded", "failed", "cancelled")


def _checked(answer: httpx.Response) -> Any:
    if answer.is_error:
        raise RuntimeError(
            f"{answer.request.method} {answer.request.url.path} -> {answer.status_code}: "
            f"{answer.text[:500]}"
        )
    return answer.json()


def write_input(root: Path, rows: int) -> Path:
    """``rows`` new customers as engineered features plus ``customer_id``, in Parquet."""
    data = generate_churn(rows, seed=4004)
    frame = engineer(data.frame)
    frame.insert(0, "customer_id", data.frame["customer_id"])
    target = root / "scoring" / f"churn-{rows}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(target, row_group_size=10_000)
    return target


def _job_processes(output: Path) -> list[int]:
    """Pids of the job process writing ``output`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"control_plane.batch.runner" in command and str(output).encode() in command:
            found.append(int(entry.name))
    return found


def _follow(client: httpx.Client, job_id: str, bar: tqdm[Any], stop_at: float) -> Any:
    """Update the bar until the job ends or ``stop_at`` of its rows are done."""
    while True:
        job = _checked(client.get(f"/v1/batch/jobs/{job_id}"))
        progress = job["progress"]
        bar.total = progress["rows_total"] or bar.total
        bar.n = progress["rows_done"]
        bar.set_postfix(state=progress["state"], rows_per_s=int(progress["rows_per_s"]))
        bar.refresh()
        total = progress["rows_total"]
        if progress["state"] in TERMINAL or (total and progress["rows_done"] >= stop_at * total):
            return job
        time.sleep(0.05)  # the job runs in another process; its progress record is the signal


def run_batch(
    *,
    control_plane: str,
    developer: dict[str, str],
    data_root: Path,
    model: str,
    rows: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Submit, kill, resume, verify (see the module docstring)."""
    source = write_input(data_root, rows)
    output = data_root / "results" / f"churn-{rows}-{int(time.time())}"
    body = {
        "model": model,
        "stage": "Production",
        "input": str(source.relative_to(data_root)),
        "output": str(output.relative_to(data_root)),
        # ~40 shards, so the kill lands between committed shards whatever the size
        "options": {
            "chunk_size": max(500, rows // 40),
            "workers": 2,
            "id_columns": ["customer_id"],
        },
    }
    killed = False
    with httpx.Client(base_url=control_plane, headers=developer, timeout=120) as client:
        job = _checked(client.post("/v1/batch/jobs", json=body))
        say(f"batch job {job['id']}: {rows:,} rows of {source.name} with v{job['version']}")
        with tqdm(total=rows, unit="rows", desc="    scoring", leave=True) as bar:
            job = _follow(client, job["id"], bar, stop_at=0.25)
            if job["progress"]["state"] not in TERMINAL:
                for pid in _job_processes(output.resolve()):
                    os.killpg(pid, signal.SIGKILL)
                    killed = True
                while job["progress"]["state"] not in TERMINAL:
                    job = _follow(client, job["id"], bar, stop_at=2.0)
                bar.write(
                    f"    killed the job process at {job['progress']['rows_done']:,} rows:"
                    f" {job['progress']['state']}"
                )
            if job["progress"]["state"] != "succeeded":
                _checked(client.post(f"/v1/batch/jobs/{job['id']}/resume"))
                job = _follow(client, job["id"], bar, stop_at=2.0)
    parts = sorted(output.glob("part-*.parquet"))
    ids = [
        i
        for part in parts
        for i in pq.read_table(part, columns=["customer_id"]).column("customer_id").to_pylist()
    ]
    exactly_once = len(ids) == rows and len(set(ids)) == rows
    say(
        f"{job['progress']['state']}: {len(ids):,} rows in {len(parts)} shards, every input row "
        f"exactly once: {exactly_once}; output {output}"
    )
    return {
        "job": job["id"],
        "state": job["progress"]["state"],
        "killed_and_resumed": killed,
        "rows": len(ids),
        "exactly_once": exactly_once,
        "output": str(output),
    }
