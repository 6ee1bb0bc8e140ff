"""MicroBatcher: merge/split property, Triton delay rule, bounded queue, timeouts, failures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inference_server import batcher as batcher_module
from inference_server.batcher import MicroBatcher, merge_batch, split_batch
from inference_server.queue_delay import FLOOR_NS, TARGET_SHARE, AdaptiveQueueDelay
from inference_server.saturation import SATURATED_OFF, SaturationDetector
from modelyard.errors import DeadlineExceeded, ResourceExhausted, Unavailable


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=12),
    width=st.integers(min_value=1, max_value=4),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_property_batch_split_returns_each_requests_own_rows_in_order(
    sizes: list[int], width: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    requests = [[rng.random((n, width)), rng.integers(0, 9, size=(n,))] for n in sizes]
    merged = merge_batch(requests)
    # a model that maps each row independently (row-wise) keeps the row order
    outputs = [merged[0] * 2.0, merged[1] + 1, np.array([7.0])]
    parts = split_batch(outputs, sizes)
    assert len(parts) == len(requests)
    for request, part in zip(requests, parts, strict=True):
        np.testing.assert_array_equal(part[0], request[0] * 2.0)
        np.testing.assert_array_equal(part[1], request[1] + 1)
        np.testing.assert_array_equal(part[2], [7.0])  # no batch dimension: whole to everyone


class RecordingModel:
    """A real row-wise 'model' that records the batch sizes it ran and can be told to fail."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[int] = []
        self.delay = delay
        self.fail: Exception | None = None
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        self.batches.append(len(arrays[0]))
        if self.fail is not None:
            raise self.fail
        return [arrays[0] + 1.0]


def _rows(n: int, start: float = 0.0) -> list[np.ndarray]:
    return [np.arange(start, start + n, dtype=np.float32).reshape(n, 1)]


def _busy_core() -> SaturationDetector:
    """The signal of a core with no idle time: its busy clock runs with the wall clock."""
    return SaturationDetector(busy_clock=time.monotonic_ns, saturated=True)


def _idle_core() -> SaturationDetector:
    """The signal of a core that is always idle: its busy clock never moves."""
    return SaturationDetector(busy_clock=lambda: 0)


async def test_idle_request_is_dispatched_at_once() -> None:
    model = RecordingModel()
    batcher = MicroBatcher(model.run, max_queue_delay_us=5_000_000)
    batcher.start()
    out = await asyncio.wait_for(batcher.submit(_rows(2), 2), timeout=30)  # a guard, not a timing
    np.testing.assert_array_equal(out[0], _rows(2)[0] + 1)
    await batcher.close()


async def test_concurrent_requests_batch_up_to_max_and_split_correctly() -> None:
    model = RecordingModel(delay=0.01)
    batcher = MicroBatcher(model.run, max_batch_size=8, max_queue_delay_us=20_000)
    batcher.start()
    sizes = [1, 3, 2, 4, 1, 1, 2, 5, 1, 3]
    starts = np.cumsum([0, *sizes[:-1]]) * 100.0
    outs = await asyncio.gather(
        *(batcher.submit(_rows(n, s), n) for n, s in zip(sizes, starts, strict=True))
    )
    for n, s, out in zip(sizes, starts, outs, strict=True):
        np.testing.assert_array_equal(out[0], _rows(n, s)[0] + 1)
    assert max(model.batches) <= 8
    assert len(model.batches) < len(sizes)
    await batcher.close()


async def test_oversized_request_runs_alone() -> None:
    model = RecordingModel()
    batcher = MicroBatcher(model.run, max_batch_size=4)
    batcher.start()
    out = await batcher.submit(_rows(10), 10)
    assert out[0].shape == (10, 1)
    assert model.batches == [10]
    await batcher.close()


