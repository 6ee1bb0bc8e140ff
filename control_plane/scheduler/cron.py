"""A small five-field cron parser: ``minute hour day-of-month month day-of-week`` in UTC.

Why not a library: croniter is unmaintained since 2024 and APScheduler brings a whole
scheduler we do not want (ours holds a database lease); the grammar below is ~100 lines and
fully tested. Supported: ``*``, numbers, ranges ``a-b``, steps ``*/n`` and ``a-b/n``, lists
``a,b,c``, three-letter month and day names, and the macros ``@hourly``, ``@daily``,
``@weekly`` (Sunday 00:00), ``@monthly``, ``@yearly``. Day of week is 0-7 (0 and 7 are
Sunday). As in Vixie cron, when both day fields are restricted a day matches either.

>>> import datetime as dt
>>> start = dt.datetime(2026, 12, 4, 3, 47, tzinfo=dt.UTC)
>>> CronExpression.parse("*/15 * * * *").next_after(start).isoformat()
'2026-12-04T04:00:00+00:00'
>>> CronExpression.parse("@weekly").next_after(start).isoformat()
'2026-12-06T00:00:00+00:00'
>>> CronExpression.parse("30 2 1 jan,jul *").next_after(start).isoformat()
'2027-01-01T02:30:00+00:00'
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from modelyard.errors import InvalidArgument

_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# (name, lowest, highest, names starting at ``lowest``)
_FIELDS = (
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day-of-month", 1, 31, None),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _DAYS),
)
_SEARCH_DAYS = 366 * 5  # Feb 29 on a given weekday can take years; beyond that: no match


@dataclass(frozen=True)
class CronExpression:
    """A parsed cron expression; :meth:`next_after` gives its next firing time (UTC)."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        """Parse ``text``.

        >>> sorted(CronExpression.parse("0 9-17/4 * * mon-fri").hours)
        [9, 13, 17]

        Raises:
            InvalidArgument: the expression is malformed (the message names the field).
        """
        expanded = _MACROS.get(text.strip().lower(), text)
        parts = expanded.split()
        if len(parts) != len(_FIELDS):
            raise InvalidArgument(
                f"cron expression {text!r} needs 5 fields "
                "(minute hour day-of-month month day-of-week) or a macro like @weekly"
            )
        values = [
            _parse_field(text, part, field) for part, field in zip(parts, _FIELDS, strict=True)
        ]
        weekdays = frozenset(0 if d == 7 else d for d in values[4])
        return cls(
            text=text,
            minutes=values[0],
            hours=values[1],
            days=values[2],
            months=values[3],
            weekdays=weekdays,
            any_day=parts[2] in ("*", "?"),
            any_weekday=parts[4] in ("*", "?"),
        )

    def _day_matches(self, day: dt.date) -> bool:
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first matching minute strictly after ``moment`` (aware; returned in UTC).

        Raises:
            InvalidArgument: the expression never matches (e.g. ``0 0 31 2 *``).
        """
        start = moment.astimezone(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        day = start.date()
        for _ in range(_SEARCH_DAYS):
            if day.month in self.months and self._day_matches(day):
                first = start.time() if day == start.date() else dt.time(0, 0)
                found = self._first_time(first)
                if found is not None:
                    return dt.datetime.combine(day, found, tzinfo=dt.UTC)
            day += dt.timedelta(days=1)
        raise InvalidArgument(f"cron expression {self.text!r} never matches")

    def _first_time(self, earliest: dt.time) -> dt.time | None:
        for hour in sorted(h for h in self.hours if h >= earliest.hour):
            low = earliest.minute if hour == earliest.hour else 0
            minutes = [m for m in sorted(self.minutes) if m >= low]
            if minutes:
                return dt.time(hour, minutes[0])
        return None


def _parse_field(
    text: str, part: str, field: tuple[str, int, int, list[str] | None]
) -> frozenset[int]:
    name, low, high, names = field
    values: set[int] = set()
    for item in part.lower().split(","):
        values.update(_parse_item(text, item, name, low, high, names))
    return frozenset(values)


def _parse_item(
    text: str, item: str, name: str, low: int, high: int, names: list[str] | None
) -> range:
    span, _, step_text = item.partition("/")
    step = _number(text, step_text, name, names=None, base=0) if step_text else 1
    if span in ("*", "?"):
        first, last = low, high
    elif "-" in span:
        a, _, b = span.partition("-")
        first = _number(text, a, name, names, low)
        last = _number(text, b, name, names, low)
    else:
        first = _number(text, span, name, names, low)
        last = high if step_text else first
    if step < 1 or not low <= first <= last <= high:
        raise InvalidArgument(
            f"cron expression {text!r}: {name} field {item!r} is outside {low}-{high}"
        )
    return range(first, last + 1, step)


def _number(text: str, token: str, name: str, names: list[str] | None, base: int) -> int:
    if names is not None and token in names:
        return names.index(token) + base
    if not token.isdigit():
        raise InvalidArgument(f"cron expression {text!r}: {name} value {token!r} is not valid")
    return int(token)


__all__ = ["CronExpression"]
