"""The markdown tables of a run (see ``report``): closed loop, ratios, 512 rows, limit, memory."""

from __future__ import annotations

from typing import Any

from benchmarks.report_cpu import starved_note

Run = dict[str, Any]
LITTLE_TOLERANCE = 0.3


def _ok(run: Run) -> list[dict[str, Any]]:
    return [c for c in run["contenders"] if c.get("status") == "ok"]


def _point(
    contender: dict[str, Any], endpoint: str, c: int, rows: int = 1, tool: str | None = None
) -> dict[str, Any] | None:
    for p in contender.get("points", []):
        same_tool = tool is None or p["median"].get("tool") == tool
        if (
            p["endpoint"] == endpoint
            and p["concurrency"] == c
            and p["rows"] == rows
            and same_tool
            and p["median"].get("tool") != "perf_analyzer"
        ):
            median: dict[str, Any] = p["median"]
            return median
    return None


def _cell(m: dict[str, Any] | None) -> str:
    if m is None:
        return "—"
    return f"{m['throughput']:,.0f} ({m['p50_ms']}/{m['p99_ms']})"


def _endpoints(contender: dict[str, Any]) -> list[str]:
    seen: list[str] = []
    for p in contender.get("points", []):
        if p["endpoint"] not in seen and p["protocol"] != "in-process":
            seen.append(p["endpoint"])
    return seen


def _http_client_ceiling(run: Run) -> float | None:
    """The echo-asgi sustained open-loop rate: what our Python HTTP client can issue."""
    echo = _find(run, "echo-asgi")
    rates = [s["sustained_rate"] for s in (echo or {}).get("open_loop", []) if s["sustained_rate"]]
    return float(max(rates)) if rates else None


def _sustained(run: Run, contender: dict[str, Any], endpoint: str) -> str:
    for s in contender.get("open_loop", []):
        if s["endpoint"] != endpoint:
            continue
        if s["sustained_rate"] is None:
            return f"< {s['lowest_failed_rate']:,} (none passed)"
        cell = f"{s['sustained_rate']:,} (p99 {s['sustained_p99_ms']} ms)"
        ceiling = _http_client_ceiling(run)
        if s["protocol"] == "http" and ceiling and s["sustained_rate"] >= 0.9 * ceiling:
            cell += " ≥, client-bound"
        return cell
    return "—"


def closed_loop_table(run: Run) -> list[str]:
    """Single-row closed-loop points and the sustained open-loop rate per endpoint."""
    sla = run["options"]["sla_p99_ms"]
    lines = [
        "### Single-row requests",
        "",
        "req/s (p50/p99 ms), closed loop at concurrency c; last column: the highest "
        f"open-loop arrival rate sustained with p99 < {sla} ms and no errors. wrk's "
        "percentiles include its coordinated-omission correction (see Notes).",
        "",
        "| contender | endpoint | tool | c=1 | c=8 | c=64 | errors | sustained rate |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for contender in _ok(run):
        for endpoint in _endpoints(contender):
            cells = [_point(contender, endpoint, c) for c in (1, 8, 64)]
            tools = {str(m.get("tool")) for m in cells if m}
            errors = sum(int(m.get("errors") or 0) for m in cells if m)
            lines.append(
                f"| {contender['name']} | {endpoint} | {', '.join(sorted(tools))} | "
                f"{' | '.join(_cell(m) for m in cells)} | {errors} | "
                f"{_sustained(run, contender, endpoint)} |"
            )
            pa = [
                p
                for p in contender["points"]
                if p["endpoint"] == endpoint and p["median"].get("tool") == "perf_analyzer"
            ]
            if pa:
                by_c = {p["concurrency"]: p["median"] for p in pa}
                lines.append(
                    f"| {contender['name']} | {endpoint} | perf_analyzer | "
                    f"{' | '.join(_cell(by_c.get(c)) for c in (1, 8, 64))} | 0 | — |"
                )
    return [*lines, ""]


def _find(run: Run, name: str) -> dict[str, Any] | None:
    return next((c for c in _ok(run) if c["name"] == name), None)


def _ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}x" if base else "—"


