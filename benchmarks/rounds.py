"""Interleaved rounds: ratios against the echo server per round, their median and spread.

A run measures every selected contender once per round, round after round (contender A, B,
C, then A, B, C again), so slow drift of a shared machine hits every contender alike. Each
round keeps the load average before and after it. The report compares, *within each round*,
a contender's single-row throughput with the echo server of the same protocol at the same
concurrency (gRPC with ``echo-grpc``, HTTP with ``echo-asgi``) and the c=1 p50 with the
echo's, then gives the median and the spread (min-max) of those per-round figures. The
contenders' own tables use the round whose c=64 throughput is the contender's median
(:func:`representative`).
"""

from __future__ import annotations

import statistics
from typing import Any

Round = dict[str, Any]
"""``{"round": k, "load_before": [...], "load_after": [...], "contenders": [...]}``."""

ECHO = {"grpc": "echo-grpc", "http": "echo-asgi"}
PAIRS = (
    (
        "modelyard-observed",
        "modelyard-unobserved",
        "prediction log (SQLite) and drift sketches on vs both off (issue 16)",
    ),
    (
        "modelyard-observed-pg",
        "modelyard-unobserved",
        "prediction log (PostgreSQL) and drift sketches on vs both off (issue 16)",
    ),
)
"""Contenders compared with each other per round: (contender, baseline, what differs)."""


def _single_row(contender: dict[str, Any]) -> list[dict[str, Any]]:
    if contender.get("status") != "ok":
        return []
    return [
        p
        for p in contender.get("points", [])
        if p["rows"] == 1
        and p.get("mode", "closed") == "closed"
        and p["median"].get("tool") != "perf_analyzer"
        and p["protocol"] in ECHO
    ]


def _echo_point(contenders: list[dict[str, Any]], point: dict[str, Any]) -> dict[str, Any] | None:
    """The echo's point of the same protocol and concurrency (same endpoint name if it has
    one, else its first unary endpoint)."""
    echo = next((c for c in contenders if c["name"] == ECHO[point["protocol"]]), None)
    if echo is None:
        return None
    same = [p for p in _single_row(echo) if p["concurrency"] == point["concurrency"]]
    named = [p for p in same if p["endpoint"] == point["endpoint"]]
    unary = [p for p in same if "stream" not in p["endpoint"]]
    chosen = named or unary
    return chosen[0] if chosen else None


def round_ratios(contenders: list[dict[str, Any]]) -> dict[tuple[str, str, int], dict[str, float]]:
    """Per (contender, endpoint, concurrency) of one round: throughput ratio to the echo and
    p50 above the echo's (ms).

    >>> def pt(c, rate, p50):
    ...     return {"endpoint": "gRPC", "protocol": "grpc", "concurrency": c, "rows": 1,
    ...             "median": {"throughput": rate, "p50_ms": p50}}
    >>> echo = {"name": "echo-grpc", "status": "ok", "points": [pt(1, 4000, 0.25)]}
    >>> ours = {"name": "modelyard", "status": "ok", "points": [pt(1, 3000, 0.40)]}
    >>> round_ratios([echo, ours])
    {('modelyard', 'gRPC', 1): {'ratio': 0.75, 'p50_over_ms': 0.15}}
    """
    found = {}
    for contender in contenders:
        if contender["name"] in ECHO.values():
            continue
        for point in _single_row(contender):
            echo = _echo_point(contenders, point)
            if echo is None or not echo["median"]["throughput"]:
                continue
            key = (contender["name"], point["endpoint"], point["concurrency"])
            found[key] = {
                "ratio": round(point["median"]["throughput"] / echo["median"]["throughput"], 3),
                "p50_over_ms": round(point["median"]["p50_ms"] - echo["median"]["p50_ms"], 3),
            }
    return found


def summarize_rounds(rounds: list[Round]) -> list[dict[str, Any]]:
    """Median and spread over the rounds of every ratio (rows in first-seen order).

    >>> def rnd(rate):
    ...     pt = lambda r: {"endpoint": "gRPC", "protocol": "grpc", "concurrency": 64,
    ...                     "rows": 1, "median": {"throughput": r, "p50_ms": 1.0}}
    ...     return {"contenders": [{"name": "echo-grpc", "status": "ok", "points": [pt(100)]},
    ...                            {"name": "m", "status": "ok", "points": [pt(rate)]}]}
    >>> [row["ratios"] for row in summarize_rounds([rnd(90), rnd(80), rnd(120)])]
    [[0.9, 0.8, 1.2]]
    >>> summarize_rounds([rnd(90), rnd(80), rnd(120)])[0]["median"]
    0.9
    """
    table: dict[tuple[str, str, int], dict[str, list[float]]] = {}
    for one in rounds:
        for key, figures in round_ratios(one["contenders"]).items():
            entry = table.setdefault(key, {"ratio": [], "p50_over_ms": []})
            entry["ratio"].append(figures["ratio"])
            entry["p50_over_ms"].append(figures["p50_over_ms"])
    return [
        {
            "contender": name,
            "endpoint": endpoint,
            "concurrency": c,
            "ratios": entry["ratio"],
            "median": round(statistics.median(entry["ratio"]), 3),
            "spread": [min(entry["ratio"]), max(entry["ratio"])],
            "p50_over_ms_median": round(statistics.median(entry["p50_over_ms"]), 3),
        }
        for (name, endpoint, c), entry in table.items()
    ]


def _c64(contender: dict[str, Any]) -> float:
    rates = [p["median"]["throughput"] for p in _single_row(contender) if p["concurrency"] == 64]
    return float(rates[0]) if rates else 0.0


