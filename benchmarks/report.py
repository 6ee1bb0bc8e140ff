"""Write a run: the combined JSON, the markdown section of RESULTS.md and the PNG plots.

The markdown replaces the ``## Serving benchmark`` section of ``benchmarks/RESULTS.md`` (other
sections are kept). Ratios compare contenders measured in the same run: single-row throughput
at concurrency 64 against the in-process limit, MLServer (default and tuned, same protocol),
the echo server of the same protocol and the naive server; the rounds' ratios also compare
requests per server CPU-second, and a table gives each point's server CPU
(:mod:`benchmarks.report_cpu`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.report_cpu import cpu_table
from benchmarks.report_tables import (
    big_batch_table,
    closed_loop_table,
    derived_lines,
    limit_table,
    memory_table,
    notes,
    ratio_table,
)
from benchmarks.results_files import LATEST as LATEST_NAMES
from benchmarks.results_files import PLOT_PROTOCOLS, checked_output, plot_name
from benchmarks.rounds import pairs_table, rounds_table

SECTION = "## Serving benchmark"


def _series(contender: dict[str, Any], protocol: str) -> dict[str, dict[str, list[Any]]]:
    """Per endpoint: closed-loop (c, req/s, p99) and open-loop (rate, req/s, p99) points."""
    series: dict[str, dict[str, list[Any]]] = {}
    for p in contender.get("points", []):
        m = p["median"]
        if (
            p["protocol"] == protocol
            and p["rows"] == 1
            and m.get("p99_ms")
            and m.get("tool") != "perf_analyzer"
        ):
            entry = series.setdefault(p["endpoint"], {"closed": [], "open": []})
            if p.get("mode", "closed") == "open":
                entry["open"].append((p["rate"], m["throughput"], m["p99_ms"]))
            else:
                entry["closed"].append((p["concurrency"], m["throughput"], m["p99_ms"]))
    for search in contender.get("open_loop", []):
        if search["protocol"] == protocol:
            entry = series.setdefault(search["endpoint"], {"closed": [], "open": []})
            entry["open"] = sorted(
                entry["open"]
                + [
                    (t["rate"], t["summary"]["throughput"], t["summary"]["p99_ms"])
                    for t in search["tested"]
                    if t["summary"].get("p99_ms")
                ]
            )
    return series


def _draw(ax: Any, contender: dict[str, Any], protocol: str, colors: Iterator[str]) -> bool:
    """Draw one contender's endpoints of ``protocol``; False when it has none."""
    drawn = False
    for endpoint, entry in _series(contender, protocol).items():
        color = next(colors)
        for c, x, y in entry["closed"]:
            ax.scatter([x], [y], color=color, s=18)
            ax.annotate(
                f"c{c}", (x, y), fontsize=6, color=color, xytext=(3, 3), textcoords="offset points"
            )
        if entry["open"]:
            ax.plot(
                [x for _, x, _ in entry["open"]],
                [y for _, _, y in entry["open"]],
                color=color,
                marker="x",
                markersize=4,
                linewidth=1,
            )
        ax.plot([], [], color=color, marker="o", label=f"{contender['name']} {endpoint}")
        drawn = True
    return drawn


