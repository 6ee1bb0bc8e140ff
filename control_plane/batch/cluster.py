"""The same scoring on a Dask cluster: one partition -> one shard, committed by the client.

When a job names a Dask scheduler (``options.dask_scheduler``), the job process reads the
input as a Dask DataFrame (``read_parquet`` / ``read_csv``, restricted to the model's and the
kept columns) and runs :func:`score_partition` with ``map_partitions``: each partition is
scored by :class:`~control_plane.batch.scoring.ChunkScorer` (one cached session per worker
process, 1 thread) and written aside under the output folder, which must therefore be shared
storage every worker sees. The partition answers only its shard's entry; the job process
renames shards into place and records them in the manifest, exactly as with local workers,
so resume skips committed partitions and the output holds every row once.

Spark users can run the same function per Arrow batch with ``mapInPandas``
(``docs/batch.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from control_plane.batch.scoring import cached_scorer
from control_plane.batch.shards import JobDescription, ShardLedger, WrittenShard, write_aside

_ENTRY_COLUMNS = ["chunk", "tmp", "rows", "sha256", "errors_tmp", "error_rows", "errors_sha256"]


def score_partition(
    frame: pd.DataFrame,
    description: JobDescription,
    folder: str,
    done: frozenset[int],
    partition_info: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Score one partition, write it aside, answer its (uncommitted) shard entry."""
    number = int(partition_info["number"]) if partition_info else 0
    if number in done or partition_info is None:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in _ENTRY_COLUMNS})
    options = description.options
    scorer = cached_scorer(
        Path(description.onnx_path).read_bytes(),
        description.model,
        description.version,
        options.id_columns + options.carry_columns,
        options.bad_rows.value,
    )
    table = pa.Table.from_pandas(frame, preserve_index=False)
    scored = scorer.score(table, where=f"partition {number}")
    tmp, sha = write_aside(Path(folder), scored.results, options.output_format)
    errors_tmp = errors_sha = None
    if scored.errors is not None:
        errors_tmp, errors_sha = write_aside(Path(folder), scored.errors, options.output_format)
    error_rows = 0 if scored.errors is None else scored.errors.num_rows
    row = [number, tmp, scored.results.num_rows, sha, errors_tmp, error_rows, errors_sha]
    return pd.DataFrame([row], columns=_ENTRY_COLUMNS).astype(object)


def run_on_dask(description: JobDescription, ledger: ShardLedger, columns: list[str]) -> int:
    """Score every uncommitted partition on the cluster and commit the shards; return the
    number of partitions (all of them are committed when this returns)."""
    import dask.dataframe as dd
    from distributed import Client

    options = description.options
    source = Path(description.input)
    pattern = str(source / "*") if source.is_dir() else str(source)
    if pattern.endswith(".csv") or any(source.glob("*.csv")):
        frame = dd.read_csv(pattern if source.is_file() else str(source / "*.csv"), usecols=columns)
    else:
        frame = dd.read_parquet(str(source), columns=columns)
    done = frozenset(chunk for _, chunk in ledger.done)
    meta = pd.DataFrame({c: pd.Series(dtype=object) for c in _ENTRY_COLUMNS})
    entries = frame.map_partitions(
        score_partition, description, str(ledger.folder), done, meta=meta
    )
    with Client(options.dask_scheduler) as client:  # type: ignore[no-untyped-call]
        computed = client.compute(entries).result()
    for row in computed.itertuples(index=False):
        ledger.commit(
            WrittenShard(
                file=0, chunk=int(row.chunk), tmp=str(row.tmp), rows=int(row.rows),
                sha256=str(row.sha256),
                errors_tmp=None if pd.isna(row.errors_tmp) else str(row.errors_tmp),
                error_rows=int(row.error_rows),
                errors_sha256=None if pd.isna(row.errors_sha256) else str(row.errors_sha256),
            )
        )  # fmt: skip
    return int(frame.npartitions)


__all__ = ["run_on_dask", "score_partition"]