def _c64(contender: dict[str, Any] | None, protocol: str, label: str = "") -> float | None:
    """Single-row c=64 throughput of ``contender``: the endpoint named ``label`` if it has
    one, else its first unary endpoint of ``protocol``."""
    if contender is None:
        return None
    candidates = [
        p
        for p in contender.get("points", [])
        if p["protocol"] == protocol
        and p["concurrency"] == 64
        and p["rows"] == 1
        and p["median"].get("tool") != "perf_analyzer"
    ]
    same = [p for p in candidates if p["endpoint"] == label]
    unary = [p for p in candidates if "stream" not in p["endpoint"]]
    chosen = same or unary
    return float(chosen[0]["median"]["throughput"]) if chosen else None


def derived_lines(run: Run) -> list[str]:
    """Streaming vs unary and the two-worker scaling factor, from the c=64 points."""
    lines = []
    for name in ("modelyard", "echo-grpc"):
        contender = _find(run, name)
        stream, unary = _c64(contender, "grpc", "gRPC stream"), _c64(contender, "grpc", "gRPC")
        if contender and stream and unary and stream != unary:
            lines.append(
                f"- {name}: one ModelStreamInfer stream (64 in flight) "
                f"{stream:,.0f} msg/s vs unary c=64 {unary:,.0f} req/s "
                f"({stream / unary:.2f}x)."
            )
    one, two = _find(run, "modelyard"), _find(run, "modelyard-2w")
    for protocol, label in (("grpc", "gRPC"), ("http", "REST V2")):
        a, b = _c64(one, protocol, label), _c64(two, protocol, label)
        if a and b:
            lines.append(
                f"- modelyard {label}, 2 workers vs 1 at c=64: {b:,.0f} vs {a:,.0f} "
                f"req/s = {b / a:.2f}x (2 workers and the load generator share both "
                "cores; 1 worker has CPU 0, its load generator CPU 1)."
            )
    return ["### Streaming and scaling", "", *lines, ""] if lines else []


def ratio_table(run: Run) -> list[str]:
    """c=64 single-row throughput against the limit, MLServer, the echo and the naive server."""
    limit = _find(run, "limit")
    limit_rate = _point(limit, "onnxruntime", 1) if limit else None
    base = {"limit": limit_rate["throughput"] if limit_rate else None}
    lines = [
        "### Ratios (single row, c=64, same run)",
        "",
        "x limit: against in-process onnxruntime single-row calls/s on one core; "
        "MLServer and echo columns compare the same protocol (gRPC to gRPC, HTTP to REST).",
        "",
        "| contender | endpoint | req/s | x limit | x MLServer default | "
        "x MLServer tuned | x echo | x naive |",
        "|---|---|---|---|---|---|---|---|",
    ]
    naive = _c64(_find(run, "naive"), "http")
    for contender in _ok(run):
        for p in contender.get("points", []):
            if (
                p["concurrency"] != 64
                or p["rows"] != 1
                or p["median"].get("tool") == "perf_analyzer"
            ):
                continue
            rate, proto = float(p["median"]["throughput"]), p["protocol"]
            echo_name = "echo-grpc" if proto == "grpc" else "echo-asgi"
            echo = _c64(_find(run, echo_name), proto, p["endpoint"])
            lines.append(
                f"| {contender['name']} | {p['endpoint']} | {rate:,.0f} | "
                f"{_ratio(rate, base['limit'])} | "
                f"{_ratio(rate, _c64(_find(run, 'mlserver-default'), proto))} | "
                f"{_ratio(rate, _c64(_find(run, 'mlserver-tuned'), proto))} | "
                f"{_ratio(rate, echo)} | {_ratio(rate, naive) if proto == 'http' else '—'} |"
            )
    return [*lines, ""]


