"""Latency summaries and the median of repeated points.

A point is summarized as throughput plus p50/p90/p99/max latency in milliseconds; repeats of a
point are reduced to the repeat with the median throughput, so the reported latencies belong to
one real run rather than being a blend of several.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Summary = dict[str, Any]


def summarize(latencies_s: Sequence[float], errors: int, window_s: float, rows: int) -> Summary:
    """Summarize one measured window.

    Args:
        latencies_s: latencies of the successful requests, in seconds.
        errors: number of failed requests.
        window_s: length of the measured window, in seconds.
        rows: rows per request (for rows/s).

    Returns:
        ``throughput`` (successful requests/s), ``rows_per_s``, ``requests``, ``errors`` and
        ``p50_ms``/``p90_ms``/``p99_ms``/``max_ms``/``mean_ms`` (None without successes).

    >>> s = summarize([0.001] * 99 + [0.010], errors=1, window_s=2.0, rows=1)
    >>> (s["throughput"], s["p50_ms"], s["max_ms"], s["errors"])
    (50.0, 1.0, 10.0, 1)
    """
    ok = len(latencies_s)
    summary: Summary = {
        "requests": ok,
        "errors": errors,
        "window_s": round(window_s, 3),
        "throughput": round(ok / window_s, 1) if window_s > 0 else 0.0,
        "rows_per_s": round(ok * rows / window_s, 1) if window_s > 0 else 0.0,
    }
    if ok:
        ms = np.asarray(latencies_s, dtype=np.float64) * 1e3
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        summary |= {
            "p50_ms": round(float(p50), 3),
            "p90_ms": round(float(p90), 3),
            "p99_ms": round(float(p99), 3),
            "max_ms": round(float(ms.max()), 3),
            "mean_ms": round(float(ms.mean()), 3),
        }
    else:
        summary |= dict.fromkeys(("p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms"))
    return summary


def median_repeat(repeats: Sequence[Summary]) -> Summary:
    """Return the repeat with the median throughput (the lower middle for even counts).

    >>> median_repeat([{"throughput": 3}, {"throughput": 1}, {"throughput": 2}])
    {'throughput': 2}
    """
    ordered = sorted(repeats, key=lambda s: float(s.get("throughput") or 0.0))
    return ordered[(len(ordered) - 1) // 2]
