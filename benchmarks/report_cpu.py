"""The report's view of the server's CPU: a table per point and a note naming starved points.

Every point the load generators measured carries, in its kept (median) window, the server's
CPU seconds, its share of a core, the share the server's CPUs gave to anything else, how long
the server's threads waited for a CPU, and requests per server CPU-second
(:mod:`benchmarks.server_cpu`), and the load average before and after the point.
:func:`cpu_table` shows them for the contenders' representative round; :func:`starved_note`
names, over every round, the *starved* points (:func:`starved`): their throughput says more
about the machine than about the server. Results recorded before these figures existed give
no table and no note.
"""

from __future__ import annotations

from typing import Any

NAMED_AT_MOST = 12
"""Starved points named in the note; past that it gives their count."""
STARVED_SHARE = 0.2
"""From this share (per wall second) of others' CPU on the server's CPUs, and of the server's
threads waiting for a CPU, a point counts as starved."""


def _label(point: dict[str, Any]) -> str:
    """``c=64``, ``c=4, 512 rows`` or ``2,000 req/s``.

    >>> _label({"mode": "open", "rate": 2000.0, "rows": 1})
    '2,000 req/s'
    >>> _label({"mode": "closed", "concurrency": 4, "rows": 512})
    'c=4, 512 rows'
    """
    if point.get("mode", "closed") == "open":
        return f"{point['rate']:,.0f} req/s"
    rows = f", {point['rows']} rows" if point["rows"] != 1 else ""
    return f"c={point['concurrency']}{rows}"


def _measured_points(contender: dict[str, Any]) -> list[dict[str, Any]]:
    """A contender's server points that carry CPU or load figures (no perf_analyzer: it has
    none, no in-process limit: it has no server)."""
    if contender.get("status") != "ok":
        return []
    return [
        p
        for p in contender.get("points", [])
        if p["protocol"] != "in-process"
        and p["median"].get("tool") != "perf_analyzer"
        and ("server_cpu_s" in p["median"] or "load_before" in p)
    ]


def _number(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _shared_cpus(contender: dict[str, Any]) -> bool:
    """Whether the load generator may run on the server's CPUs (then "others" includes it).

    >>> _shared_cpus({"server_cpus": "0,1", "client_cpus": "0,1"}), _shared_cpus({})
    (True, False)
    """
    server = set(str(contender.get("server_cpus", "0")).split(","))
    return bool(server & set(str(contender.get("client_cpus", "1")).split(",")))


def starved(contender: dict[str, Any], window: dict[str, Any]) -> bool:
    """Whether something else took the server's CPU while the server wanted it: others used
    at least :data:`STARVED_SHARE` of a core of the server's CPUs *and* the server's threads
    waited at least as long for a CPU (others alone also fill time an idle server leaves:
    at c=1 it waits for the client). Not judged where the load generator shares the server's
    CPUs, nor without the figures.

    >>> alone = {"server_cpus": "0", "client_cpus": "1"}
    >>> starved(alone, {"others_cpu_share": 0.4, "server_wait_share": 0.3})
    True
    >>> starved(alone, {"others_cpu_share": 0.7, "server_wait_share": 0.02})  # idle at c=1
    False
    >>> starved(alone, {})
    False
    """
    others, wait = window.get("others_cpu_share"), window.get("server_wait_share")
    if others is None or _shared_cpus(contender):
        return False
    return bool(others >= STARVED_SHARE and (wait is None or wait >= STARVED_SHARE))


def _load_cell(point: dict[str, Any]) -> str:
    before, after = point.get("load_before"), point.get("load_after")
    return f"{before[0]:.2f} → {after[0]:.2f}" if before and after else "—"


def cpu_table(run: dict[str, Any]) -> list[str]:
    """Per point of the representative round: req/s, the server's CPU share, others' share of
    its CPUs, requests per server CPU-second and the 1-minute load before → after."""
    rows = [(c, p) for c in run["contenders"] for p in _measured_points(c)]
    if not rows:
        return []
    lines = [
        "### Server CPU per point",
        "",
        "The kept window of each point (the round shown in the tables above): the server's "
        "CPU seconds per wall second (cores: 1.0 is all of one core); the busy time of the "
        "server's CPUs that went to anything else (other processes, interrupts, steal) and "
        "the time the server's threads waited for a CPU, both per wall second (*starved*: "
        f"both at least {STARVED_SHARE}); answered requests per server CPU-second; the "
        "1-minute load average before → after the point. The server's CPU is every process "
        "of its process group, all threads (`/proc/<pid>/stat`); a database server it writes "
        "to (PostgreSQL) is not in it.",
        "",
        "| contender | endpoint | point | req/s | server CPU (cores) | others on its CPUs "
        "| server waiting for a CPU | req per CPU-s | load before → after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for contender, p in rows:
        m = p["median"]
        mark = " (starved)" if starved(contender, m) else ""
        lines.append(
            f"| {contender['name']} | {p['endpoint']} | {_label(p)} | "
            f"{m['throughput']:,.0f} | {_number(m.get('server_cpu_share'), '.2f')} | "
            f"{_number(m.get('others_cpu_share'), '.2f')} | "
            f"{_number(m.get('server_wait_share'), '.2f')}{mark} | "
            f"{_number(m.get('requests_per_cpu_s'), ',.0f')} | {_load_cell(p)} |"
        )
    return [*lines, ""]


def starved_note(run: dict[str, Any]) -> list[str]:
    """One note naming every starved point of every round (none: no note).

    >>> point = {"endpoint": "gRPC", "protocol": "grpc", "mode": "closed", "concurrency": 64,
    ...          "rows": 1, "median": {"server_cpu_s": 2.0, "server_cpu_share": 0.6,
    ...                                "others_cpu_share": 0.4, "server_wait_share": 0.5}}
    >>> rounds = [{"round": 2, "contenders": [{"name": "m", "status": "ok", "points": [point]}]}]
    >>> [note] = starved_note({"rounds": rounds, "contenders": []})
    >>> note[note.index("):") + 3 :]
    'round 2 m gRPC c=64 (server 0.60, others 0.40, waiting 0.50).'
    """
    rounds = run.get("rounds") or [{"round": None, "contenders": run["contenders"]}]
    found = []
    for one in rounds:
        for contender in one["contenders"]:
            for p in _measured_points(contender):
                m = p["median"]
                if starved(contender, m):
                    where = f"round {one['round']} " if one["round"] is not None else ""
                    found.append(
                        f"{where}{contender['name']} {p['endpoint']} {_label(p)} (server "
                        f"{m['server_cpu_share']:.2f}, others {m['others_cpu_share']:.2f}, "
                        f"waiting {_number(m.get('server_wait_share'), '.2f')})"
                    )
    if not found:
        return []
    more = len(found) - NAMED_AT_MOST
    return [
        f"- {len(found)} starved point(s) (something else took at least {STARVED_SHARE} of a "
        "core from the server's CPUs while its threads waited as long for one; compare their "
        "requests per CPU-second rather than their req/s): "
        + "; ".join(found[:NAMED_AT_MOST])
        + (f"; and {more} more (see the run JSON)" if more > 0 else "")
        + "."
    ]
