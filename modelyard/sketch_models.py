"""Shapes of the drift sketches and reference profiles, and their JSON codec (contract 5).

:mod:`modelyard.sketches` builds and merges them and re-exports everything here; import from
there. ``reference.json`` is a :class:`ReferenceProfile`; the sketch endpoint answers a
:class:`SketchesAnswer`. Decoders are built once; a decoded profile is checked for consistent
bins before anyone bins on it.

>>> profile = decode_profile(b'{"rows": 2, "features": {"c": {"type": "categorical", "n": 2,'
...                          b' "counts": {"a": 2}}}}')
>>> profile.features["c"].counts
{'a': 2}
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import msgspec

from modelyard.errors import InvalidArgument

FORMAT = 1
"""Version of the reference.json / sketch format."""

REFERENCE_FILENAME = "reference.json"
"""The reference profile's file in a version directory (next to ``model.onnx``)."""


class NumericProfile(msgspec.Struct, kw_only=True, frozen=True, tag="numeric"):
    """The reference distribution of a numeric column.

    Attributes:
        n: finite reference values; missing: NaN/inf/None ones (left out, as Evidently does).
        edges: strictly increasing bin edges (:mod:`modelyard.binning` for the bin layout).
        exact: the edges are every distinct reference value (KS and chi-square are exact).
        counts: reference values per bin, ``len(edges) + 1`` of them.
        sums: sum of the reference values in each bin.
        mean, std: of the finite values; ``std`` is the population std (ddof 0) that
            Evidently norms the Wasserstein distance with.
        min, max: of the finite values (the first and last edge).
    """

    n: int
    missing: int = 0
    edges: tuple[float, ...]
    exact: bool
    counts: tuple[int, ...]
    sums: tuple[float, ...]
    mean: float
    std: float
    min: float
    max: float


class CategoricalProfile(msgspec.Struct, kw_only=True, frozen=True, tag="categorical"):
    """The reference frequencies of a categorical (or binary) column.

    Attributes:
        n: present values; missing: None/NaN ones.
        counts: category key -> reference count (:func:`modelyard.binning.category_keys`).
        other: reference values of categories beyond the profile's cap.
    """

    n: int
    missing: int = 0
    counts: dict[str, int]
    other: int = 0


FeatureProfile = NumericProfile | CategoricalProfile


