"""The cron parser: grammar, errors, and next_after against a brute-force minute scan."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from control_plane.scheduler.cron import CronExpression
from control_plane.scheduler.models import Schedule
from modelyard.errors import InvalidArgument

T0 = dt.datetime(2026, 12, 4, 3, 47, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("* * * * *", "2026-12-04T03:48:00+00:00"),
        ("0 * * * *", "2026-12-04T04:00:00+00:00"),
        ("@daily", "2026-12-05T00:00:00+00:00"),
        ("0 0 * * 7", "2026-12-06T00:00:00+00:00"),
        ("0 0 * * sun", "2026-12-06T00:00:00+00:00"),
        ("5,10 4 * * *", "2026-12-04T04:05:00+00:00"),
        ("0 0 29 2 *", "2028-02-29T00:00:00+00:00"),
        ("0 12 1 * mon", "2026-12-07T12:00:00+00:00"),  # either day field (Vixie cron)
        ("@yearly", "2027-01-01T00:00:00+00:00"),
        ("10-20/5 3 * * *", "2026-12-05T03:10:00+00:00"),
    ],
)
def test_next_after(text: str, expected: str) -> None:
    assert CronExpression.parse(text).next_after(T0).isoformat() == expected


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("* * * *", "5 fields"),
        ("60 * * * *", "minute"),
        ("* 24 * * *", "hour"),
        ("* * 0 * *", "day-of-month"),
        ("* * * 13 *", "month"),
        ("* * * * 8", "day-of-week"),
        ("*/0 * * * *", "minute"),
        ("x * * * *", "minute"),
        ("5-1 * * * *", "minute"),
    ],
)
def test_invalid_expressions_name_the_field(text: str, named: str) -> None:
    with pytest.raises(InvalidArgument, match=named):
        CronExpression.parse(text)


def test_an_expression_that_never_matches_is_an_error() -> None:
    with pytest.raises(InvalidArgument, match="never matches"):
        CronExpression.parse("0 0 31 2 *").next_after(T0)


def _matches(cron: CronExpression, moment: dt.datetime) -> bool:
    day_ok = cron._day_matches(moment.date())
    return (
        moment.minute in cron.minutes
        and moment.hour in cron.hours
        and moment.month in cron.months
        and day_ok
    )


FIELD = st.one_of(
    st.just("*"),
    st.integers(0, 5).map(str),
    st.integers(1, 6).map(lambda n: f"*/{n}"),
    st.tuples(st.integers(0, 3), st.integers(4, 6)).map(lambda p: f"{p[0]}-{p[1]}"),
)


@settings(max_examples=60, deadline=None)
@given(
    minute=FIELD,
    hour=FIELD,
    weekday=st.sampled_from(["*", "1", "mon-fri", "0,6"]),
    offset=st.integers(0, 60 * 24 * 14),
)
def test_next_after_is_the_first_matching_minute(
    minute: str, hour: str, weekday: str, offset: int
) -> None:
    cron = CronExpression.parse(f"{minute} {hour} * * {weekday}")
    start = T0 + dt.timedelta(minutes=offset)
    found = cron.next_after(start)
    assert found > start
    assert _matches(cron, found)
    moment = start.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    while moment < found:  # no earlier minute matches
        assert not _matches(cron, moment)
        moment += dt.timedelta(minutes=1)


def test_interval_schedules_stay_on_their_grid() -> None:
    schedule = Schedule.parse("every 90s")
    due = T0
    assert schedule.next_due(due, now=due) == due + dt.timedelta(seconds=90)
    late = due + dt.timedelta(seconds=200)
    assert schedule.next_due(due, now=late) == due + dt.timedelta(seconds=270)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("every 0s", "at least 1 ms"),
        # accepted before: a zero timedelta, and every tick failed dividing by it
        ("every 0.0000001s", "at least 1 ms"),
        ("every", "5 fields"),
        ("every 5 weeks", "5 fields"),
        ("daily", "5 fields"),
        # accepted before, then every scheduler tick raised and no job of the replica ran
        ("0 0 30 2 *", "never matches"),
        ("0 0 31 4 *", "never matches"),
        ("every 9999999d", "at most 366 days"),
        ("every 367d", "at most 366 days"),
    ],
)
def test_invalid_schedules(text: str, named: str) -> None:
    with pytest.raises(InvalidArgument, match=named):
        Schedule.parse(text)


@pytest.mark.parametrize("text", ["0 0 29 2 *", "every 366d", "@yearly"])
def test_rare_schedules_are_valid(text: str) -> None:
    schedule = Schedule.parse(text)
    assert schedule.first_due(T0) > T0