@pytest.fixture
def held_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once under load, the batcher stays so for the test (not 100 ms): a process descheduled
    for longer between two requests would otherwise find it idle again and run one alone."""
    monkeypatch.setattr(batcher_module, "LOAD_HOLD_NS", 3600 * 10**9)


@pytest.mark.usefixtures("held_load")
async def test_under_load_waits_for_the_oldest_delay_then_dispatches() -> None:
    model = RecordingModel(delay=0.005)
    batcher = MicroBatcher(
        model.run,
        max_batch_size=64,
        max_queue_delay_us=1_000_000,
        linger_us=0,
        saturation=_busy_core(),
    )
    batcher.start()
    await asyncio.gather(*(batcher.submit(_rows(1), 1) for _ in range(3)))
    # the first ran alone (idle), the other two as one batch: under load now, so it waits
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    first = asyncio.ensure_future(batcher.submit(_rows(1), 1))
    await asyncio.sleep(0.02)
    second = asyncio.ensure_future(batcher.submit(_rows(1), 1))
    await asyncio.gather(first, second)
    waited = loop.time() - t0
    assert 0.995 <= waited < 30, waited  # measured from the oldest, not the newest
    assert model.batches[-1] == 2
    await batcher.close()


@pytest.mark.usefixtures("held_load")
async def test_under_load_a_pause_in_arrivals_dispatches_before_the_delay() -> None:
    model = RecordingModel(delay=0.005)
    batcher = MicroBatcher(
        model.run, max_queue_delay_us=60_000_000, linger_us=20_000, saturation=_busy_core()
    )
    batcher.start()
    # now under load, and 8 requests were in flight at once: 5 queued are not all there are
    await asyncio.gather(*(batcher.submit(_rows(1), 1) for _ in range(8)))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await asyncio.gather(*(batcher.submit(_rows(1), 1) for _ in range(5)))
    waited = loop.time() - t0
    assert 0.02 <= waited < 30, waited  # the 20 ms pause, not the 60 s delay
    assert model.batches[-1] == 5
    await batcher.close()


async def test_once_every_request_in_flight_is_queued_the_batch_leaves_without_lingering() -> None:
    model = RecordingModel(delay=0.002)
    batcher = MicroBatcher(
        model.run, max_queue_delay_us=60_000_000, linger_us=1_000_000, saturation=_busy_core()
    )
    batcher.start()
    loop = asyncio.get_running_loop()

    async def client(rounds: int) -> None:  # a closed-loop client: one request at a time
        for _ in range(rounds):
            await batcher.submit(_rows(1), 1)

    t0 = loop.time()
    await asyncio.wait_for(asyncio.gather(*(client(10) for _ in range(4))), timeout=30)
    waited = loop.time() - t0
    # four clients, ten rounds: waves of four, each sent as soon as the fourth is queued.
    # Lingering 1 s per wave would take 10 s; only the last, short wave (a client that ran
    # alone first finishes early) waits for the linger (and a wave the process was
    # descheduled in, more than the 100 ms load hold, may run its first request alone).
    assert waited < 6, waited
    assert model.batches.count(4) >= 8, model.batches
    await batcher.close()


HOUR_US = 3_600_000_000


async def _two_queued_behind_a_run(
    saturation: SaturationDetector, queue_delay: AdaptiveQueueDelay | None = None
) -> tuple[RecordingModel, MicroBatcher, list[asyncio.Task[list[np.ndarray]]]]:
    """A batcher lingering up to an hour: one request in the session, two queued behind it."""
    model = RecordingModel()
    model.gate = asyncio.Event()
    batcher = MicroBatcher(
        model.run,
        max_queue_delay_us=HOUR_US,
        linger_us=HOUR_US,
        saturation=saturation,
        queue_delay=queue_delay,
    )
    batcher.start()
    running = asyncio.ensure_future(batcher.submit(_rows(1), 1))  # idle: runs at once
    await asyncio.sleep(0)
    queued = [asyncio.ensure_future(batcher.submit(_rows(1, 10.0 * i), 1)) for i in (1, 2)]
    await asyncio.sleep(0)
    model.gate.set()
    await running
    return model, batcher, queued


async def test_with_idle_time_on_the_core_a_batch_leaves_as_soon_as_the_session_is_free() -> None:
    # under load (the two had to queue) but the process leaves its core idle: no linger
    model, batcher, queued = await _two_queued_behind_a_run(_idle_core())
    outs = await asyncio.wait_for(asyncio.gather(*queued), timeout=30)  # a guard, not a timing
    assert model.batches == [1, 2]
    np.testing.assert_array_equal(outs[1][0], _rows(1, 20.0)[0] + 1)
    await batcher.close()


async def test_on_a_saturated_core_a_batch_waits_for_more_rows() -> None:
    model, batcher, queued = await _two_queued_behind_a_run(_busy_core())
    for _ in range(50):  # the session is free, yet the batch keeps waiting (linger: an hour)
        await asyncio.sleep(0)
    assert model.batches == [1]
    assert not any(f.done() for f in queued)
    await batcher.close()  # closing sends what waits
    assert model.batches == [1, 2]


def _core_with_headroom() -> SaturationDetector:
    """A saturated core whose busy share has fallen below the queue delay's target (but not
    to the detector's off threshold): its busy clock runs at that share of the wall clock."""
    share = (TARGET_SHARE + SATURATED_OFF) / 2
    detector = SaturationDetector(
        busy_clock=lambda: int(time.monotonic_ns() * share), saturated=True
    )
    detector.share = share
    return detector