class ReferenceProfile(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Per-feature reference distributions of a model version (``reference.json``).

    Attributes:
        format: the file format version (:data:`FORMAT`).
        rows: rows of the reference dataset.
        features: input feature name -> its profile.
        score: the profile of the prediction score, when the reference carries one.
    """

    format: int = FORMAT
    rows: int
    features: dict[str, FeatureProfile]
    score: FeatureProfile | None = None


class LogHistogram(msgspec.Struct, kw_only=True, frozen=True):
    """Reference-free numeric sketch: counts in fixed log buckets (1 % relative width).

    River's ``sketch.Histogram`` merges by fusing nearest bins (order-dependent, not
    associative) and ``stats.Quantile`` does not merge; fixed buckets merge exactly.
    """

    positive: dict[int, int] = {}
    negative: dict[int, int] = {}
    zeros: int = 0


class NumericSketch(msgspec.Struct, kw_only=True, frozen=True, tag="numeric"):
    """Served values of a numeric column in one window.

    Attributes:
        n, missing, min, max, total: finite values, missing ones, their range and sum.
        edges, exact: the reference bins the counts are on (empty: no reference).
        counts, sums: values and value sums per reference bin.
        off_grid: values that are no reference value (exact edges only).
        on_edges: per bin, values equal to the bin's left edge, i.e. to a reference value
            (exact edges only; the rest of the bin's values lie inside it).
        histogram: the log-bucket histogram when there is no reference.
    """

    n: int = 0
    missing: int = 0
    min: float | None = None
    max: float | None = None
    total: float = 0.0
    edges: tuple[float, ...] = ()
    exact: bool = False
    counts: tuple[int, ...] = ()
    sums: tuple[float, ...] = ()
    off_grid: int = 0
    on_edges: tuple[int, ...] = ()
    histogram: LogHistogram | None = None


class CategoricalSketch(msgspec.Struct, kw_only=True, frozen=True, tag="categorical"):
    """Served values of a categorical column in one window.

    Attributes:
        n, missing: present and missing values.
        counts: category key -> count.
        other: values of new categories past a worker's cap (bounded memory under
            high-cardinality input; the cap applies when counting, never when merging).
    """

    n: int = 0
    missing: int = 0
    counts: dict[str, int] = {}
    other: int = 0


FeatureSketch = NumericSketch | CategoricalSketch


class WindowSketches(msgspec.Struct, kw_only=True, frozen=True):
    """Sketches of every input feature and the prediction score of one version and window.

    Attributes:
        model, version: the served model version.
        start, end: the window (UTC), ``start`` inclusive; merged windows span the union.
        rows: rows sketched; requests: requests they came from.
        served: requests the version answered in the window (``requests / served`` is the
            share sketched: below 1 when the server samples).
        features: input feature name -> sketch.
        score: sketch of the prediction score (``None`` when the model gives none).
    """

    model: str
    version: str
    start: dt.datetime
    end: dt.datetime
    rows: int = 0
    requests: int = 0
    served: int = 0
    features: dict[str, FeatureSketch] = {}
    score: FeatureSketch | None = None


class SketchesAnswer(WindowSketches, kw_only=True, frozen=True):
    """The answer of ``GET /v2/models/{m}/versions/{v}/sketches`` (docs/http-api.md).

    Every worker's windows overlapping the range, merged (``rows == 0`` when the version
    answered nothing in it), plus how many worker processes took part. It *is* a
    :class:`WindowSketches` (one more field), so :func:`decode_windows` reads it too.

    Attributes:
        workers_applied: the worker processes whose sketches are merged in.
    """

    workers_applied: int = 0


class SketchMismatch(InvalidArgument):
    """Two sketches cannot be merged (different kinds, bins or model versions)."""


_PROFILE_DECODER = msgspec.json.Decoder(ReferenceProfile)
_WINDOW_DECODER = msgspec.json.Decoder(WindowSketches)
_ANSWER_DECODER = msgspec.json.Decoder(SketchesAnswer)
_ENCODER = msgspec.json.Encoder()


def encode(value: ReferenceProfile | WindowSketches | SketchesAnswer) -> bytes:
    """JSON of a profile, window sketches or a sketch-endpoint answer."""
    return _ENCODER.encode(value)


def decode_answer(data: bytes) -> SketchesAnswer:
    """The sketch endpoint's answer from JSON (what the control plane reads).

    Raises:
        InvalidArgument: malformed JSON or not such an answer.
    """
    try:
        return _ANSWER_DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidArgument(f"malformed sketches answer: {exc}") from None


def decode_windows(data: bytes) -> WindowSketches:
    """Window sketches from JSON (as the sketch endpoint answers).

    Raises:
        InvalidArgument: malformed JSON or not a window-sketches object.
    """
    try:
        return _WINDOW_DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidArgument(f"malformed window sketches: {exc}") from None


def decode_profile(data: bytes) -> ReferenceProfile:
    """A reference profile from ``reference.json`` bytes, checked for consistency.

    Raises:
        InvalidArgument: malformed JSON, an unknown format, or bins that do not fit the edges.
    """
    try:
        profile = _PROFILE_DECODER.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidArgument(f"malformed reference profile: {exc}") from None
    if profile.format != FORMAT:
        raise InvalidArgument(f"reference profile format {profile.format} is not {FORMAT}")
    for name, feature in [*profile.features.items(), ("score", profile.score)]:
        if isinstance(feature, NumericProfile):
            _check_numeric(name, feature)
    return profile


def read_reference(version_dir: Path) -> ReferenceProfile | None:
    """The ``reference.json`` of a version directory, or ``None`` when it has none.

    Raises:
        InvalidArgument: the file exists but is unreadable or malformed (the reason named).
    """
    path = version_dir / REFERENCE_FILENAME
    # NOTE: the message names the file within the repository, never the server's own path.
    where = f"{version_dir.parent.name}/{version_dir.name}/{REFERENCE_FILENAME}"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InvalidArgument(f"{where}: cannot be read: {exc.strerror}") from None
    try:
        return decode_profile(data)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{where}: {exc}") from None


def _check_numeric(name: str, p: NumericProfile) -> None:
    width = len(p.edges) + 1
    increasing = all(x < y for x, y in zip(p.edges, p.edges[1:], strict=False))
    finite = all(math.isfinite(e) for e in p.edges)
    if not p.edges or not increasing or not finite:
        raise InvalidArgument(f"reference feature {name!r}: edges must be finite and increasing")
    if len(p.counts) != width or len(p.sums) != width or sum(p.counts) != p.n:
        raise InvalidArgument(
            f"reference feature {name!r}: counts/sums need {width} bins summing to n={p.n}"
        )
