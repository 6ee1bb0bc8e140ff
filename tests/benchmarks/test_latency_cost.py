"""latency_cost's rates at shares of a measured capacity (the measuring itself is a benchmark)."""

from __future__ import annotations

import pytest

from benchmarks.latency_cost import main, rates_from_capacity


def test_rates_follow_the_capacity_of_each_machine() -> None:
    shares = [0.25, 0.5]
    fast, slow = rates_from_capacity(40_000.0, shares), rates_from_capacity(15_400.0, shares)
    assert fast == [10_000.0, 20_000.0]
    assert slow == [3_800.0, 7_700.0]
    assert [f / s for f, s in zip(fast, slow, strict=True)] == pytest.approx([2.6, 2.6], rel=0.02)


@pytest.mark.parametrize("share", ["0", "1", "1.5", "-0.2"])
def test_a_share_outside_zero_to_one_is_refused_before_any_server_starts(
    share: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--capacity-shares", share, "--", "off"])
    assert exited.value.code == 2
    assert "each share must be between 0 and 1" in capsys.readouterr().err