def representative(rounds: list[Round]) -> list[dict[str, Any]]:
    """Per contender (first round's order), its result from the round with its median c=64
    throughput (the lower middle for an even count); a contender that failed in every round
    keeps its first result.

    >>> mk = lambda r: {"contenders": [{"name": "a", "status": "ok", "points": [
    ...     {"endpoint": "e", "protocol": "grpc", "concurrency": 64, "rows": 1,
    ...      "median": {"throughput": r}}]}]}
    >>> [c["points"][0]["median"]["throughput"] for c in representative([mk(5), mk(9), mk(7)])]
    [7]
    """
    if not rounds:
        return []
    chosen = []
    for first in rounds[0]["contenders"]:
        results = [
            c for one in rounds for c in one["contenders"] if c["name"] == first["name"]
        ]  # fmt: skip
        ok = sorted((c for c in results if c.get("status") == "ok"), key=_c64)
        chosen.append(ok[(len(ok) - 1) // 2] if ok else results[0])
    return chosen


def rounds_table(rounds: list[Round]) -> list[str]:
    """The markdown section: per-round load, then each ratio's median and spread."""
    if not rounds:
        return []
    loads = "; ".join(
        f"round {one['round']}: {one['load_before']} → {one['load_after']}" for one in rounds
    )
    lines = [
        f"### Ratios to the echo server over {len(rounds)} interleaved rounds",
        "",
        "Each round measures every contender once, in the same order; a ratio compares a "
        "contender with the echo of the same protocol at the same concurrency *within one "
        "round*. Median and spread (min-max) over the rounds; p50 over echo: the median of "
        "the per-round differences. Load average (1/5/15 min) before → after each round: "
        f"{loads}.",
        "",
        "| contender | endpoint | c | x echo, median | spread | per round | p50 over echo (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in summarize_rounds(rounds):
        low, high = row["spread"]
        per_round = ", ".join(f"{r:.2f}" for r in row["ratios"])
        lines.append(
            f"| {row['contender']} | {row['endpoint']} | {row['concurrency']} | "
            f"{row['median']:.2f}x | {low:.2f}-{high:.2f} | {per_round} | "
            f"{row['p50_over_ms_median']:+.3f} |"
        )
    return [*lines, ""]


def _pair_points(contender: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """A contender's single-row points by (endpoint, point label: ``c=N`` or ``N req/s``)."""
    found = {}
    if contender.get("status") != "ok":
        return {}
    for p in contender.get("points", []):
        if p["rows"] != 1 or p["median"].get("tool") == "perf_analyzer":
            continue
        if p.get("mode", "closed") == "open":
            label = f"{p['rate']:,.0f} req/s"
        else:
            label = f"c={p['concurrency']}"
        found[(p["endpoint"], label)] = p["median"]
    return found


def pair_ratios(
    contenders: list[dict[str, Any]],
) -> dict[tuple[str, str, str, str], dict[str, float]]:
    """Per (contender, baseline, endpoint, point) of one round: throughput and p99 ratios.

    >>> def c(name, rate, p99):
    ...     return {"name": name, "status": "ok", "points": [{"endpoint": "gRPC",
    ...         "protocol": "grpc", "mode": "closed", "concurrency": 64, "rows": 1,
    ...         "median": {"throughput": rate, "p99_ms": p99}}]}
    >>> base, ours = c("modelyard-unobserved", 100, 10.0), c("modelyard-observed", 95, 10.5)
    >>> found = pair_ratios([base, ours])
    >>> found[("modelyard-observed", "modelyard-unobserved", "gRPC", "c=64")]
    {'throughput': 0.95, 'p99': 1.05}
    """
    by_name = {c["name"]: c for c in contenders}
    found = {}
    for name, baseline, _ in PAIRS:
        if name not in by_name or baseline not in by_name:
            continue
        ours, theirs = _pair_points(by_name[name]), _pair_points(by_name[baseline])
        for key, m in ours.items():
            base = theirs.get(key)
            if not base or not base["throughput"] or not base.get("p99_ms"):
                continue
            found[(name, baseline, *key)] = {
                "throughput": round(m["throughput"] / base["throughput"], 3),
                "p99": round(m["p99_ms"] / base["p99_ms"], 3),
            }
    return found


def pairs_table(rounds: list[Round]) -> list[str]:
    """The markdown section comparing the :data:`PAIRS` round by round (empty without any)."""
    table: dict[tuple[str, str, str, str], dict[str, list[float]]] = {}
    for one in rounds:
        for key, figures in pair_ratios(one["contenders"]).items():
            entry = table.setdefault(key, {"throughput": [], "p99": []})
            entry["throughput"].append(figures["throughput"])
            entry["p99"].append(figures["p99"])
    if not table:
        return []
    lines = [
        "### Contender against contender",
        "",
        "Within each round, a contender's throughput and p99 divided by its baseline's at "
        "the same point (closed loop at concurrency c, or open loop at a fixed arrival "
        "rate); median and spread (min-max) over the rounds. "
        + "; ".join(f"`{a}` vs `{b}`: {what}" for a, b, what in PAIRS)
        + ".",
        "",
        "| contender | baseline | endpoint | point | throughput ratio, median (spread) "
        "| p99 ratio, median (spread) | per round (throughput / p99) |",
        "|---|---|---|---|---|---|---|",
    ]
    for (name, baseline, endpoint, point), entry in table.items():
        rate, p99 = entry["throughput"], entry["p99"]
        per_round = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(rate, p99, strict=True))
        lines.append(
            f"| {name} | {baseline} | {endpoint} | {point} | "
            f"{statistics.median(rate):.2f}x ({min(rate):.2f}-{max(rate):.2f}) | "
            f"{statistics.median(p99):.2f}x ({min(p99):.2f}-{max(p99):.2f}) | {per_round} |"
        )
    return [*lines, ""]
