"""The server's CPU during a measured window: what it used, what it got, requests per CPU-second.

On a shared machine a throughput ratio measures the machine as much as the server: whatever
else runs on the server's core takes time the server would have spent answering. So every
measured window also records, from the kernel's counters:

- ``server_cpu_s``: user + system CPU seconds of the server's processes (every process in its
  process group, all their threads, and the children they reaped), from ``/proc/<pid>/stat``;
- ``server_cpu_share``: those seconds per wall-clock second (in cores: 1.0 is the whole of one
  core). Low at c=1 (the server waits for the client); at saturation, well below 1.0 means the
  server did not get its core;
- ``others_cpu_share``: the busy time of the CPUs the server is pinned to (``/proc/stat``:
  user, nice, system, irq, softirq, steal) that was *not* the server's, per wall second: other
  processes, interrupts and the hypervisor. Others also fill time the server did not want (at
  c=1 it waits for the client), so this alone does not say the server was starved;
- ``server_wait_share``: seconds the server's threads spent runnable but waiting for a CPU,
  per wall second (the run-queue delay of ``/proc/<pid>/task/<tid>/schedstat``, summed over
  threads, so it can pass 1.0). High together with ``others_cpu_share``: the point was
  starved. A server's own threads also wait for each other on one core, so it is not zero on
  a quiet machine either;
- ``requests_per_cpu_s``: answered requests per server CPU-second, the figure that does not
  depend on how much of the core the server got (:func:`usage`).

The load generator knows when its windows start and end, so it reads the counters at each
window boundary (:class:`WindowSampler`). :class:`ServerCpu` lists the group's processes once
(one scan of ``/proc``, before the warm-up), so a read at a boundary is a few small files and
barely delays the load. A process started after that scan is missed; one that exits and is
reaped is still counted (in its parent's ``cutime``/``cstime``). wrk measures one window per
process, so the harness reads the counters around each wrk run instead.

The counters tick at ``SC_CLK_TCK`` (100 Hz here): 10 ms per process and per CPU, small
against windows of seconds.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.recorder import Recorder
from benchmarks.stats import Summary

TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
BUSY_FIELDS = (0, 1, 2, 5, 6, 7)
"""Of a ``/proc/stat`` ``cpuN`` line: user, nice, system, irq, softirq, steal (guest time is
already inside user; idle and iowait are not busy)."""


@dataclass(frozen=True)
class CpuSnapshot:
    """The counters at one instant (``at``: ``time.perf_counter()``, seconds;
    ``waits_ns``: run-queue delay so far per thread id, empty without schedstat)."""

    at: float
    server_s: float
    cpus_busy_s: float
    waits_ns: dict[int, int] = field(default_factory=dict)


def group_pids(group: int) -> list[int]:
    """The processes of process group ``group`` (a started server's own group)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) == group:
                found.append(int(entry.name))
        except ProcessLookupError:
            continue
    return found


def thread_ids(pid: int) -> list[int]:
    """The threads of process ``pid`` (none once it exited)."""
    try:
        return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except FileNotFoundError:
        return []


def _wait_ns(pid: int, tid: int) -> int | None:
    """A thread's run-queue delay so far (second field of its ``schedstat``), None when it
    exited or the kernel keeps no schedstat."""
    try:
        return int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[1])
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def process_ticks(stat: str) -> int:
    """utime + stime + cutime + cstime from the text of ``/proc/<pid>/stat``.

    The command (field 2) may hold spaces and parentheses, so fields are counted after its
    last ``)``.

    >>> process_ticks("42 (a b) c) S 1 42 42 0 -1 0 0 0 0 0 150 25 7 3 20 0 1 0")
    185
    """
    fields = stat.rpartition(")")[2].split()
    return sum(int(value) for value in fields[11:15])  # fields 14-17 of proc(5)


def busy_ticks(cpus: Iterable[int], stat: str) -> int:
    """Busy ticks of ``cpus`` so far, from the text of ``/proc/stat``.

    >>> text = "cpu  9 9 9 9 9 9 9 9 0 0\\ncpu0 10 1 5 100 4 2 3 1 0 0\\ncpu1 7 0 0 9 0 0 0 0\\n"
    >>> busy_ticks([0], text), busy_ticks([0, 1], text)
    (22, 29)
    """
    wanted = {f"cpu{cpu}" for cpu in cpus}
    total = 0
    for line in stat.splitlines():
        name, _, rest = line.partition(" ")
        if name in wanted:
            values = rest.split()
            total += sum(int(values[i]) for i in BUSY_FIELDS if i < len(values))
    return total


