"""Interleaved rounds: ratios against the echo server per round, their median and spread.

A run measures every selected contender once per round, round after round (contender A, B,
C, then A, B, C again), so slow drift of a shared machine hits every contender alike. Each
round keeps the load average before and after it. The report compares, *within each round*,
a contender's single-row throughput with the echo server of the same protocol at the same
concurrency (gRPC with ``echo-grpc``, HTTP with ``echo-asgi``) and the c=1 p50 with the
echo's, then gives the median and the spread (min-max) of those per-round figures. The
contenders' own tables use the round whose c=64 throughput is the contender's median
(:func:`representative`).

Beside each throughput ratio stands the same ratio of *requests per server CPU-second*
(:mod:`benchmarks.server_cpu`): a server that another process kept off its core for part of a
round loses throughput but not requests per CPU-second, so that ratio holds where throughput
ratios scatter. Each round's share of a core the two servers got (CPU seconds per wall second)
shows which rounds were starved. Results recorded before the harness measured CPU have no such
figures: their cells show a dash.
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


def per_cpu_ratio(ours: dict[str, Any], base: dict[str, Any]) -> float | None:
    """The ratio of two points' requests per server CPU-second (None if either lacks it).

    >>> per_cpu_ratio({"requests_per_cpu_s": 9000.0}, {"requests_per_cpu_s": 10000.0})
    0.9
    >>> per_cpu_ratio({"requests_per_cpu_s": 9000.0}, {}) is None
    True
    """
    a, b = ours.get("requests_per_cpu_s"), base.get("requests_per_cpu_s")
    return round(a / b, 3) if a and b else None


def ratio_cell(values: list[float]) -> str:
    """``median (min-max)`` of per-round ratios, or a dash without any.

    >>> ratio_cell([0.9, 0.8, 1.2]), ratio_cell([])
    ('0.90x (0.80-1.20)', '—')
    """
    if not values:
        return "—"
    return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"


def shares_cell(shares: list[tuple[float | None, float | None]]) -> str:
    """Each round's server CPU shares (cores), ``ours/baseline``; a dash where unrecorded.

    >>> shares_cell([(0.98, 0.99), (0.61, None)]), shares_cell([(None, None)])
    ('0.98/0.99, 0.61/—', '—')
    """

    def one(share: float | None) -> str:
        return "—" if share is None else f"{share:.2f}"

    if all(a is None and b is None for a, b in shares):
        return "—"
    return ", ".join(f"{one(a)}/{one(b)}" for a, b in shares)


def round_ratios(contenders: list[dict[str, Any]]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Per (contender, endpoint, concurrency) of one round: throughput ratio to the echo, p50
    above the echo's (ms), the ratio of requests per server CPU-second and both servers' CPU
    shares (None where not recorded).

    >>> def pt(c, rate, p50, per_cpu):
    ...     return {"endpoint": "gRPC", "protocol": "grpc", "concurrency": c, "rows": 1,
    ...             "median": {"throughput": rate, "p50_ms": p50,
    ...                        "requests_per_cpu_s": per_cpu, "server_cpu_share": 0.5}}
    >>> echo = {"name": "echo-grpc", "status": "ok", "points": [pt(1, 4000, 0.25, 8000.0)]}
    >>> ours = {"name": "modelyard", "status": "ok", "points": [pt(1, 3000, 0.40, 6400.0)]}
    >>> round_ratios([echo, ours])[("modelyard", "gRPC", 1)]
    {'ratio': 0.75, 'p50_over_ms': 0.15, 'per_cpu': 0.8, 'shares': (0.5, 0.5)}
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
            ours, theirs = point["median"], echo["median"]
            found[key] = {
                "ratio": round(ours["throughput"] / theirs["throughput"], 3),
                "p50_over_ms": round(ours["p50_ms"] - theirs["p50_ms"], 3),
                "per_cpu": per_cpu_ratio(ours, theirs),
                "shares": (ours.get("server_cpu_share"), theirs.get("server_cpu_share")),
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
    >>> summarize_rounds([rnd(90)])[0]["per_cpu_ratios"]  # not recorded: no per-CPU figures
    []
    """
    table: dict[tuple[str, str, int], dict[str, list[Any]]] = {}
    for one in rounds:
        for key, figures in round_ratios(one["contenders"]).items():
            entry = table.setdefault(key, {"ratio": [], "p50": [], "per_cpu": [], "shares": []})
            entry["ratio"].append(figures["ratio"])
            entry["p50"].append(figures["p50_over_ms"])
            entry["shares"].append(figures["shares"])
            if figures["per_cpu"] is not None:
                entry["per_cpu"].append(figures["per_cpu"])
    return [
        {
            "contender": name,
            "endpoint": endpoint,
            "concurrency": c,
            "ratios": entry["ratio"],
            "median": round(statistics.median(entry["ratio"]), 3),
            "spread": [min(entry["ratio"]), max(entry["ratio"])],
            "p50_over_ms_median": round(statistics.median(entry["p50"]), 3),
            "per_cpu_ratios": entry["per_cpu"],
            "shares": entry["shares"],
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
        "the per-round differences. Per CPU-s: the same ratio of requests per server "
        "CPU-second, which does not depend on how much of its core each server got; CPU "
        "share: each round's server CPU seconds per wall second (cores), contender/echo. "
        f"Load average (1/5/15 min) before → after each round: {loads}.",
        "",
        "| contender | endpoint | c | x echo, median | spread | per round "
        "| per CPU-s x echo, median (spread) | p50 over echo (ms) | CPU share per round |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summarize_rounds(rounds):
        low, high = row["spread"]
        per_round = ", ".join(f"{r:.2f}" for r in row["ratios"])
        lines.append(
            f"| {row['contender']} | {row['endpoint']} | {row['concurrency']} | "
            f"{row['median']:.2f}x | {low:.2f}-{high:.2f} | {per_round} | "
            f"{ratio_cell(row['per_cpu_ratios'])} | {row['p50_over_ms_median']:+.3f} | "
            f"{shares_cell(row['shares'])} |"
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
) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """Per (contender, baseline, endpoint, point) of one round: throughput, p99 and requests
    per server CPU-second ratios, and both servers' CPU shares (None where not recorded).

    >>> def c(name, rate, p99):
    ...     return {"name": name, "status": "ok", "points": [{"endpoint": "gRPC",
    ...         "protocol": "grpc", "mode": "closed", "concurrency": 64, "rows": 1,
    ...         "median": {"throughput": rate, "p99_ms": p99}}]}
    >>> base, ours = c("modelyard-unobserved", 100, 10.0), c("modelyard-observed", 95, 10.5)
    >>> found = pair_ratios([base, ours])
    >>> found[("modelyard-observed", "modelyard-unobserved", "gRPC", "c=64")]
    {'throughput': 0.95, 'p99': 1.05, 'per_cpu': None, 'shares': (None, None)}
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
                "per_cpu": per_cpu_ratio(m, base),
                "shares": (m.get("server_cpu_share"), base.get("server_cpu_share")),
            }
    return found


def pairs_table(rounds: list[Round]) -> list[str]:
    """The markdown section comparing the :data:`PAIRS` round by round (empty without any)."""
    table: dict[tuple[str, str, str, str], dict[str, list[Any]]] = {}
    for one in rounds:
        for key, figures in pair_ratios(one["contenders"]).items():
            entry = table.setdefault(
                key, {"throughput": [], "p99": [], "per_cpu": [], "shares": []}
            )
            entry["throughput"].append(figures["throughput"])
            entry["p99"].append(figures["p99"])
            entry["shares"].append(figures["shares"])
            if figures["per_cpu"] is not None:
                entry["per_cpu"].append(figures["per_cpu"])
    if not table:
        return []
    lines = [
        "### Contender against contender",
        "",
        "Within each round, a contender's throughput, requests per server CPU-second and p99 "
        "divided by its baseline's at the same point (closed loop at concurrency c, or open "
        "loop at a fixed arrival rate); median and spread (min-max) over the rounds. At a "
        "fixed rate both answer the same requests, so the per-CPU-s ratio is the inverse of "
        "the ratio of CPU per request. CPU share: each round's server CPU seconds per wall "
        "second (cores), contender/baseline. "
        + "; ".join(f"`{a}` vs `{b}`: {what}" for a, b, what in PAIRS)
        + ".",
        "",
        "| contender | baseline | endpoint | point | throughput ratio, median (spread) "
        "| per CPU-s ratio, median (spread) | p99 ratio, median (spread) "
        "| per round (throughput / p99) | CPU share per round |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (name, baseline, endpoint, point), entry in table.items():
        rate, p99 = entry["throughput"], entry["p99"]
        per_round = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(rate, p99, strict=True))
        lines.append(
            f"| {name} | {baseline} | {endpoint} | {point} | {ratio_cell(rate)} | "
            f"{ratio_cell(entry['per_cpu'])} | {ratio_cell(p99)} | {per_round} | "
            f"{shares_cell(entry['shares'])} |"
        )
    return [*lines, ""]