def big_batch_table(run: Run) -> list[str]:
    """512-row requests against in-process onnxruntime at batch 512."""
    limit = _find(run, "limit")
    ort = _point(limit, "onnxruntime", 1, 512) if limit else None
    rows = [
        (c, p)
        for c in _ok(run)
        for p in c.get("points", [])
        if p["rows"] == 512 and p["protocol"] != "in-process"
    ]
    if not rows:
        return []
    lines = [
        "### 512-row requests (raw tensors)",
        "",
        "| contender | endpoint | c | rows/s | p50/p99 ms | x onnxruntime in-process 512 |",
        "|---|---|---|---|---|---|",
    ]
    for contender, p in rows:
        m = p["median"]
        lines.append(
            f"| {contender['name']} | {p['endpoint']} | {p['concurrency']} | "
            f"{m['rows_per_s']:,.0f} | {m['p50_ms']}/{m['p99_ms']} | "
            f"{_ratio(m['rows_per_s'], ort['rows_per_s'] if ort else None)} |"
        )
    return [*lines, ""]


def limit_table(run: Run) -> list[str]:
    """The in-process limit per runtime and batch size."""
    limit = _find(run, "limit")
    if limit is None:
        return []
    lines = [
        "### In-process limit (one thread, CPU 0, no I/O)",
        "",
        "| runtime | batch | calls/s | rows/s | p50/p99 ms per call |",
        "|---|---|---|---|---|",
    ]
    for p in limit["points"]:
        m = p["median"]
        lines.append(
            f"| {p['endpoint']} | {p['rows']} | {m['throughput']:,.0f} | "
            f"{m['rows_per_s']:,.0f} | {m['p50_ms']}/{m['p99_ms']} |"
        )
    return [*lines, ""]


def _short(cmd: str) -> str:
    """The program and its first words, e.g. ``python -m modelyard serve``.

    >>> _short("/venv/bin/python -m modelyard serve --model-repository /x --workers 2")
    'python -m modelyard serve'
    """
    words = cmd.split()
    if not words:
        return "?"
    return " ".join([words[0].rsplit("/", 1)[-1], *words[1:4]]).split(" --")[0]


def memory_table(run: Run) -> list[str]:
    """Peak RSS of each server process at the end of its contender's run."""
    lines = [
        "### Server memory (peak RSS per process, MiB)",
        "",
        "| contender | peak RSS per process, MiB (process) |",
        "|---|---|",
    ]
    for contender in _ok(run):
        procs = contender.get("memory") or []
        if procs:
            cells = ", ".join(f"{p['peak_rss_mib']} (`{_short(p['cmd'])}`)" for p in procs)
            lines.append(f"| {contender['name']} | {cells} |")
    return [*lines, ""]


def _little_flags(run: Run) -> list[str]:
    flagged = []
    for contender in _ok(run):
        for p in contender.get("points", []):
            m = p["median"]
            if m.get("tool") != "wrk" or not m.get("throughput") or not m.get("mean_ms"):
                continue
            ratio = m["mean_ms"] / 1e3 * m["throughput"] / p["concurrency"]
            if abs(ratio - 1) > LITTLE_TOLERANCE:
                flagged.append(
                    f"{contender['name']} {p['endpoint']} c={p['concurrency']} ({ratio:.1f}x)"
                )
    return flagged


def notes(run: Run) -> list[str]:
    """Skipped contenders and measurement caveats."""
    lines = ["### Notes", "", *(f"- {note}" for note in run.get("notes", []))]
    for c in run["contenders"]:
        if c.get("status") != "ok":
            lines.append(f"- {c['name']}: {c['status']} — {c.get('reason', '')[:400]}")
        lines += [f"- {c['name']}: {n}" for n in c.get("notes", [])]
    lines += starved_note(run)
    flagged = _little_flags(run)
    if flagged:
        lines.append(
            "- wrk corrects its latencies for coordinated omission (`stats_correct`: every "
            "response slower than twice the mean interval between requests adds synthetic "
            "samples), so its percentiles estimate what an open-loop client at the same rate "
            "would see, not the raw per-request times our gRPC client reports. Where stalls "
            "happen at low concurrency this inflates them well above Little's law (mean "
            "latency x req/s / c should be 1): "
            + "; ".join(flagged)
            + ". Throughput is unaffected; the open-loop points give the latency under load."
        )
    return [*lines, ""]
