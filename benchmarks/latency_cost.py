"""p99 at fixed arrival rates, the observed server against the unobserved: issue 16's p99 bound.

The harness measures the same points (its ``observation`` family) among many others; this runs
only them, so a change to what the server does beside answering can be judged in minutes. Each
variant gets a fresh ``modelyard serve`` (the harness's :func:`~benchmarks.modelyard_server.
starter`: 1 worker pinned to ``--server-cpus``, batching defaults, the reference model), then
for every protocol and rate the harness's open-loop point (:func:`~benchmarks.points.run_point`:
its Python clients, one warm-up, ``--repeats`` windows, the median window kept).

Variants are ``CONFIG[@CODE][+NAME=VALUE...]``: ``CONFIG`` one of
:data:`~benchmarks.modelyard_server.Observation`'s ``off`` / ``log`` / ``sketches`` / ``on`` /
``on-pg``; ``CODE`` another checkout (before and after in the same rounds); each ``+NAME=VALUE``
an environment variable of that server only (a setting under trial, e.g.
``on+MODELYARD_SERVER_SWITCH_INTERVAL_US=500``). Rounds interleave the variants, reversed
every other round; the table gives, per point, the median and spread of p99 and its ratio to
the first variant of the same round.

Rates relative to capacity (``--capacity-shares 0.25 0.5``): the fixed rates
(:data:`~benchmarks.modelyard_server.OBSERVED_GRPC_RATES`, ``OBSERVED_HTTP_RATES``) were chosen
on one machine; on a machine 2.6x slower per request they were saturation points, where p99
measures queueing and a ratio between servers measures their capacities (RESULTS.md, "A
slower machine"). With shares, a fresh server of the first variant is first driven closed-loop
at ``--capacity-connections`` per protocol (the harness's clients: gRPC our Python client,
REST V2 wrk), and each protocol's rates are those shares of its throughput
(:func:`rates_from_capacity`), so every machine is measured at the same load.

Windows side by side (``--alternate``): on a shared machine the background load changes within
a minute, and a round's variants, each on its own fresh server measured point after point,
meet different neighbours: a 10 % bound drowned in spreads of 2-5x (RESULTS.md). With
``--alternate`` every variant's server is started once and all run at the same time, pinned to
the same core (an idle server costs it nothing); each round then measures one window
(``--repeats`` is ignored) per point and variant, the variants back to back and their order
reversed from point to point and round to round (ABBA), so the windows a ratio compares are
seconds apart. Take many short rounds (``--rounds 12 --duration 3``): the median of the paired
ratios resists the windows a burst of noise hits.

Each window's line also gives how the batcher served it, from the server's metrics around the
run (warm-up included; :func:`batching`): rows per session run, the mean wait in the batch
queue and µs per run. A server whose batcher lingers on a core it believes saturated shows
more than one row per run and a queue wait; one that runs each request at once, one row and
no wait. At a small share of capacity that mode, more than the background work, can set p50
and p99 (RESULTS.md, "The batcher's two modes").

Run: ``python -m benchmarks.latency_cost --rounds 3 off on`` (about 45 s per variant and round
with the default points); ``python -m benchmarks.latency_cost --alternate --rounds 12
--duration 3 --capacity-shares 0.25 -- off on`` (about 10 s per window).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from benchmarks.contenders import V2_INFER_PATH, Endpoint
from benchmarks.measure import _body_files
from benchmarks.modelyard_server import (
    OBSERVED_GRPC_RATES,
    OBSERVED_HTTP_RATES,
)
from benchmarks.points import Target, keep_median, run_point
from benchmarks.server_metrics import counters
from benchmarks.thread_cpu import alternation, parse_variant, start_variant

if TYPE_CHECKING:
    from benchmarks.contenders import Context
    from benchmarks.processes import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
ENDPOINTS = {
    "grpc": Endpoint("grpc", "gRPC"),
    "http": Endpoint("http", "REST V2", path=V2_INFER_PATH),
}


class Started(NamedTuple):
    """A running server of one variant and what its windows send: the rows file (gRPC) and
    the REST V2 body, written once when the server starts."""

    server: ServerProcess
    ctx: Context
    body: Path


Results = list[list[dict[tuple[str, float], dict[str, float]]]]
"""Per variant, by position in ``args.variants`` (a variant may be given twice, an A/A
control), per round: each point's figures."""


def start(variant: str, label: str, args: argparse.Namespace) -> Started:
    """Start ``variant``'s server (see :func:`benchmarks.thread_cpu.start_variant`) and write
    the REST V2 body its windows send."""
    server, ctx = start_variant(variant, label, args)
    try:
        return Started(server, ctx, _body_files(ctx)["v2"])
    except BaseException:
        server.stop()
        raise


def measure(
    variant: str, points: list[tuple[str, float]], args: argparse.Namespace
) -> dict[tuple[str, float], dict[str, float]]:
    """One fresh server of ``variant``; per point its median window's p99, p50 and rate."""
    started = start(variant, "latency", args)
    try:
        return {point: window(started, point, args, args.repeats) for point in points}
    finally:
        started.server.stop()


