"""thread_cpu's report from its readings (the measuring itself is a benchmark)."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import thread_cpu


def test_a_variant_given_twice_is_its_own_control(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cpu_us = iter([40.0, 44.0, 40.0, 40.0, 44.0, 40.0])  # rounds: off on off, then reversed
    measured: list[str] = []

    def measure(variant: str, args: Any) -> dict[str, dict[str, float]]:
        measured.append(variant)
        cpu = next(cpu_us)
        return {
            "python": {"cpu_us": cpu, "system_us": 1.0, "switches": 0.0, "faults": 0.0},
            "total": {"cpu_us": cpu, "system_us": 1.0},
            "rate": {"requests_s": 1e6 / cpu, "per_run": 64.0},
        }

    monkeypatch.setattr(thread_cpu, "measure", measure)
    thread_cpu.main(["--rounds", "2", "off", "on", "off"])
    out = capsys.readouterr().out
    assert measured == ["off", "on", "off", "off", "on", "off"]
    lines = [line for line in out.splitlines() if line[:4] in ("off:", "on: ")]
    assert lines[0].startswith("off: 40.0")
    assert "requests per CPU-s 0.909x (0.909-0.909)" in lines[1]
    assert "requests per CPU-s 1.000x (1.000-1.000)" in lines[2]