async def test_on_a_saturated_core_with_headroom_the_batch_waits_only_the_adapted_delay() -> None:
    # the delay was steered down to its floor (the load left headroom): the queued two leave
    # once the oldest waited that long, not the configured hour
    queue_delay = AdaptiveQueueDelay(HOUR_US * 1000, initial_ns=FLOOR_NS)
    model, batcher, queued = await _two_queued_behind_a_run(_core_with_headroom(), queue_delay)
    outs = await asyncio.wait_for(asyncio.gather(*queued), timeout=30)  # a guard, not a timing
    assert model.batches == [1, 2]
    np.testing.assert_array_equal(outs[0][0], _rows(1, 10.0)[0] + 1)
    await batcher.close()


async def test_full_queue_is_refused_at_once_and_then_recovers() -> None:
    model = RecordingModel()
    model.gate = asyncio.Event()
    batcher = MicroBatcher(model.run, max_batch_size=1, max_queue_size=2)
    batcher.start()
    running = asyncio.ensure_future(batcher.submit(_rows(1), 1))
    await asyncio.sleep(0.01)  # the consumer took it and waits on the gate
    queued = [asyncio.ensure_future(batcher.submit(_rows(1), 1)) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(ResourceExhausted, match="queue is full"):
        await batcher.submit(_rows(1), 1)
    model.gate.set()
    await asyncio.gather(running, *queued)
    assert (await batcher.submit(_rows(1), 1))[0].shape == (1, 1)
    await batcher.close()


async def test_queue_timeout_has_its_own_code() -> None:
    model = RecordingModel()
    model.gate = asyncio.Event()
    batcher = MicroBatcher(model.run, max_batch_size=1, queue_timeout_us=10_000)
    batcher.start()
    running = asyncio.ensure_future(batcher.submit(_rows(1), 1))
    await asyncio.sleep(0.005)
    late = asyncio.ensure_future(batcher.submit(_rows(1), 1))
    await asyncio.sleep(0.03)
    model.gate.set()
    await running
    with pytest.raises(DeadlineExceeded, match="batch queue"):
        await late
    await batcher.close()


async def test_batch_failure_reaches_every_waiter_and_nobody_hangs() -> None:
    model = RecordingModel(delay=0.01)
    model.fail = RuntimeError("session exploded")
    batcher = MicroBatcher(model.run, max_batch_size=64, max_queue_delay_us=20_000)
    batcher.start()
    results = await asyncio.wait_for(
        asyncio.gather(*(batcher.submit(_rows(1), 1) for _ in range(10)), return_exceptions=True),
        timeout=30,  # a guard, not a timing
    )
    assert all(isinstance(r, RuntimeError) for r in results)
    model.fail = None
    assert (await batcher.submit(_rows(1), 1))[0].shape == (1, 1)
    await batcher.close()


async def test_close_drains_queue_then_refuses() -> None:
    model = RecordingModel(delay=0.01)
    batcher = MicroBatcher(model.run, max_batch_size=2)
    batcher.start()
    pending = [asyncio.ensure_future(batcher.submit(_rows(1), 1)) for _ in range(5)]
    await asyncio.sleep(0)
    await batcher.close()
    assert all(p.done() and not p.exception() for p in pending)
    with pytest.raises(Unavailable):
        await batcher.submit(_rows(1), 1)


async def test_cancelled_request_leaves_the_batcher_working() -> None:
    model = RecordingModel()
    model.gate = asyncio.Event()
    batcher = MicroBatcher(model.run)
    batcher.start()
    alone = asyncio.ensure_future(batcher.submit(_rows(1), 1))  # idle: runs at once
    await asyncio.sleep(0.01)
    queued = asyncio.ensure_future(batcher.submit(_rows(2), 2))  # a run is in progress: queued
    await asyncio.sleep(0.01)
    alone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await alone
    model.gate.set()
    assert (await asyncio.wait_for(queued, 30))[0].shape == (2, 1)
    assert (await batcher.submit(_rows(1), 1))[0].shape == (1, 1)
    await batcher.close()


async def test_requests_enqueued_in_one_pass_form_one_batch() -> None:
    model = RecordingModel()
    batcher = MicroBatcher(model.run, max_queue_delay_us=5_000_000)
    batcher.start()
    futures = [batcher.enqueue(_rows(1, 10.0 * i), 1) for i in range(5)]
    outs = await asyncio.wait_for(asyncio.gather(*futures), timeout=5.0)
    assert model.batches == [5]  # all five were queued when the consumer woke: no linger
    for i, out in enumerate(outs):
        np.testing.assert_array_equal(out[0], _rows(1, 10.0 * i)[0] + 1)
    await batcher.close()


@pytest.mark.parametrize(
    ("core", "busy_runs_inline"),
    [(_busy_core, False), (_idle_core, True)],
    ids=["saturated", "idle"],
)
async def test_a_lone_idle_enqueue_runs_inline_and_a_busy_one_only_on_a_core_with_idle_time(
    core: Callable[[], SaturationDetector], busy_runs_inline: bool
) -> None:
    model = RecordingModel()
    inline_batches: list[int] = []

    def inline(arrays: list[np.ndarray]) -> list[np.ndarray]:
        inline_batches.append(len(arrays[0]))
        return [arrays[0] + 1.0]

    batcher = MicroBatcher(model.run, inline=inline, inline_max_rows=4, saturation=core())
    batcher.start()
    out = await asyncio.wait_for(batcher.enqueue(_rows(1), 1), timeout=5.0)
    np.testing.assert_array_equal(out[0], _rows(1)[0] + 1)
    assert (inline_batches, model.batches) == ([1], [])
    # a caller with other requests unanswered (a pipelining stream) counts as load: handed off
    # to the session thread on a saturated core, run inline (no hand-off) on one with idle time
    await asyncio.wait_for(batcher.enqueue(_rows(1), 1, busy=True), timeout=5.0)
    expected = ([1, 1], []) if busy_runs_inline else ([1], [1])
    assert (inline_batches, model.batches) == expected
    # a batch above inline_max_rows is handed off whatever the core
    outs = [batcher.enqueue(_rows(1), 1, busy=True) for _ in range(5)]
    await asyncio.wait_for(asyncio.gather(*outs), timeout=5.0)
    assert model.batches[-1] == 5
    await batcher.close()


async def test_enqueue_refuses_when_closing_or_full() -> None:
    model = RecordingModel()
    model.gate = asyncio.Event()
    batcher = MicroBatcher(model.run, max_queue_size=2)
    batcher.start()
    first = batcher.enqueue(_rows(1), 1)
    await asyncio.sleep(0)  # the consumer takes it and blocks on the gate
    queued = [batcher.enqueue(_rows(1), 1) for _ in range(2)]
    with pytest.raises(ResourceExhausted, match="queue is full"):
        batcher.enqueue(_rows(1), 1)
    model.gate.set()
    await asyncio.wait_for(asyncio.gather(first, *queued), timeout=5.0)
    closing = asyncio.ensure_future(batcher.close())
    await asyncio.sleep(0)
    with pytest.raises(Unavailable):
        batcher.enqueue(_rows(1), 1)
    await closing


class Tap:
    """Records what the batcher hands its tap: (tags, rows, inputs, outputs) per call."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[object], list[int], list[np.ndarray], list[np.ndarray]]] = []

    def __call__(
        self,
        tags: list[object],
        rows: list[int],
        inputs: list[np.ndarray],
        outputs: list[np.ndarray],
    ) -> None:
        self.calls.append((tags, rows, inputs, outputs))


async def test_a_run_is_tapped_once_with_its_tags_and_whole_arrays() -> None:
    model, tap = RecordingModel(), Tap()
    batcher = MicroBatcher(model.run, max_queue_delay_us=5_000_000, tap=tap)
    batcher.start()
    futures = [batcher.enqueue(_rows(i + 1, 10.0 * i), i + 1, tag=f"t{i}") for i in range(3)]
    await asyncio.wait_for(asyncio.gather(*futures), timeout=5.0)
    assert await batcher.submit(_rows(1), 1, tag="alone")  # idle: the fast path, tapped too
    assert [(tags, rows) for tags, rows, _, _ in tap.calls] == [
        (["t0", "t1", "t2"], [1, 2, 3]),
        (["alone"], [1]),
    ]
    _, _, inputs, outputs = tap.calls[0]
    merged = np.concatenate([_rows(i + 1, 10.0 * i)[0] for i in range(3)])
    np.testing.assert_array_equal(inputs[0], merged)
    np.testing.assert_array_equal(outputs[0], merged + 1)
    await batcher.close()


async def test_a_run_is_tapped_before_any_of_its_waiters_resumes() -> None:
    """The prediction log's promise (a record exists for every answer that leaves) rests on
    this: the tap sees the run while none of its callers has its answer yet."""
    model = RecordingModel()
    resumed: list[int] = []
    seen: list[int] = []
    batcher = MicroBatcher(
        model.run, max_queue_delay_us=5_000_000, tap=lambda *_: seen.append(len(resumed))
    )
    batcher.start()

    async def call(i: int) -> None:
        await batcher.enqueue(_rows(1, float(i)), 1, tag=i)
        resumed.append(i)

    await asyncio.wait_for(asyncio.gather(*(call(i) for i in range(3))), timeout=5.0)
    assert seen == [0]  # one run, tapped while none of its three callers had resumed
    assert len(resumed) == 3
    await batcher.close()


async def test_a_failing_tap_is_logged_and_the_batcher_keeps_answering(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model, calls = RecordingModel(), []

    def tap(*_: object) -> None:
        calls.append(1)
        raise RuntimeError("a bug in the log")

    batcher = MicroBatcher(model.run, max_queue_delay_us=5_000_000, tap=tap)
    batcher.start()
    for _ in range(2):  # two queued runs: the consumer survives the first failure
        futures = [batcher.enqueue(_rows(1, float(i)), 1, tag=i) for i in range(3)]
        answers = await asyncio.wait_for(asyncio.gather(*futures), timeout=5.0)
        assert [float(a[0][0, 0]) for a in answers] == [1.0, 2.0, 3.0]
    assert await batcher.submit(_rows(1), 1, tag="alone")  # the idle fast path too
    assert len(calls) == 3
    assert caplog.text.count("the answer tap failed") == 3
    await batcher.close()


async def test_a_failing_observer_is_logged_and_the_batcher_keeps_answering(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Before, the observer's exception ended the consumer task: the second queued run below
    then waited forever (and the idle fast path failed its request although it was answered)."""
    model, calls = RecordingModel(), []

    def observer(rows: int, waits: object, compute_ns: int) -> None:
        calls.append(rows)
        raise RuntimeError("a bug in the statistics")

    batcher = MicroBatcher(model.run, max_queue_delay_us=5_000_000, observer=observer)
    batcher.start()
    for _ in range(2):
        futures = [batcher.enqueue(_rows(1, float(i)), 1) for i in range(3)]
        answers = await asyncio.wait_for(asyncio.gather(*futures), timeout=5.0)
        assert [float(a[0][0, 0]) for a in answers] == [1.0, 2.0, 3.0]
    alone = await asyncio.wait_for(batcher.submit(_rows(1, 7.0), 1), timeout=5.0)
    assert float(alone[0][0, 0]) == 8.0
    assert calls == [3, 3, 1]
    assert caplog.text.count("the batch observer failed") == 3
    await batcher.close()


async def test_a_request_given_up_during_its_run_is_not_tapped() -> None:
    model, tap = RecordingModel(), Tap()
    model.gate = asyncio.Event()
    batcher = MicroBatcher(model.run, max_queue_delay_us=5_000_000, tap=tap)
    batcher.start()
    futures = [batcher.enqueue(_rows(1, 10.0 * i), 1, tag=i) for i in range(3)]
    await asyncio.wait_for(model.entered.wait(), 5.0)  # the run of the three waits on the gate
    futures[1].cancel()
    model.gate.set()
    await asyncio.wait_for(asyncio.gather(futures[0], futures[2]), timeout=5.0)
    # the others are tapped alone, each with its own arrays and its own output rows
    assert [(tags, rows) for tags, rows, _, _ in tap.calls] == [([0], [1]), ([2], [1])]
    np.testing.assert_array_equal(tap.calls[1][2][0], _rows(1, 20.0)[0])
    np.testing.assert_array_equal(tap.calls[1][3][0], _rows(1, 20.0)[0] + 1)
    await batcher.close()