def window(
    started: Started, point: tuple[str, float], args: argparse.Namespace, repeats: int
) -> dict[str, float]:
    """One run of the harness's point against a started server: the median of ``repeats``
    windows' p99, p90, p50 and answered rate (a negative rate: closed loop at -rate
    connections), and the batching over the whole run, warm-up included (:func:`batching`)."""
    protocol, rate = point
    endpoint = ENDPOINTS[protocol]
    target = Target(
        endpoint=endpoint,
        address=f"127.0.0.1:{started.server.ports[protocol]}",
        client_cpus=args.client_cpus,
        rows_file=started.ctx.rows,
        body_file=started.body if protocol == "http" else None,
        server_group=started.server.process.pid,
    )
    closed = rate < 0  # NOTE: a closed-loop point at -rate connections (saturation)
    before = counters(started.server)
    windows = run_point(
        target,
        rate=0.0 if closed else rate,
        concurrency=int(-rate) if closed else 1,
        duration=args.duration,
        warmup=args.warmup,
        repeats=repeats,
    )
    after = counters(started.server)
    median = keep_median(windows)["median"]
    row = {key: float(median[key]) for key in ("p99_ms", "p90_ms", "p50_ms", "throughput")}
    for key in ("server_cpu_share", "others_cpu_share"):  # NOTE: the core's load, for reading
        if median.get(key) is not None:
            row[key] = float(median[key])
    return row | batching(before, after)


