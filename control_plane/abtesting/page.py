"""The HTML page of one test: variant metrics over time and the lift with its interval.

Self-contained: inline SVG drawn here from the report, no script, style sheet or font is
fetched (the control plane may run without internet). Every chart carries ``data-*``
attributes with the numbers it was drawn from, so a browser test can check the page against
the live report.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from control_plane.abtesting.models import TestReport, TimePoint

_W, _H, _PAD = 640, 220, 40
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def render_page(report: TestReport) -> str:
    """The page of ``report`` (a complete HTML document).

    >>> import datetime as dt
    >>> from control_plane.abtesting.models import (ABTest, Metric, MetricKind,
    ...     TestDefinition, TestReport, TestStatus, Variant)
    >>> from control_plane.abtesting.recommendation import Action, MetricResult, Reason
    >>> from control_plane.abtesting.recommendation import Recommendation
    >>> from modelyard.enums import ModelVariant
    >>> now = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)
    >>> d = TestDefinition(model="churn", variants=(
    ...     Variant(version=1, weight=0.5, role=ModelVariant.CONTROL),
    ...     Variant(version=2, weight=0.5, role=ModelVariant.TREATMENT)),
    ...     primary_metric=Metric(name="conversion", kind=MetricKind.CONVERSION))
    >>> test = ABTest(id="t1", definition=d, status=TestStatus.RUNNING, created_at=now,
    ...               created_by="me", phase_started_at=now)
    >>> rec = Recommendation(action=Action.KEEP_COLLECTING, reason=Reason.MINIMUM_SAMPLE,
    ...                      detail="no data", primary=MetricResult(name="conversion"))
    >>> html = render_page(TestReport(test=test, variants=(), recommendation=rec))
    >>> html.startswith("<!DOCTYPE html>"), "keep_collecting" in html
    (True, True)
    """
    test = report.test
    d = test.definition
    rec = report.recommendation
    rows = "".join(
        f"<tr><td>{v.version}</td><td>{v.role.value}</td><td>{v.weight:g}</td>"
        f"<td>{v.requests}</td><td>{v.outcomes}</td>"
        + "".join(
            f"<td>{_fmt(m.mean.estimate) if m.mean else '-'}"
            f"{f' [{_fmt(m.mean.low)}, {_fmt(m.mean.high)}]' if m.mean else ''}</td>"
            for m in v.metrics
        )
        + "</tr>"
        for v in report.variants
    )
    metric_heads = "".join(
        f"<th>{escape(m.name)}</th>"
        for m in (d.primary_metric, *d.guardrail_metrics, *d.secondary_metrics)
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>A/B test {escape(test.id)} · {escape(test.model)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px}</style></head><body>"
        f"<h1>A/B test {escape(test.id)}: model {escape(test.model)}</h1>"
        f"<p>status <b>{test.status.value}</b>, mode {d.mode.value}, alpha {d.alpha}, "
        f"minimum sample {d.minimum_sample_size}{_remaining(report.days_to_minimum_sample)}</p>"
        f"<p id='recommendation' data-action='{rec.action.value}'>"
        f"Recommendation: <b>{rec.action.value}</b> ({rec.reason.value}) — "
        f"{escape(rec.detail)}</p>"
        "<table id='variants'><tr><th>version</th><th>role</th><th>weight</th>"
        f"<th>requests</th><th>outcomes</th>{metric_heads}</tr>{rows}</table>"
        f"<h2>{escape(d.primary_metric.name)} over time</h2>"
        + _means_chart(report.series)
        + "<h2>Lift (treatment minus control) with confidence interval</h2>"
        + _lift_chart(report.series)
        + "</body></html>"
    )


def _remaining(days: float | None) -> str:
    if days is None:
        return " (no traffic yet)"
    return " (reached)" if days == 0 else f" (about {days:.3g} more days at the current traffic)"


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _scale(values: Sequence[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    return low, high


def _xy(i: int, count: int, value: float, low: float, high: float) -> tuple[float, float]:
    x = _PAD + (_W - 2 * _PAD) * (i / max(count - 1, 1))
    y = _H - _PAD - (_H - 2 * _PAD) * ((value - low) / (high - low))
    return round(x, 1), round(y, 1)


def _svg(chart_id: str, body: str, low: float, high: float, points: int) -> str:
    axis = (
        f"<line x1='{_PAD}' y1='{_H - _PAD}' x2='{_W - _PAD}' y2='{_H - _PAD}' stroke='#888'/>"
        f"<text x='2' y='{_PAD}' font-size='10'>{_fmt(high)}</text>"
        f"<text x='2' y='{_H - _PAD}' font-size='10'>{_fmt(low)}</text>"
    )
    return (
        f"<svg id='{chart_id}' data-points='{points}' width='{_W}' height='{_H}' "
        f"xmlns='http://www.w3.org/2000/svg'>{axis}{body}</svg>"
    )


def _means_chart(series: Sequence[TimePoint]) -> str:
    keys = sorted({k for p in series for k in p.means})
    values = [v for p in series for v in p.means.values() if v is not None]
    if not values:
        return "<p id='means-chart-empty'>no observations yet</p>"
    low, high = _scale(values)
    body = ""
    for colour, key in zip(_COLOURS, keys, strict=False):
        points = [
            _xy(i, len(series), p.means[key], low, high)  # type: ignore[arg-type]
            for i, p in enumerate(series)
            if p.means.get(key) is not None
        ]
        coords = " ".join(f"{x},{y}" for x, y in points)
        last = series[-1].means.get(key)
        body += (
            f"<polyline class='variant' data-version='{escape(key)}' "
            f"data-last='{last if last is not None else ''}' points='{coords}' fill='none' "
            f"stroke='{colour}' stroke-width='2'/>"
            f"<text x='{_W - _PAD + 2}' y='{points[-1][1] if points else 0}' font-size='10' "
            f"fill='{colour}'>v{escape(key)}</text>"
        )
    return _svg("means-chart", body, low, high, len(series))


def _lift_chart(series: Sequence[TimePoint]) -> str:
    lifts = [(i, p.lift) for i, p in enumerate(series) if p.lift is not None]
    if not lifts:
        return "<p id='lift-chart-empty'>not enough observations for a lift yet</p>"
    low, high = _scale([0.0, *(v for _, lift in lifts for v in (lift.low, lift.high))])
    count = len(series)
    upper = [_xy(i, count, lift.high, low, high) for i, lift in lifts]
    lower = [_xy(i, count, lift.low, low, high) for i, lift in reversed(lifts)]
    band = " ".join(f"{x},{y}" for x, y in upper + lower)
    line = " ".join(f"{x},{y}" for x, y in (_xy(i, count, v.estimate, low, high) for i, v in lifts))
    zero = _xy(0, count, 0.0, low, high)[1]
    final = lifts[-1][1]
    body = (
        f"<polygon class='ci-band' points='{band}' fill='#1f77b4' fill-opacity='0.2'/>"
        f"<line x1='{_PAD}' y1='{zero}' x2='{_W - _PAD}' y2='{zero}' stroke='#444' "
        "stroke-dasharray='4'/>"
        f"<polyline class='lift' data-estimate='{final.estimate}' data-low='{final.low}' "
        f"data-high='{final.high}' points='{line}' fill='none' stroke='#1f77b4' "
        "stroke-width='2'/>"
    )
    return _svg("lift-chart", body, low, high, count)
