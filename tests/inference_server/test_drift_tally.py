"""The server's running tallies equal sketching each batch and merging (hypothesis), and the
book closes windows, takes late requests and counts sampled-out ones on a simulated clock."""

from __future__ import annotations

import datetime as dt
import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inference_server.drift.book import SketchBook
from inference_server.drift.tally import WindowTally
from modelyard.models import ModelSignature, TensorSpec
from modelyard.settings import ServerSettings
from modelyard.sketches import (
    FeatureProfile,
    NumericSketch,
    WindowSketches,
    build_reference_profile,
    decode_windows,
    encode,
    merge_all,
    sketch_column,
)

T0 = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)
RNG = np.random.default_rng(3)
PROFILE = build_reference_profile(
    {
        "exact": np.tile(np.arange(-20, 20) / 4, 75),
        "quantiles": RNG.normal(0, 10, 3000),
        "colour": RNG.choice(["a", "b", "c"], 3000),
    },
    score=RNG.uniform(size=3000),
)
PROFILES: dict[str | None, FeatureProfile] = {**PROFILE.features, None: PROFILE.score}  # type: ignore[dict-item]

values = st.one_of(
    st.floats(-1e6, 1e6, width=32),
    st.sampled_from([0.0, -0.0, 1e-13, 0.25, -1.5, math.nan, math.inf, -math.inf]),
    st.sampled_from([1e308, -1e308, 1e100, 9.9e99]),  # missing in FP64 (and inf in FP32)
    st.integers(-20, 20).map(lambda i: i / 4),
)
row = st.tuples(values, values, values, st.sampled_from(["a", "b", "d", "e"]), values)
batches = st.lists(st.lists(row, min_size=1, max_size=12), min_size=1, max_size=5)


def _columns(batch: list[tuple[Any, ...]], dtype: type) -> list[tuple[str | None, np.ndarray]]:
    cols = list(zip(*batch, strict=True))
    with np.errstate(over="ignore"):  # 1e308 is inf in FP32: missing either way
        return _typed(cols, dtype)


def _typed(cols: list[tuple[Any, ...]], dtype: type) -> list[tuple[str | None, np.ndarray]]:
    return [
        ("exact", np.array(cols[0], dtype=dtype)),
        ("quantiles", np.array(cols[1], dtype=dtype)),
        ("plain", np.array(cols[2], dtype=dtype)),  # no reference: log buckets
        ("colour", np.array(cols[3], dtype=object)),
        (None, np.array(cols[4], dtype=dtype)),  # the score
    ]


def _sketched(batch: list[tuple[Any, ...]], dtype: type) -> WindowSketches:
    sketches = {name: sketch_column(v, PROFILES.get(name)) for name, v in _columns(batch, dtype)}
    score = sketches.pop(None)
    return WindowSketches(
        model="m",
        version="1",
        start=T0,
        end=T0 + dt.timedelta(minutes=1),
        rows=len(batch),
        requests=1,
        served=1,
        features=sketches,  # type: ignore[arg-type]
        score=score,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=60)
@given(batches=batches)
def test_a_tally_equals_the_merge_of_its_batches_sketches(
    dtype: type, batches: list[list[tuple[Any, ...]]]
) -> None:
    tally = WindowTally("m", "1", T0, T0 + dt.timedelta(minutes=1))
    for batch in batches:
        tally.add(_columns(batch, dtype), PROFILES, cap=1000)
        tally.served += 1
    assert tally.sketches() == merge_all([_sketched(b, dtype) for b in batches])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int64])
def test_reference_bins_of_wide_and_narrow_profiles_equal_sketch_column(dtype: type) -> None:
    """The block-wide bin search: 1,000 exact edges, one edge, quantile edges, in one block."""
    rng = np.random.default_rng(16)
    reference = build_reference_profile(
        {
            "wide": np.tile(np.arange(1000) - 500.0, 5),
            "single": np.full(5000, 2.0),
            "quantiles": rng.normal(0, 100, 5000),
        }
    )
    profiles: dict[str | None, FeatureProfile] = {n: p for n, p in reference.features.items()}
    tally = WindowTally("m", "1", T0, T0 + dt.timedelta(minutes=1))
    expected = []
    for _ in range(3):
        raw = {
            "wide": np.concatenate([np.arange(-520.0, 520.0, 0.5), rng.normal(0, 300, 200)]),
            "single": np.concatenate([np.full(40, 2.0), rng.normal(2, 1, 2240)]),
            "quantiles": rng.normal(0, 120, 2280),
        }
        if np.dtype(dtype).kind == "f":
            for column in raw.values():
                column[rng.random(column.size) < 0.03] = math.nan
                column[:3] = [math.inf, -math.inf, -0.0]
        columns: list[tuple[str, np.ndarray]] = [
            (name, np.round(v).astype(dtype) if np.dtype(dtype).kind == "i" else v.astype(dtype))
            for name, v in raw.items()
        ]
        tally.add(columns, profiles, cap=1000)
        tally.served += 1
        expected.append(
            WindowSketches(
                model="m",
                version="1",
                start=T0,
                end=T0 + dt.timedelta(minutes=1),
                rows=len(columns[0][1]),
                requests=1,
                served=1,
                features={name: sketch_column(v, profiles[name]) for name, v in columns},
            )
        )
    assert tally.sketches() == merge_all(expected)


