"""The HTML page of a drift report: the verdicts and, per feature, a chart of the reference
distribution against the window's (inline SVG, no script and nothing fetched at run time).

Numeric features are drawn on the reference's bins (adjacent bins grouped down to at most
``MAX_BARS``), categorical ones per category (the most frequent ``MAX_BARS``). Bars are shares
of each side's total, so windows of any size compare with the reference.

>>> chart_svg("x", ["a", "b"], [0.5, 0.5], [0.2, 0.8]).count("<rect")
4
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Sequence

import numpy as np

from control_plane.drift import SCORE, FeatureDriftResult
from control_plane.drift.projection import on_profile_bins
from control_plane.monitoring.drift_models import DriftReport
from modelyard.sketches import (
    CategoricalProfile,
    CategoricalSketch,
    FeatureProfile,
    FeatureSketch,
    NumericProfile,
    NumericSketch,
    ReferenceProfile,
    WindowSketches,
)

MAX_BARS = 30
WIDTH, HEIGHT, PAD = 640, 200, 24
REFERENCE_COLOUR, CURRENT_COLOUR = "#4c78a8", "#f58518"


def _shares(counts: Sequence[float]) -> list[float]:
    total = float(sum(counts))
    return [float(c) / total if total else 0.0 for c in counts]


def _grouped(labels: list[str], counts: np.ndarray, groups: int) -> tuple[list[str], np.ndarray]:
    if len(counts) <= groups:
        return labels, counts
    bounds = np.linspace(0, len(counts), groups + 1).astype(int)
    sums = np.array([counts[a:b].sum() for a, b in itertools.pairwise(bounds)])
    return [labels[a] for a in bounds[:-1]], sums


def series(
    profile: FeatureProfile, sketch: FeatureSketch | None
) -> tuple[list[str], list[float], list[float]]:
    """Bar labels, reference shares and current shares of one feature."""
    if isinstance(profile, NumericProfile):
        current = np.zeros(len(profile.edges) + 1)
        if isinstance(sketch, NumericSketch):
            current, _ = on_profile_bins(profile, sketch)
        labels = ["< " + f"{profile.edges[0]:.4g}"] + [f"{e:.4g}" for e in profile.edges]
        reference = np.asarray(profile.counts, dtype=np.float64)
        keys, ref = _grouped(labels, reference, MAX_BARS)
        _, cur = _grouped(labels, np.asarray(current, dtype=np.float64), MAX_BARS)
        return keys, _shares(ref.tolist()), _shares(cur.tolist())
    assert isinstance(profile, CategoricalProfile)
    counts = sketch.counts if isinstance(sketch, CategoricalSketch) else {}
    names = sorted(set(profile.counts) | set(counts), key=lambda k: -profile.counts.get(k, 0))
    names = names[:MAX_BARS]
    ref_total = profile.n or 1
    cur_total = (sketch.n if isinstance(sketch, CategoricalSketch) else 0) or 1
    return (
        names,
        [profile.counts.get(k, 0) / ref_total for k in names],
        [counts.get(k, 0) / cur_total for k in names],
    )


def chart_svg(title: str, labels: list[str], reference: list[float], current: list[float]) -> str:
    """Paired bars (reference, current) per label, as one ``<svg>`` element."""
    top = max([*reference, *current, 1e-9])
    slot = (WIDTH - 2 * PAD) / max(len(labels), 1)
    bar = max(slot / 2 - 1, 0.5)
    parts = [
        f'<svg class="chart" data-feature="{html.escape(title)}" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{html.escape(title)}: reference vs current">'
    ]
    for i, (label, ref, cur) in enumerate(zip(labels, reference, current, strict=True)):
        x = PAD + i * slot
        for offset, value, colour, side in (
            (0, ref, REFERENCE_COLOUR, "reference"),
            (bar, cur, CURRENT_COLOUR, "current"),
        ):
            h = (HEIGHT - 2 * PAD) * value / top
            parts.append(
                f'<rect class="{side}" x="{x + offset:.1f}" y="{HEIGHT - PAD - h:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{html.escape(label)} {side}: {value:.3f}</title></rect>"
            )
    parts.append(
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'stroke="#333"/></svg>'
    )
    return "".join(parts)


def _row(result: FeatureDriftResult) -> str:
    score = "-" if result.score is None else f"{result.score:.4g}"
    verdict = "drifted" if result.drifted else "ok"
    return (
        f"<tr class='{verdict}'><td>{html.escape(result.feature)}</td><td>{result.kind}</td>"
        f"<td>{result.method.value}</td><td>{score}</td><td>{result.threshold:.4g}</td>"
        f"<td>{verdict}</td><td>{result.reference_size}</td><td>{result.current_size}</td></tr>"
    )


def render_report(report: DriftReport, reference: ReferenceProfile, window: WindowSketches) -> str:
    """The whole page."""
    result = report.result
    judged = [*result.features, *([result.score] if result.score else [])]
    charts = []
    for item in judged:
        # NOTE: the version's reference now, which may have been replaced since the report
        # (a feature it no longer has raised KeyError: a 500): such a feature gets no chart
        profile = reference.score if item.feature == SCORE else reference.features.get(item.feature)
        sketch = window.score if item.feature == SCORE else window.features.get(item.feature)
        if profile is None:
            if item.feature != SCORE:
                charts.append(
                    f"<section><h3>{html.escape(item.feature)}</h3><p>No chart: the version's "
                    "reference profile no longer has this feature (it was replaced after this "
                    "report).</p></section>"
                )
            continue
        labels, ref, cur = series(profile, sketch)
        charts.append(
            f"<section><h3>{html.escape(item.feature)} ({item.method.value}, "
            f"{'drifted' if item.drifted else 'ok'})</h3>"
            f"{chart_svg(item.feature, labels, ref, cur)}</section>"
        )
    verdict = "DRIFTED" if report.drifted else "no dataset drift"
    title = f"Drift report #{report.id}: {report.model} v{report.version}"
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 8px}tr.drifted{background:#fde0dc}"
        f".legend span{{display:inline-block;width:12px;height:12px;margin:0 4px}}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>"
        f"<p id='verdict'>{verdict}: {result.drifted_features} drifted, share "
        f"{result.share:.2f} (threshold {result.drift_share:.2f}); window "
        f"{report.window_start.isoformat()} .. {report.window_end.isoformat()}, "
        f"{report.rows} rows</p>"
        f"<p class='legend'><span style='background:{REFERENCE_COLOUR}'></span>reference"
        f"<span style='background:{CURRENT_COLOUR}'></span>current window</p>"
        "<table><tr><th>feature</th><th>kind</th><th>method</th><th>p-value / distance</th>"
        "<th>threshold</th><th>verdict</th><th>reference n</th><th>current n</th></tr>"
        + "".join(_row(r) for r in judged)
        + "</table>"
        + "".join(charts)
        + "</body></html>"
    )


__all__ = ["chart_svg", "render_report", "series"]