def plot(run: dict[str, Any], protocol: str, path: Path) -> bool:
    """Plot p99 against throughput per contender endpoint of ``protocol``: closed-loop points
    (dots labelled with c) and the open-loop probes (a line, by offered rate)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    colors = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4)
    drawn = [_draw(ax, contender, protocol, colors) for contender in run["contenders"]]
    if not any(drawn):
        plt.close(fig)
        return False
    ax.axhline(run["options"]["sla_p99_ms"], color="grey", linestyle="--", linewidth=1)
    ax.set(
        xlabel="throughput (req/s, log)",
        ylabel="p99 latency (ms, log)",
        xscale="log",
        yscale="log",
        title=f"{protocol.upper()}, one row per request: p99 vs throughput "
        "(dots: closed loop c=1/8/64; x-lines: open-loop rates)",
    )
    ax.title.set_fontsize(9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _header(run: dict[str, Any]) -> list[str]:
    m, opts = run["machine"]["before"], run["options"]
    after = run["machine"]["after"]["load_average"]
    versions = ", ".join(f"{k} {v}" for k, v in run["versions"].items())
    return [
        SECTION,
        "",
        f"Run `{run['run_id']}` (started {run['started_utc']} UTC, took {run['elapsed_s']:.0f} s).",
        "",
        f"Command: `{run['command']}`",
        "",
        f"Machine: {m['cpu']}, {m['cpus']} CPUs, {m['memory_gib']} GiB, Linux {m['kernel']}, "
        f"Python {m['python']}; load average before {m['load_average']}, after {after} "
        "(the machine is shared: compare contenders within this run only).",
        "",
        "Pinning: each server on CPU 0 and its load generator on CPU 1 (`taskset`), unless the "
        "contender says otherwise (the two-worker modelyard shares CPUs 0,1 with its load "
        f"generator). Each point: {opts['warmup']} s warm-up, {opts['duration']} s measured, "
        f"repeated {opts['repeats']}x, the repeat with the median throughput kept; "
        f"{opts.get('rounds', 1)} interleaved round(s), the tables below the ratios show each "
        "contender's round with its median c=64 throughput. Requests: "
        "one row 1x32 FP32 (gRPC: raw_input_contents; HTTP: V2 JSON) unless stated.",
        "",
        "Load generators: gRPC — our asyncio grpc.aio client on uvloop (closed loop: c "
        "coroutines; open loop: fixed arrival rate, latency from the scheduled send time); "
        "HTTP closed loop — wrk (1 thread, Lua script); HTTP open loop — our Python uvloop "
        "client (wrk2 is not packaged here; its ceiling is the echo-asgi open-loop figure, "
        "and HTTP rates within 10% of it are marked client-bound); "
        "perf_analyzer (tritonclient 2.41.0 wheel) as a cross-check where the server answers "
        "ModelConfig.",
        "",
        f"Versions: {versions}.",
        "",
    ]


def render(run: dict[str, Any], plots: list[str]) -> str:
    """The markdown section for ``run``."""
    lines = _header(run)
    lines += rounds_table(run.get("rounds", [])) + pairs_table(run.get("rounds", []))
    lines += closed_loop_table(run) + cpu_table(run) + ratio_table(run) + big_batch_table(run)
    lines += derived_lines(run) + limit_table(run) + memory_table(run)
    if plots:
        lines += ["### Throughput vs p99", ""]
        lines += [
            "The plots are not kept in git; `python -m benchmarks plots` draws them from "
            "`benchmarks/results/latest.json`.",
            "",
        ]
        lines += [f"![{Path(p).stem}]({p})" for p in plots] + [""]
    lines += notes(run)
    return "\n".join(lines) + "\n"


def replace_section(document: str, section: str) -> str:
    """Replace the ``## Serving benchmark`` section of ``document`` (or append it).

    >>> doc = "# R\\n## Serving benchmark\\nold\\n## Other\\nkeep\\n"
    >>> replace_section(doc, "## Serving benchmark\\nnew\\n")
    '# R\\n## Serving benchmark\\nnew\\n## Other\\nkeep\\n'
    """
    start = document.find(SECTION)
    if start < 0:
        return (document.rstrip() + "\n\n" if document.strip() else "") + section
    end = document.find("\n## ", start + len(SECTION))
    rest = document[end + 1 :] if end >= 0 else ""
    return document[:start] + section + rest


LATEST = LATEST_NAMES["harness"]
"""The one run JSON kept in ``benchmarks/results/`` (each run replaces it)."""


def write_plots(run: dict[str, Any], out: Path) -> list[Path]:
    """Draw ``latest-<protocol>.png`` for each protocol the run has; return the files."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for protocol in PLOT_PROTOCOLS:
        png = out / plot_name(protocol)
        if plot(run, protocol, png):
            written.append(png)
    return written


def write_run(run: dict[str, Any], results_dir: Path, results_md: Path) -> Path:
    """Write the run JSON (replacing the previous run's), the plots (outside git, see
    ``.gitignore``) and the RESULTS.md section; return the JSON path."""
    path = checked_output(results_dir / LATEST, "harness")
    results_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run, indent=1))
    plots = [
        os.path.relpath(png.resolve(), results_md.parent.resolve())
        for png in write_plots(run, results_dir)
    ]
    document = results_md.read_text() if results_md.exists() else "# Benchmark results\n"
    results_md.write_text(replace_section(document, render(run, plots)))
    print(render(run, plots))
    return path