def _handle() -> Any:
    """A stand-in with the attributes the book reads from a LoadedVersion."""
    signature = ModelSignature(
        inputs=(TensorSpec(name="input", datatype="FP32", shape=(-1, 2)),),
        outputs=(TensorSpec(name="prediction", datatype="FP32", shape=(-1, 1)),),
        feature_names=("a", "b"),
    )
    return _Version(signature)


class _Version:  # hashable by identity, as a LoadedVersion
    name = "m"
    version_str = "1"
    description = SimpleNamespace(task="regression")
    reference = None

    def __init__(self, signature: ModelSignature) -> None:
        self.signature = signature


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_windows_close_late_requests_merge_and_sampled_out_ones_count() -> None:
    clock = _Clock(6000.0)  # the start of window 100 (60 s windows)
    book = SketchBook(ServerSettings(sketch_sample_rate=0.5), clock=clock)
    handle = _handle()
    x = np.array([[1.0, 2.0]], np.float32)
    y = np.array([[0.5]], np.float32)
    for _ in range(4):
        book.observe(handle, [x], [y])
    await book.flush()
    clock.now += 60.0  # window 101: the next flush closes window 100
    book.observe(handle, [x * 2], [y])
    book.observe(handle, [x * 2], [y])
    await book.flush()
    clock.now -= 60.0  # the clock stepped back: a late request for the closed window
    book.observe(handle, [x * 3], [y])
    book.observe(handle, [x * 3], [y])
    old = await book.read("m", "1", None, dt.datetime.fromtimestamp(6060.0, dt.UTC))
    new = await book.read("m", "1", dt.datetime.fromtimestamp(6060.0, dt.UTC), None)
    both = await book.read("m", "1", None, None)
    assert old is not None
    assert new is not None
    assert both is not None
    assert (old.served, old.requests, old.rows) == (6, 3, 3)
    assert (new.served, new.requests, new.rows) == (2, 1, 1)
    assert (both.served, both.requests) == (8, 4)
    assert isinstance(old.features["a"], NumericSketch)
    assert old.features["a"].max == 3.0
    assert both.start == dt.datetime.fromtimestamp(6000.0, dt.UTC)
    assert await book.read("m", "2", None, None) is None


async def test_a_flush_longer_than_a_chunk_folds_every_request() -> None:
    book = SketchBook(ServerSettings(), clock=_Clock(6000.0))
    handle = _handle()
    rows = np.arange(3000, dtype=np.float32).reshape(1500, 2)
    for row in rows:
        book.observe(handle, [row[None, :]], [row[None, :1]])
    merged = await book.read("m", "1", None, None)
    assert merged is not None
    assert (merged.served, merged.requests, merged.rows) == (1500, 1500, 1500)
    a = merged.features["a"]
    assert isinstance(a, NumericSketch)
    assert (a.n, a.min, a.max, a.total) == (1500, 0.0, 2998.0, float(rows[:, 0].sum()))


async def test_one_request_runs_are_folded_in_chunks_of_a_few_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a flush of 300 one-request runs (a small share of capacity) yields the GIL between
    # chunks of at most 128 runs, and still folds every request
    book = SketchBook(ServerSettings(), clock=_Clock(6000.0))
    handle = _handle()
    chunks: list[int] = []
    add = book._add

    def counted(tally: Any, items: list[Any]) -> None:
        chunks.append(len(items))
        add(tally, items)

    monkeypatch.setattr(book, "_add", counted)
    rows = np.arange(600, dtype=np.float32).reshape(300, 2)
    for row in rows:
        book.observe(handle, [row[None, :]], [row[None, :1]])
    await book.flush()
    assert chunks == [128, 128, 44]
    merged = await book.read("m", "1", None, None)
    assert merged is not None
    assert (merged.served, merged.requests, merged.rows) == (300, 300, 300)


def test_huge_fp64_values_are_missing_so_the_window_survives_json() -> None:
    """One FP64 request of 1e308 made the window's sums inf: its sketch answer held ``null``
    where a float belongs, so the control plane could not read the window at all."""
    tally = WindowTally("m", "1", T0, T0 + dt.timedelta(minutes=1))
    huge = np.array([1e308, 1e308, -1e308, 2.0])
    columns: list[tuple[str | None, np.ndarray]] = [
        ("quantiles", huge),
        ("plain", huge),  # no reference: log buckets
        (None, huge),
    ]
    tally.add(columns, PROFILES, cap=1000)
    tally.served += 1
    window = tally.sketches()
    assert decode_windows(encode(window)) == window
    for sketch in (*window.features.values(), window.score):
        assert isinstance(sketch, NumericSketch)
        assert (sketch.n, sketch.missing, sketch.total) == (1, 3, 2.0)