class ServerCpu:
    """Reads the CPU counters of one server: its process group and the CPUs it may run on.

    The CPUs are those of the group's leader, or of another member once the leader exited
    (a group outlives its leader: e.g. a test's group under ``make``).

    Raises:
        ProcessLookupError: no process of the group is running.
    """

    def __init__(self, group: int) -> None:
        self.pids = group_pids(group)
        if not self.pids:
            raise ProcessLookupError(f"no process in group {group}")
        self.cpus = sorted(os.sched_getaffinity(group if group in self.pids else self.pids[0]))
        self.threads = [(pid, tid) for pid in self.pids for tid in thread_ids(pid)]

    def snapshot(self) -> CpuSnapshot:
        """The counters now."""
        ticks = 0
        for pid in self.pids:
            try:
                ticks += process_ticks(Path(f"/proc/{pid}/stat").read_text())
            except (FileNotFoundError, ProcessLookupError):
                continue  # reaped since listed: its time is in its parent's cutime/cstime
        busy = busy_ticks(self.cpus, Path("/proc/stat").read_text())
        waits = {tid: wait for pid, tid in self.threads if (wait := _wait_ns(pid, tid)) is not None}
        return CpuSnapshot(time.perf_counter(), ticks * TICK_S, busy * TICK_S, waits)


def usage(before: CpuSnapshot, after: CpuSnapshot, requests: int) -> dict[str, Any]:
    """The server's CPU between two snapshots, per wall second and per answered request.

    >>> a = CpuSnapshot(at=10.0, server_s=1.0, cpus_busy_s=2.0, waits_ns={7: 0, 8: 5})
    >>> b = CpuSnapshot(at=12.0, server_s=2.5, cpus_busy_s=3.9, waits_ns={7: 3 * 10**8, 9: 1})
    >>> for key, value in usage(a, b, requests=3000).items():
    ...     print(key, value)
    server_cpu_s 1.5
    server_cpu_share 0.75
    others_cpu_share 0.2
    server_wait_share 0.15
    requests_per_cpu_s 2000.0
    >>> usage(a, a, requests=0)["requests_per_cpu_s"] is None
    True
    """
    wall = after.at - before.at
    cpu = after.server_s - before.server_s
    # Per-process and per-CPU counters tick separately: never report a negative remainder.
    others = max(0.0, after.cpus_busy_s - before.cpus_busy_s - cpu)
    # threads that exited or started in between are left out (their counters do not span it)
    waits = [after.waits_ns[t] - ns for t, ns in before.waits_ns.items() if t in after.waits_ns]
    return {
        "server_cpu_s": round(cpu, 3),
        "server_cpu_share": round(cpu / wall, 3) if wall > 0 else None,
        "others_cpu_share": round(others / wall, 3) if wall > 0 else None,
        "server_wait_share": round(sum(waits) / 1e9 / wall, 3) if wall > 0 and waits else None,
        "requests_per_cpu_s": round(requests / cpu, 1) if cpu > 0 else None,
    }


class WindowSampler:
    """Snapshots of a server's counters at every window boundary of a load generator's
    :class:`~benchmarks.recorder.Recorder`, taken by a task of the running loop.

    Create it (the ``/proc`` scan) before the warm-up, :meth:`start` it once the recorder's
    ``measure_from`` is final, and :meth:`add_usage` to the window summaries at the end.
    """

    def __init__(self, group: int) -> None:
        self.cpu = ServerCpu(group)
        self._task: asyncio.Task[list[CpuSnapshot]] | None = None

    def start(self, recorder: Recorder) -> None:
        """Start sampling (the first snapshot at the start of the first window)."""
        self._task = asyncio.create_task(self._sample(recorder))

    async def _sample(self, r: Recorder) -> list[CpuSnapshot]:
        snapshots = []
        for k in range(r.windows + 1):
            # a late wake-up only shifts the boundary: the wall time is taken from ``at``
            await asyncio.sleep(max(0.0, r.measure_from + k * r.window_s - time.perf_counter()))
            snapshots.append(self.cpu.snapshot())
        return snapshots

    async def add_usage(self, summaries: list[Summary]) -> list[Summary]:
        """Each window's summary with the server's usage in that window."""
        if self._task is None:
            raise RuntimeError("WindowSampler.add_usage before start")
        snapshots = await self._task
        return [
            summary | usage(before, after, int(summary["requests"]))
            for summary, before, after in zip(summaries, snapshots[:-1], snapshots[1:], strict=True)
        ]


def cpu_seconds_of_group(group: int) -> float:
    """User + system CPU seconds used so far by the processes of process group ``group``
    (their threads and reaped children included)."""
    return ServerCpu(group).snapshot().server_s
