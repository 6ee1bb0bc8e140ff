"""Micro-benchmark of the drift sketches (issue 16 §4): what one answered request costs.

In-process, no server. Two measurements:

* ``burst`` (the first one): a single flush of ``--requests`` queued requests.

  * **hook**: :meth:`SketchBook.observe` as the request path calls it (window number, served
    counter, sampling credit, queue append) -- the only sketch work on the request path;
  * **background**: the background task's sketching per request (grouping, concatenating,
    binning every feature and the score, folding into the window), off the request path but
    on the same core.

* ``stream`` (``--stream``): the whole cost per answered request at a steady rate, as a
  server pays it on its core: ``--rate`` requests/s of ``--rows`` rows for ``--seconds``
  simulated seconds, flushed every ``server.sketch_flush_interval_s`` of simulated time
  (the book's clock is simulated, so windows open and close as they would), with
  ``--windows`` earlier windows of the version already alive. CPU time, not wall time:
  ``time.thread_time`` of the calling thread for the hook, ``time.process_time`` (every
  thread: the flush runs in a worker thread) for the flushes; a read of every window
  (the admin call) is timed apart. Inputs cycle through 1,024 pre-built requests.

The server calls :meth:`SketchBook.observe` once per session run with the run's rows
(:mod:`inference_server.answers`), not once per request: ``--rows 64`` gives what one
full-batch run costs (divide by its requests for the cost per request).

Usage: ``python -m benchmarks.sketch_hook [--requests N] [--rows R] [--features F]`` and
``python -m benchmarks.sketch_hook --stream [--rate 10000] [--features 32] [--seconds 20]``.
Results go to stdout; record them with the machine load (``uptime``) in RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from types import SimpleNamespace
from typing import Any

import numpy as np

from inference_server.drift.book import SketchBook
from modelyard.models import ModelSignature, TensorSpec
from modelyard.settings import ServerSettings
from modelyard.sketches import ReferenceProfile, build_reference_profile


def _handle(features: int, reference: bool) -> Any:
    rng = np.random.default_rng(0)
    names = tuple(f"f{i}" for i in range(features))
    x = rng.normal(size=(5000, features))
    profile = build_reference_profile(
        {n: x[:, i] for i, n in enumerate(names)}, score=rng.uniform(size=5000)
    )
    signature = ModelSignature(
        inputs=(TensorSpec(name="input", datatype="FP32", shape=(-1, features)),),
        outputs=(TensorSpec(name="probabilities", datatype="FP32", shape=(-1, 2)),),
        feature_names=names,
    )
    return _Version(signature, profile if reference else None)


class _Version:
    """A stand-in with the attributes the book reads from a LoadedVersion (hashable)."""

    name = "m"
    version_str = "1"
    description = SimpleNamespace(task="classification")

    def __init__(self, signature: ModelSignature, reference: ReferenceProfile | None) -> None:
        self.signature = signature
        self.reference = reference


def _requests(n: int, rows: int, features: int) -> list[tuple[list[np.ndarray], list[np.ndarray]]]:
    rng = np.random.default_rng(1)
    out = []
    for _ in range(n):
        x = rng.normal(size=(rows, features)).astype(np.float32)
        p = rng.uniform(size=(rows, 1)).astype(np.float32)
        out.append(([x], [np.hstack([1 - p, p])]))
    return out


async def measure(requests: int, rows: int, features: int, reference: bool) -> dict[str, float]:
    """Per-request cost (µs) of the hook and of the background sketching."""
    handle = _handle(features, reference)
    reqs = _requests(requests, rows, features)
    book = SketchBook(ServerSettings(sketch_queue_size=requests + 1))
    start = time.perf_counter()
    for arrays, outputs in reqs:
        book.observe(handle, arrays, outputs)
    hook = time.perf_counter() - start
    start = time.perf_counter()
    await book.flush()
    background = time.perf_counter() - start
    return {"hook_us": hook / requests * 1e6, "background_us": background / requests * 1e6}


class _Clock:
    """The book's simulated wall clock (seconds)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def measure_stream(
    rate: float,
    seconds: float,
    rows: int,
    features: int,
    reference: bool,
    windows: int,
    settings: ServerSettings | None = None,
) -> dict[str, float]:
    """Per-request CPU (µs) of the hook and of the flushes at a steady rate; read time (ms)."""
    handle = _handle(features, reference)
    reqs = _requests(1024, rows, features)
    settings = settings or ServerSettings()
    clock = _Clock(1_800_000_000.0)
    book = SketchBook(settings, clock=clock)
    interval = settings.sketch_flush_interval_s
    per_flush = round(rate * interval)
    step = 1.0 / rate
    for w in range(windows, 0, -1):  # earlier windows, alive and full-sized
        now = clock.now
        clock.now = now - w * settings.sketch_window_s
        for _ in range(2):
            for i in range(per_flush):
                arrays, outputs = reqs[i % len(reqs)]
                book.observe(handle, arrays, outputs)
            await book.flush()
        clock.now = now
    hook = flush = 0.0
    sent = 0
    for _ in range(round(seconds / interval)):
        start = time.thread_time()
        for _ in range(per_flush):
            arrays, outputs = reqs[sent % len(reqs)]
            book.observe(handle, arrays, outputs)
            clock.now += step
            sent += 1
        hook += time.thread_time() - start
        start = time.process_time()
        await book.flush()
        flush += time.process_time() - start
    start = time.process_time()
    merged = await book.read("m", "1", None, None)
    read = time.process_time() - start
    assert merged is not None
    assert merged.requests == sent + windows * 2 * per_flush
    return {"hook_us": hook / sent * 1e6, "flush_us": flush / sent * 1e6, "read_ms": read * 1e3}


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def stream(args: argparse.Namespace) -> None:
    """The ``--stream`` measurement: medians (and spreads) over the rounds."""
    for reference in (True, False):
        runs = [
            asyncio.run(
                measure_stream(
                    args.rate,
                    args.seconds,
                    args.rows,
                    args.features,
                    reference,
                    args.windows,
                    ServerSettings(
                        sketch_flush_interval_s=args.flush_interval,
                        sketch_queue_size=max(4096, round(args.rate * args.flush_interval * 4)),
                    ),
                )
            )
            for _ in range(args.rounds)
        ]
        cols = {k: [r[k] for r in runs] for k in runs[0]}
        total = [r["hook_us"] + r["flush_us"] for r in runs]
        print(
            f"stream reference={reference} rate={args.rate:g}/s rows={args.rows} "
            f"features={args.features} windows={args.windows} "
            f"flush every {args.flush_interval:g} s: "
            f"total {_median(total):.2f} us/request ({min(total):.2f}-{max(total):.2f}), "
            f"hook {_median(cols['hook_us']):.2f}, flush {_median(cols['flush_us']):.2f}, "
            f"read of {args.windows + 1} windows {_median(cols['read_ms']):.1f} ms"
        )


def main() -> None:
    """Run the measurement (5 rounds, best and median reported)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=1)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--stream", action="store_true", help="steady rate, whole cost")
    parser.add_argument("--rate", type=float, default=10_000.0, help="requests/s (--stream)")
    parser.add_argument("--seconds", type=float, default=20.0, help="simulated (--stream)")
    parser.add_argument("--windows", type=int, default=4, help="earlier windows (--stream)")
    parser.add_argument(
        "--flush-interval",
        type=float,
        default=ServerSettings().sketch_flush_interval_s,
        help="server.sketch_flush_interval_s (--stream)",
    )
    args = parser.parse_args()
    if args.stream:
        stream(args)
        return
    for reference in (True, False):
        runs = [
            asyncio.run(measure(args.requests, args.rows, args.features, reference))
            for _ in range(args.rounds)
        ]
        hook = sorted(r["hook_us"] for r in runs)
        back = sorted(r["background_us"] for r in runs)
        print(
            f"reference={reference} rows={args.rows} features={args.features}: "
            f"hook {hook[0]:.2f} us (median {hook[len(hook) // 2]:.2f}), "
            f"background {back[0]:.1f} us/request (median {back[len(back) // 2]:.1f})"
        )


if __name__ == "__main__":
    main()
