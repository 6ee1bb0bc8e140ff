"""The harness counts the CPU a server's process group burns: its threads and its children.

Each test starts a real process in a group of its own (as the harness starts a server), lets
it burn a known amount of CPU (measured by the burner's own CPU clock) and checks what
:class:`~benchmarks.server_cpu.ServerCpu` saw, within generous bounds: the machine is shared,
so only CPU time is asserted, never how long it took.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from benchmarks.recorder import Recorder
from benchmarks.server_cpu import ServerCpu, WindowSampler, usage

BURN_S = 0.3

BURNER = f"""
import subprocess, sys, threading, time

def burn(seconds, clock):
    start = clock()
    while clock() - start < seconds:
        pass

BURN = (
    "import time\\nstart = time.process_time()\\n"
    "while time.process_time() - start < {BURN_S}: pass\\n"
)
LIVE = "import sys\\nsys.stdin.readline()\\n" + BURN + "print('burnt', flush=True)\\ninput()"
how = sys.argv[1]
# any other mode ("wait") burns nothing: it waits for a "go" that never comes
if how == "live child":  # started before "ready", as a server's workers are
    live = subprocess.Popen(
        [sys.executable, "-c", LIVE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
print("ready", flush=True)
sys.stdin.readline()
if how == "process":
    burn({BURN_S}, time.process_time)
elif how == "thread":
    thread = threading.Thread(target=burn, args=({BURN_S}, time.thread_time))
    thread.start()
    thread.join()
elif how == "reaped child":  # gone before the second snapshot: counted in our cutime
    subprocess.run([sys.executable, "-c", BURN], check=True)
elif how == "live child":
    live.stdin.write("go\\n")
    live.stdin.flush()
    live.stdout.readline()
elif how == "forever":
    burn(1e9, time.process_time)
print("done", flush=True)
sys.stdin.readline()
"""


@contextmanager
def burner(how: str) -> Iterator[subprocess.Popen[str]]:
    """A process group whose leader burns CPU (``how``) once sent a line; killed at the end."""
    with subprocess.Popen(
        [sys.executable, "-c", BURNER, how],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n"
            yield child
        finally:
            os.killpg(child.pid, signal.SIGKILL)


def _go(child: subprocess.Popen[str]) -> None:
    assert child.stdin is not None
    child.stdin.write("go\n")
    child.stdin.flush()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["process", "thread", "live child", "reaped child"])
def test_server_cpu_counts_what_the_group_burns(how: str) -> None:
    with burner(how) as child:
        cpu = ServerCpu(child.pid)
        before = cpu.snapshot()
        _go(child)
        assert child.stdout is not None
        assert child.stdout.readline() == "done\n"
        after = cpu.snapshot()

    figures = usage(before, after, requests=300)
    assert 0.15 <= figures["server_cpu_s"] <= 2.0, figures
    assert 150 <= figures["requests_per_cpu_s"] <= 2000, figures
    # one thread at a time burns: at most one core, give or take the counters' ticks
    assert 0 < figures["server_cpu_share"] <= 1.5, figures
    assert figures["others_cpu_share"] >= 0, figures


@pytest.mark.slow
def test_server_cpu_leaves_out_processes_of_other_groups() -> None:
    # NOTE: the watched group is a waiting process of its own, not this test's group: under
    # pytest-xdist that group also holds the other workers, busy with other tests
    with burner("wait") as waiting, burner("process") as child:
        cpu = ServerCpu(waiting.pid)
        assert child.pid not in cpu.pids
        before = cpu.snapshot()
        _go(child)
        assert child.stdout is not None
        assert child.stdout.readline() == "done\n"
        idle = usage(before, cpu.snapshot(), requests=0)
    # the watched group only waited on a pipe meanwhile: far less than the burner's 0.3 s
    assert idle["server_cpu_s"] < 0.15, idle


@pytest.mark.slow
def test_window_sampler_gives_every_window_the_servers_cpu() -> None:
    async def measure(group: int) -> list[dict[str, Any]]:
        sampler = WindowSampler(group)
        recorder = Recorder(time.perf_counter() + 0.1, window_s=0.5, windows=2)
        sampler.start(recorder)
        await asyncio.sleep(recorder.measure_to - time.perf_counter())
        recorder.record(recorder.measure_from + 0.1, recorder.measure_from + 0.2, None)
        return await sampler.add_usage(recorder.summaries(rows=1))

    with burner("forever") as child:
        _go(child)
        windows = asyncio.run(measure(child.pid))

    assert [w["requests"] for w in windows] == [1, 0]
    for window in windows:
        assert 0 < window["server_cpu_s"] <= 1.0, window
        assert 0 < window["server_cpu_share"] <= 1.5, window
    first, second = windows
    # requests_per_cpu_s is rounded to 0.1 and server_cpu_s to 0.001: both roundings allowed
    assert first["requests_per_cpu_s"] == pytest.approx(
        1 / first["server_cpu_s"], rel=0.01, abs=0.05
    )
    assert second["requests_per_cpu_s"] == 0.0
