"""Micro-benchmark of the drift-sketch hook (issue 16 §4): what one answered request costs.

Two numbers, in-process, no server:

* **hook**: :meth:`SketchBook.observe` as the request path calls it (window number, served
  counter, sampling credit, queue append) -- the only sketch work on the request path;
* **background**: the background task's sketching per request (grouping, concatenating,
  binning every feature and the score on the reference's bins, merging into the window),
  off the request path but on the same core.

Usage: ``python -m benchmarks.sketch_hook [--requests N] [--rows R] [--features F]``.
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
from modelyard.sketches import build_reference_profile


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
    # A stand-in with the attributes the book reads from a LoadedVersion.
    return SimpleNamespace(
        name="m",
        version_str="1",
        signature=signature,
        description=SimpleNamespace(task="classification"),
        reference=profile if reference else None,
    )


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


def main() -> None:
    """Run the measurement (5 rounds, best and median reported)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=1)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
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
