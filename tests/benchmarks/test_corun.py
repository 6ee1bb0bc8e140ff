"""corun's figures from its readings (the measuring itself is a benchmark)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from benchmarks import corun


def test_ratios_are_per_window_and_servers_stop(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stopped: list[str] = []
    orders: list[list[int]] = []

    def start_variant(variant: str, label: str, args: Any, env: Any) -> tuple[Any, Any]:
        server = SimpleNamespace(stop=lambda: stopped.append(variant))
        return server, SimpleNamespace(variant=variant)

    speeds = iter([(100.0, 90.0), (50.0, 44.0), (80.0, 72.0)])  # the core's speed changes

    def window(servers: Any, bodies: Any, args: Any, order: list[int]) -> list[dict[str, float]]:
        orders.append(order)
        base, other = next(speeds)
        return [
            {"per_cpu_s": base, "cpu_us": 1e6 / base, "rate": base},
            {"per_cpu_s": other, "cpu_us": 1e6 / other, "rate": other},
        ]

    monkeypatch.setattr(corun, "start_variant", start_variant)
    monkeypatch.setattr(corun, "_body_files", lambda ctx: {"v2": Path(ctx.variant)})
    monkeypatch.setattr(corun, "window", window)
    corun.main(["--rounds", "3", "off", "on"])
    out = capsys.readouterr().out
    assert "on: " in out
    assert "0.900x (0.880-0.900)" in out
    assert orders == [[0, 1], [1, 0], [0, 1]]
    assert stopped == ["off", "on"]