def batching(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """How the batcher served a run, from its counters before and after
    (:func:`~benchmarks.observation_cpu.counters`): rows per session run, mean µs a request
    waited in the batch queue, µs per run (tap included). Lingering on a core it believes
    saturated shows as more than one row per run and a queue wait; requests run at once as one
    row per run and no wait.

    >>> batching({"runs": 10, "rows": 10, "queued": 10, "queue_s": 0.0, "compute_s": 0.001},
    ...          {"runs": 110, "rows": 280, "queued": 280, "queue_s": 0.054, "compute_s": 0.021})
    {'rows_per_run': 2.7, 'queue_us': 200.0, 'run_us': 200.0}
    """
    runs = after["runs"] - before["runs"]
    queued = after["queued"] - before["queued"]
    if runs <= 0 or queued <= 0:
        return {}
    return {
        "rows_per_run": round((after["rows"] - before["rows"]) / runs, 2),
        "queue_us": round((after["queue_s"] - before["queue_s"]) / queued * 1e6, 1),
        "run_us": round((after["compute_s"] - before["compute_s"]) / runs * 1e6, 1),
    }


def measure_alternating(points: list[tuple[str, float]], args: argparse.Namespace) -> Results:
    """Every variant's server at once; per round one window per point and variant, in the
    order :func:`alternation` gives (the module's ``--alternate``)."""
    results: Results = [[] for _ in args.variants]
    servers: list[Started] = []
    try:
        for i, variant in enumerate(args.variants):
            servers.append(start(variant, f"latency{i}", args))
        for number, orders in enumerate(alternation(args.variants, len(points), args.rounds)):
            rows: list[dict[tuple[str, float], dict[str, float]]] = [{} for _ in args.variants]
            for point, order in zip(points, orders, strict=True):
                for i in order:
                    rows[i][point] = window(servers[i], point, args, 1)
            for i, variant in enumerate(args.variants):
                results[i].append(rows[i])
                report(number, variant, rows[i])
    finally:
        for started in servers:
            started.server.stop()
    return results


def rates_from_capacity(capacity: float, shares: list[float]) -> list[float]:
    """Open-loop rates at ``shares`` of a closed-loop ``capacity`` (req/s), to 100 req/s.

    >>> rates_from_capacity(15409.0, [0.25, 0.5])
    [3900.0, 7700.0]
    >>> rates_from_capacity(80.0, [0.25])  # never below 100 req/s
    [100.0]
    """
    return [max(100.0, round(capacity * share, -2)) for share in shares]


def capacity(variant: str, args: argparse.Namespace) -> dict[str, float]:
    """Closed-loop throughput per protocol of one fresh server of ``variant``."""
    closed = -float(args.capacity_connections)
    rows = measure(variant, [("grpc", closed), ("http", closed)], args)
    return {protocol: row["throughput"] for (protocol, _), row in rows.items()}


def use_capacity_rates(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Replace ``args``' rates by ``--capacity-shares`` of the first variant's capacity."""
    if not all(0.0 < share < 1.0 for share in args.capacity_shares):
        parser.error("--capacity-shares: each share must be between 0 and 1")
    found = capacity(args.variants[0], args)
    args.grpc_rates = rates_from_capacity(found["grpc"], args.capacity_shares)
    args.http_rates = rates_from_capacity(found["http"], args.capacity_shares)
    print(
        f"capacity of {args.variants[0]} at c={args.capacity_connections}: "
        f"gRPC {found['grpc']:,.0f} req/s, REST V2 {found['http']:,.0f} req/s; rates "
        f"gRPC {args.grpc_rates}, REST V2 {args.http_rates}",
        flush=True,
    )


def measure_rounds(points: list[tuple[str, float]], args: argparse.Namespace) -> Results:
    """Rounds of fresh servers, one per variant, the variants' order reversed every other
    round (:func:`alternation`); each measures every point (``--repeats`` windows, the median
    kept)."""
    results: Results = [[] for _ in args.variants]
    for number, (order,) in enumerate(alternation(args.variants, 1, args.rounds)):
        for i in order:
            variant = args.variants[i]
            rows = measure(variant, points, args)
            results[i].append(rows)
            report(number, variant, rows)
    return results


def report(number: int, variant: str, rows: dict[tuple[str, float], dict[str, float]]) -> None:
    """Print one round's figures of one variant."""
    text = ", ".join(
        f"{p}@{r:.0f}{'c' if r < 0 else ''} p50/p90/p99 {row['p50_ms']:.2f}/"
        f"{row['p90_ms']:.2f}/{row['p99_ms']:.2f} ms ({row['throughput']:.0f}/s{_core(row)}"
        f"{_runs(row)})"
        for (p, r), row in rows.items()
    )
    print(f"round {number} {variant}: {text}", flush=True)


def _core(row: dict[str, float]) -> str:
    """The core's load in a window, when it was measured: ", core S server + O others"."""
    if "server_cpu_share" not in row or "others_cpu_share" not in row:
        return ""
    return f", core {row['server_cpu_share']:.2f} server + {row['others_cpu_share']:.2f} others"


def _runs(row: dict[str, float]) -> str:
    """The batching of a window, when it was read (:func:`batching`)."""
    if "rows_per_run" not in row:
        return ""
    return (
        f"; {row['rows_per_run']:.2f} rows/run, queue {row['queue_us']:.0f} us, "
        f"run {row['run_us']:.0f} us"
    )


def main(argv: list[str] | None = None) -> None:
    """Interleaved rounds; print each measurement, then medians and ratios to the first."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--grpc-rates", type=float, nargs="*", default=list(OBSERVED_GRPC_RATES))
    parser.add_argument("--http-rates", type=float, nargs="*", default=list(OBSERVED_HTTP_RATES))
    parser.add_argument(
        "--closed",
        type=int,
        nargs="*",
        default=[],
        help="closed-loop REST V2 points at these connection counts (wrk): throughput at "
        "saturation beside the open-loop p99",
    )
    parser.add_argument(
        "--capacity-shares",
        type=float,
        nargs="*",
        default=[],
        help="instead of --grpc-rates/--http-rates: these shares of each protocol's "
        "closed-loop throughput of the first variant, measured first",
    )
    parser.add_argument("--capacity-connections", type=int, default=64)
    parser.add_argument(
        "--alternate",
        action="store_true",
        help="all variants' servers at once; per round one window per point and variant, "
        "back to back (see the module's docstring)",
    )
    parser.add_argument("--server-cpus", default="0")
    parser.add_argument("--client-cpus", default="1")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "benchmarks" / ".work")
    args = parser.parse_args(argv)
    for variant in args.variants:
        parse_variant(variant)
    if args.capacity_shares:
        use_capacity_rates(parser, args)
    points = [("grpc", r) for r in args.grpc_rates] + [("http", r) for r in args.http_rates]
    points += [("http", -float(c)) for c in args.closed]
    measure_all = measure_alternating if args.alternate else measure_rounds
    results = measure_all(points, args)
    base = args.variants[0]
    print(f"\np99 ms, median (spread) over rounds; ratio to {base} in the same round:")
    for index, runs in enumerate(results):
        print(args.variants[index])
        for point in points:
            p99 = [run[point]["p99_ms"] for run in runs]
            line = f"    {point[0]:5s} {point[1]:>7.0f}/s  p99 {statistics.median(p99):6.2f} "
            line += f"({min(p99):.2f}-{max(p99):.2f})"
            rate = [run[point]["throughput"] for run in runs]
            if point[1] < 0:
                line += f"  {statistics.median(rate):,.0f} req/s"
                line += f" ({min(rate):,.0f}-{max(rate):,.0f})"
            if index:
                pairs = list(zip(runs, results[0], strict=True))
                ratio = [run[point]["p99_ms"] / b[point]["p99_ms"] for run, b in pairs]
                line += f"  p99 ratio {statistics.median(ratio):.2f}x"
                line += f" ({min(ratio):.2f}-{max(ratio):.2f})"
                if point[1] < 0:
                    ratio = [run[point]["throughput"] / b[point]["throughput"] for run, b in pairs]
                    line += f"  throughput ratio {statistics.median(ratio):.2f}x"
                    line += f" ({min(ratio):.2f}-{max(ratio):.2f})"
            print(line)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
