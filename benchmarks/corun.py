"""CPU per request at saturation, variants side by side on one core at the same time.

On a shared machine the core's speed changes from second to second (neighbours' cache and
memory traffic, frequency): on the 2-core Xeon of 2026-12-06 the unobserved server's CPU per
REST V2 request at c=64 ranged 43-80 µs from one 4 s window to the next, and the paired
throughput ratio of ``latency_cost --alternate --closed 64`` (windows seconds apart) 0.60-1.27
over ten rounds: a 10 % bound cannot be read off that. Here the variants' windows are not
seconds apart, they are the same seconds: every variant's server (``thread_cpu``'s
:func:`~benchmarks.thread_cpu.start_variant`: 1 worker, batching defaults, the reference model,
pinned to ``--server-cpus``) is loaded at once, each by its own ``wrk -t1 -c64`` on
``--client-cpus``, so every server meets the same neighbours at every instant. Each window
reads each server's answered requests (its metrics) and its CPU time (its process group, every
thread: :class:`~benchmarks.server_cpu.ServerCpu`) and gives **requests per CPU-second**: the
throughput the server would have on a core of its own, where it is saturated and every
CPU-second goes to it. The ratio to the first variant's, per window, is the figure; the median
and spread over ``--rounds`` windows are reported (the order the loads start in alternates).

What it does not show: how a server behaves with the whole core (here each gets a share and
the scheduler interleaves them, so both run with colder caches than alone; that is the same
for every variant). Its throughput (req/s) per window is printed too, but with the core
shared it depends on how the scheduler splits the core (a server with more runnable threads
gets more), so the requests per CPU-second are what compares.

Run: ``python -m benchmarks.corun --rounds 10 off on`` (about 7 s per round).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.contenders import V2_INFER_PATH
from benchmarks.measure import _body_files
from benchmarks.processes import ServerProcess
from benchmarks.server_cpu import ServerCpu, usage
from benchmarks.server_metrics import counters
from benchmarks.thread_cpu import (
    alternation,
    parse_variant_arguments,
    start_variant,
    thread_names_env,
    variant_arguments,
)
from benchmarks.wrk_load import _run_wrk


def window(
    servers: list[ServerProcess], bodies: list[Path], args: argparse.Namespace, order: list[int]
) -> list[dict[str, float]]:
    """One window: every server under ``wrk -c{connections}`` at once (started in ``order``);
    per server its requests per CPU-second, CPU µs per request and answered req/s."""
    pin = ["taskset", "-c", args.client_cpus]

    def load(i: int) -> dict[str, float]:
        server = servers[i]
        url = f"http://127.0.0.1:{server.ports['http']}{V2_INFER_PATH}"
        _run_wrk(pin, url, bodies[i], args.connections, args.warmup)
        cpu = ServerCpu(server.process.pid)
        answered, before = counters(server)["requests"], cpu.snapshot()
        raw = _run_wrk(pin, url, bodies[i], args.connections, args.duration)
        requests, after = int(counters(server)["requests"] - answered), cpu.snapshot()
        used = usage(before, after, requests)
        return {
            "per_cpu_s": used["requests_per_cpu_s"],
            "cpu_us": used["server_cpu_s"] / requests * 1e6,
            "rate": requests / (raw["duration_us"] / 1e6),
        }

    with ThreadPoolExecutor(len(servers)) as pool:
        futures = {i: pool.submit(load, i) for i in order}
        return [futures[i].result() for i in range(len(servers))]


def main(argv: list[str] | None = None) -> None:
    """Start every variant, measure ``--rounds`` windows, print each and the medians."""
    parser = variant_arguments(__doc__, rounds=10, duration=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parse_variant_arguments(parser, argv)
    names = thread_names_env()
    servers: list[ServerProcess] = []
    bodies: list[Path] = []
    results: list[list[dict[str, float]]] = []
    try:
        for i, variant in enumerate(args.variants):
            server, ctx = start_variant(variant, f"corun{i}", args, names)
            servers.append(server)
            bodies.append(_body_files(ctx)["v2"])
        for number, (order,) in enumerate(alternation(args.variants, 1, args.rounds)):
            rows = window(servers, bodies, args, order)
            results.append(rows)
            base = rows[0]["per_cpu_s"]
            print(
                f"round {number}: "
                + "; ".join(
                    f"{v} {r['cpu_us']:.1f} us/request, {r['rate']:,.0f} req/s, "
                    f"{r['per_cpu_s'] / base:.3f}x"
                    for v, r in zip(args.variants, rows, strict=True)
                ),
                flush=True,
            )
    finally:
        for server in servers:
            server.stop()
    print("\nmedian (spread) over windows: CPU us per request; requests per CPU-s to "
          f"{args.variants[0]} in the same window")  # fmt: skip
    for i, variant in enumerate(args.variants):
        cpu = [rows[i]["cpu_us"] for rows in results]
        line = f"{variant}: {statistics.median(cpu):.1f} us ({min(cpu):.1f}-{max(cpu):.1f})"
        if i:
            ratio = [rows[i]["per_cpu_s"] / rows[0]["per_cpu_s"] for rows in results]
            line += f"; {statistics.median(ratio):.3f}x ({min(ratio):.3f}-{max(ratio):.3f})"
        print(line)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
