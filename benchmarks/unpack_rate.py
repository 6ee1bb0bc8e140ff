"""How fast the control plane unpacks prediction-log blocks into records (issue 16).

Each round takes a fresh database (a SQLite file, or a new PostgreSQL schema), ships
``--records`` records as blocks of ``--rows`` single-row requests of ``--features`` float32
features and one int64 label (as a server ships a pass of answered requests: raw tensor bytes,
``prediction_log_block`` rows), untimed, then times
:meth:`~control_plane.predictions.service.PredictionService.unpack` until no block is left:
wall time and this process's CPU time (the database server's CPU, for PostgreSQL, is not in
it). Backends alternate within a round. The table gives records per second of wall time and
microseconds of client CPU per record, median over rounds and the spread (min-max).

Run: ``python -m benchmarks.unpack_rate --rounds 3`` (``--postgres URL``; ``--postgres ''``
for SQLite only).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from control_plane.predictions.service import PredictionService
from control_plane.predictions.store import SqlPredictionStore
from modelyard.prediction_blocks import (
    BLOCK_COLUMNS,
    PredictionBlock,
    block_values,
    encode_block,
    prediction_log_block,
    tensor_column,
)
from modelyard.storage import Database, to_async_url, upgrade


def blocks(records: int, rows: int, features: int) -> list[tuple[object, ...]]:
    """``prediction_log_block`` rows holding ``records`` records, ``rows`` requests each."""
    rng = np.random.default_rng(0)
    names = [f"f{i}" for i in range(features)]
    shipped: list[tuple[object, ...]] = []
    start = time.time()
    for index in range(records // rows):
        block = PredictionBlock(
            key=uuid.uuid4().hex,
            model="reference",
            version=1,
            worker=0,
            input_names=["input"],
            feature_names=names,
            output_names=["label"],
            request_ids=[uuid.uuid4().hex for _ in range(rows)],
            times=[start + index + r / rows for r in range(rows)],
            variants=["none"] * rows,
            routing_keys=[None] * rows,
            shadows=[False] * rows,
            protocols=["http"] * rows,
            latencies_ms=[0.8] * rows,
            rows=[1] * rows,
            inputs=[tensor_column(rng.random((rows, features), dtype=np.float32))],
            outputs=[tensor_column(rng.integers(0, 2, rows, dtype=np.int64))],
        )
        shipped.append(block_values(block, encode_block(block)))
    return shipped


async def one_run(
    url: str, schema: str | None, shipped: list[tuple[object, ...]]
) -> tuple[float, float]:
    """Wall seconds and CPU seconds of unpacking ``shipped`` in a fresh database."""
    database = Database(url, schema=schema)
    try:
        await upgrade(database)
        async with database.write() as conn:
            rows = [dict(zip(BLOCK_COLUMNS, r, strict=True)) for r in shipped]
            for start in range(0, len(rows), 500):
                await conn.execute(prediction_log_block.insert(), rows[start : start + 500])
        service = PredictionService(database, SqlPredictionStore())
        wall, cpu = time.perf_counter(), time.process_time()
        done = await service.unpack(wait=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert done == len(shipped), (done, len(shipped))
        return wall, cpu
    finally:
        await database.dispose()


async def postgres_schema(url: str, create: bool, name: str) -> None:
    engine = create_async_engine(to_async_url(url))
    try:
        async with engine.begin() as conn:
            if create:
                await conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
            else:
                await conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
    finally:
        await engine.dispose()


async def run(args: argparse.Namespace) -> None:
    shipped = blocks(args.records, args.rows, args.features)
    records = len(shipped) * args.rows
    backends = ["sqlite"] + (["postgresql"] if args.postgres else [])
    results: dict[str, list[tuple[float, float]]] = {b: [] for b in backends}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            order = backends if round_ % 2 == 0 else backends[::-1]
            for backend in order:
                if backend == "sqlite":
                    url = f"sqlite:///{Path(folder) / f'r{round_}.db'}"
                    results[backend].append(await one_run(url, None, shipped))
                    continue
                schema = f"bench_unpack_{uuid.uuid4().hex[:8]}"
                await postgres_schema(args.postgres, True, schema)
                try:
                    results[backend].append(await one_run(args.postgres, schema, shipped))
                finally:
                    await postgres_schema(args.postgres, False, schema)
                print(f"round {round_ + 1}: {backend} done", flush=True)
    print(
        f"{records} records in blocks of {args.rows} single-row requests x {args.features} "
        f"float32 features; {args.rounds} rounds; load average {os.getloadavg()[0]:.2f}"
    )
    print("| backend | records/s (wall) | client CPU us/record |")
    print("|---|---|---|")
    for backend, runs in results.items():
        rates = [records / wall for wall, _ in runs]
        cpus = [cpu / records * 1e6 for _, cpu in runs]
        print(
            f"| {backend} | {statistics.median(rates):,.0f} ({min(rates):,.0f}-{max(rates):,.0f})"
            f" | {statistics.median(cpus):.1f} ({min(cpus):.1f}-{max(cpus):.1f}) |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rows", type=int, default=64, help="requests (one row each) per block")
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "MODELYARD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
