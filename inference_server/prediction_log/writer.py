"""The prediction-log writer of one worker: buffer -> spool (thread) -> database (thread).

* The **spooler thread** wakes every ``flush_interval_ms`` (or when asked to flush), drains
  the buffer the session runs fill (:mod:`~inference_server.prediction_log.capture`: one
  entry per run), turns the answered requests into prediction blocks (:func:`~inference_server.
  prediction_log.records.pass_blocks`: consecutive runs on one version share a block, their
  tensors concatenated as raw bytes; no per-row work) and appends them to the spool, one
  framed, checksummed MessagePack record per block, in one ``writev``
  (:mod:`~inference_server.prediction_log.spool`: segments are recycled, so the write lands
  in pages the page cache already holds). A ``kill -9`` therefore loses at most what was
  buffered since the last write: one flush interval of answers (plus the time that pass
  takes). It runs demoted and in short GIL slices (:mod:`inference_server.background`: a
  nice value, and ``os.sched_yield`` between runs once a slice of 0.2 ms is used up): on a
  server pinned to one core, a request that arrives during a pass waits behind one slice, not
  behind the pass or the 5 ms GIL switch interval. The shipper runs demoted too.
* The **shipper thread** runs its own event loop: it fsyncs the spool when configured (off the
  spooler's path: a slow disk must not stretch the ``kill -9`` window) -- but only records that
  are still neither in the database nor fsynced ``ship_interval_ms`` after it first saw them
  (:meth:`PredictionLogWriter._sync_unshipped`): a record the database took first is durable there
  (SQLite and PostgreSQL commit durably), so fsyncing its spool copy too only wrote it to the
  disk twice. Keeping up, the shipper therefore never fsyncs the spool; while the database is
  down or behind, it fsyncs every ``ship_interval_ms``. Either way an answer is on stable
  storage about ``ship_interval_ms`` + one flush interval after it was spooled. It sleeps
  until its next batch is due (``ship_interval_ms`` after it last caught up); the spooler wakes
  it sooner only when a flush or the shutdown waits or a batch is full (it used to be woken
  after every pass, 20 times a second, mostly to find nothing due). It takes the
  records after the spool checkpoint, writes them to the database in batches (one
  ``prediction_log_block`` row per block, idempotent on the block's key;
  :mod:`~inference_server.prediction_log.sinks`), then moves the checkpoint. The control plane
  unpacks blocks into one ``prediction_log`` row per scored row
  (:mod:`modelyard.prediction_blocks`), off this server's core. A failure (database down, table
  missing) keeps the records in the spool and retries with backoff (100 ms doubling to 5 s); the
  spool grows on disk meanwhile (up to ``max_spool_bytes``; beyond it the buffer fills and the
  overflow policy applies).
* **Shipping from memory.** After its append, the spooler also hands the blocks it just wrote
  (objects and encoded bytes) to the shipper, tagged with the spool positions where their
  records start and end (a bounded hand-over queue: at most ``2 * ship_batch`` records; when
  full, the blocks are only in the spool). When the shipper's position is exactly where a
  handed-over chunk starts, it ships that chunk's blocks as they are instead of reading the
  records back and decoding them: the same blocks, the same batch boundaries in the spool, the
  same checkpoint moves. Anywhere else (after a restart, while catching up after a database
  failure, after a full hand-over queue, at a segment roll) it reads the spool as before and
  drops the chunks it has passed. The spool therefore stays the only durability path; the
  memory path only saves the shipper the read and the decode.
* **A failing spool disk** (full, or an I/O error): a failed append leaves none of its records
  in the spool (:meth:`~inference_server.prediction_log.spool.Spool.append`), so the spooler
  keeps its blocks in memory and appends them first at every later pass; until one succeeds it
  takes nothing more off the buffer, which fills, and the overflow policy applies (counted):
  nothing is lost uncounted and the order is kept. The shipper retries a failed read, fsync or
  checkpoint write with the database's backoff. Both count ``spool_failures``. At shutdown the
  spooler retries until ``shutdown_timeout_s``, then counts what it still holds as dropped.
* :meth:`PredictionLogWriter.close` (SIGTERM) spools everything, then ships until the spool
  is empty or ``shutdown_timeout_s`` passed; what remains is shipped by the next start.

Neither thread touches the event loop; the request path only appends to a deque.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import msgspec
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from inference_server.background import Slicer, demote_current_thread
from inference_server.prediction_log.capture import Capture, requests_of
from inference_server.prediction_log.records import (
    BlockKeys,
    decode_line,
    pass_blocks,
    spool_data,
)
from inference_server.prediction_log.sinks import open_sink
from inference_server.prediction_log.spool import Spool

if TYPE_CHECKING:
    from collections.abc import Iterator

    from prometheus_client.metrics_core import Metric

    from inference_server.prediction_log.records import Shipped
    from inference_server.prediction_log.sinks import Sink
    from modelyard.settings import PredictionLogSettings

log = logging.getLogger(__name__)

_BACKOFF_START_S = 0.1
_BACKOFF_MAX_S = 5.0
_TAKE_REQUESTS = 1024
"""Requests taken off the buffer at a time (blocks never span two takes)."""

Position = tuple[int, int]


class _Chunk(NamedTuple):
    """Records the spooler appended between two spool positions (a hand-over)."""

    start: Position
    end: Position
    lines: list[Shipped]
    records: int


class PredictionLogWriter:
    """Owns one worker's buffer, spool and the two threads.

    Args:
        settings: the ``prediction_log`` settings section.
        worker: this worker's index (its spool folder, the ``worker`` column).
        database_url: the database holding the table (``Settings.prediction_log_url``).
        schema: PostgreSQL schema (``search_path``) of the table; None for the default.
        nice: the nice value both threads give themselves
            (:func:`~inference_server.background.demote_current_thread`; 0: unchanged).
    """

    def __init__(
        self,
        settings: PredictionLogSettings,
        worker: int,
        *,
        database_url: str,
        schema: str | None = None,
        nice: int = 0,
    ) -> None:
        self.settings = settings
        self.nice = nice
        self._slicer = Slicer()
        self.worker = worker
        self.database_url = database_url
        self.schema = schema
        self.capture = Capture(settings)
        self.spooled = 0
        self.shipped = 0
        self.shipped_from_memory = 0
        """Records of ``shipped`` that were handed over in memory (not read back)."""
        self.ship_failures = 0
        self.spool_failures = 0
        """Failed spool writes, reads or fsyncs (a full disk; retried; both threads count)."""
        self._failures_guard = threading.Lock()
        self.corrupt = 0
        self._spool: Spool | None = None
        self._stopping = threading.Event()
        self._wake_spooler = threading.Event()
        self._wake_shipper = threading.Event()
        self._spool_passes = 0
        self._shipped_to: Position = (0, 0)
        self._threads: list[threading.Thread] = []
        self._ship_deadline = float("inf")
        self._handed: deque[_Chunk] = deque()
        self._handed_rows = 0
        self._handed_guard = threading.Lock()
        self._handed_cap = 2 * settings.ship_batch
        self._urgent = 0
        """Flushes waiting (they ship at once, whatever ``ship_interval_ms``)."""
        self._due_at = 0.0
        """When the shipper's next batch is due (monotonic; ``ship_interval_ms`` after it last
        caught up): before it, the spooler does not wake it (:meth:`_ship_due`)."""
        self._unsafe_since: float | None = None
        """When the shipper first saw spooled records neither shipped nor fsynced (None: none)."""
        self._keys = BlockKeys()
        """Keys of the blocks this writer spools (a new random prefix per start)."""
        self._unspooled: list[Shipped] = []
        """Blocks whose append failed, appended first at the next pass (spooler only)."""

    def start(self) -> None:
        """Open the spool (shipping resumes from its checkpoint) and start both threads.

        Raises:
            ConfigurationError: the spool folder is owned by another live process, or the
                database URL is invalid.
        """
        folder = Path(self.settings.spool_dir) / f"worker-{self.worker}"
        sink = open_sink(self.database_url, self.schema)
        self._spool = Spool(
            folder, segment_bytes=self.settings.segment_bytes, fsync=self.settings.fsync
        )
        self._threads = [
            threading.Thread(target=self._spool_loop, name="prediction-log-spooler", daemon=True),
            threading.Thread(
                target=self._ship_thread,
                args=(self._spool, sink),
                name="prediction-log-shipper",
                daemon=True,
            ),
        ]
        for thread in self._threads:
            thread.start()

    # -- spooler thread -------------------------------------------------------------------

    def _spool_loop(self) -> None:
        demote_current_thread(self.nice)
        interval = self.settings.flush_interval_ms / 1000.0
        due = time.monotonic() + interval
        while not self._stopping.is_set():
            # NOTE: passes start every interval (not an interval after the last one ended),
            # so a slow pass does not stretch the kill -9 loss window.
            self._wake_spooler.wait(max(due - time.monotonic(), 0.0))
            self._wake_spooler.clear()
            due = time.monotonic() + interval
            self._spool_buffer()
        self._spool_buffer(final=True)
        backoff = _BACKOFF_START_S
        while self._unspooled and time.monotonic() + backoff <= self._ship_deadline:
            time.sleep(backoff)  # NOTE: shutting down on a full disk: until the deadline
            backoff = min(backoff * 2, _BACKOFF_MAX_S)
            self._spool_buffer(final=True)
        if self._unspooled or self.capture.buffer:
            # NOTE: what a failed append held, and what waited behind it in the buffer
            left = self.capture.take(self.settings.buffer_capacity + 1)
            lost = sum(line.requests for line in self._unspooled) + requests_of(left)
            self.capture.dropped += lost
            log.error(
                "prediction log: shutdown with the records of %d requests that could not be "
                "spooled (the spool's disk kept failing); counted as dropped",
                lost,
            )
            self._unspooled = []

    def _spool_buffer(self, *, final: bool = False) -> None:
        spool = self._spool
        assert spool is not None
        buffer = self.capture.buffer
        if (
            (buffer or self._unspooled)
            and not final
            and spool.holds_at_least(self.settings.max_spool_bytes)
        ):
            self._spool_passes += 1
            return  # NOTE: the buffer fills instead, and the overflow policy decides.
        # NOTE: what a failed append held goes first, and nothing more is taken off the buffer
        # until it is in: while the disk is full the buffer fills and the overflow policy
        # applies (counted), and the order of the records is kept
        if not self._unspooled or self._append(spool, self._unspooled):
            lines: list[Shipped] = []
            slicer = self._slicer
            slicer.restart()
            while buffer:
                taken = self.capture.take(_TAKE_REQUESTS)
                try:
                    lines += pass_blocks(taken, self.worker, self._keys, slicer.tick)
                except Exception:  # NOTE: a bug, not a disk: those records cannot be made;
                    # counted as dropped, and the spooler goes on with the next ones
                    lost = requests_of(taken)
                    self.capture.dropped += lost
                    log.exception(
                        "prediction log: the records of %d requests could not be made into "
                        "blocks; counted as dropped",
                        lost,
                    )
            if lines:
                self._append(spool, lines)
        self._spool_passes += 1

    def _append(self, spool: Spool, lines: list[Shipped]) -> bool:
        """Append ``lines`` to the spool and offer them to the shipper; on a failed write
        (full disk), keep them for the next pass (:attr:`_unspooled`) and count it."""
        try:
            start, end = spool.append(spool_data(lines))
        except OSError as exc:
            self._unspooled = lines
            self._spool_failed(exc)
            return False
        self._unspooled = []
        records = sum(line.records for line in lines)
        self.spooled += records
        self._hand_over(_Chunk(start, end, lines, records))
        if self._ship_due():
            self._wake_shipper.set()
        return True

    def _spool_failed(self, exc: OSError) -> None:
        """Count a failed spool write, read or fsync (either thread) and warn (the first and
        every 100th): it is retried, the records wait meanwhile (in memory, then the buffer
        fills and the overflow policy applies)."""
        with self._failures_guard:
            self.spool_failures += 1
            failures = self.spool_failures
        if failures == 1 or failures % 100 == 0:
            log.warning(
                "prediction log: spool I/O failed (%s); retried, the records wait meanwhile "
                "(%d failures so far)",
                exc,
                failures,
            )

    def _hand_over(self, chunk: _Chunk) -> None:
        """Offer the records just appended to the shipper (dropped when the queue is full:
        the shipper then reads them from the spool)."""
        with self._handed_guard:
            if self._handed_rows + chunk.records <= self._handed_cap:
                self._handed.append(chunk)
                self._handed_rows += chunk.records

    def _take_handed(self, position: Position) -> tuple[list[Shipped], Position] | None:
        """The handed-over records that start exactly at ``position`` (chunks of up to
        ``ship_batch`` records in all, at least one chunk; contiguous chunks only) and the
        position after them; None: read the spool instead.

        Chunks ending at or before ``position`` are dropped (shipped, or read from the spool);
        so is a first chunk that starts before it (a spool read ended inside it).
        """
        with self._handed_guard:
            handed = self._handed
            while handed and handed[0].start < position:
                self._handed_rows -= handed.popleft().records
            if not handed or handed[0].start != position:
                return None
            lines: list[Shipped] = []
            records = 0
            after = position
            for chunk in handed:
                if chunk.start != after or (
                    lines and records + chunk.records > self.settings.ship_batch
                ):
                    break
                lines += chunk.lines
                records += chunk.records
                after = chunk.end
            return (lines, after) if lines else None

    # -- shipper thread -------------------------------------------------------------------

    def _ship_thread(self, spool: Spool, sink: Sink) -> None:
        demote_current_thread(self.nice)
        asyncio.run(self._ship_loop(spool, sink))

    async def _ship_loop(self, spool: Spool, sink: Sink) -> None:
        position = spool.checkpoint()
        backoff = 0.0
        try:
            while True:
                try:
                    # NOTE: decided before reading: a spooler that ends after this read may
                    # have appended its final records after it, so only an empty read that
                    # started after the spooler ended means everything was shipped.
                    spooler_done = self._stopping.is_set() and not self._spooler_alive()
                    end = spool.durable_end()
                    if not self._ship_due():
                        self._sync_unshipped(spool, position, end)
                        self._idle(self._due_at - time.monotonic())
                        continue
                    lines, after, from_memory = self._next_batch(spool, position, end)
                    if lines is None:  # caught up
                        if after != position:
                            spool.commit(after)
                        position = self._shipped_to = max(after, end)
                        self._due_at = time.monotonic() + self.settings.ship_interval_ms / 1000.0
                        # NOTE: nothing waits unshipped now; kept, the time records were first
                        # seen waiting made the next ones look old at once and fsynced them
                        self._unsafe_since = None
                        if spooler_done:
                            return
                        # NOTE: until the next ship is due (the spooler wakes it sooner when
                        # something is wanted now), at least a flush interval:
                        # ship_interval_ms 0 ships after every pass, as the spooler asks
                        settings = self.settings
                        self._idle(max(settings.ship_interval_ms, settings.flush_interval_ms) / 1e3)
                        continue
                    if (shipped := await self._write(sink, lines)) is not None:
                        self.shipped_from_memory += shipped if from_memory else 0
                        position = self._shipped_to = after  # NOTE: before a commit that may fail
                        backoff = 0.0
                        spool.commit(after)
                        continue
                    self._sync_unshipped(spool, position, end)
                except OSError as exc:  # the spool's disk (read, fsync, checkpoint): retried
                    self._spool_failed(exc)
                # NOTE: here only after a failure (the database's or the spool's): back off
                backoff = min(max(backoff * 2, _BACKOFF_START_S), _BACKOFF_MAX_S)
                if time.monotonic() + backoff > self._ship_deadline:
                    log.error("prediction log: shutdown with records left in %s", spool.folder)
                    return
                self._idle(backoff)
        finally:
            await sink.close()

    def _sync_unshipped(self, spool: Spool, shipped: Position, end: Position) -> None:
        """Before the shipper waits: fsync the spool (``fsync`` on) once records have waited
        unshipped and unsynced for ``ship_interval_ms``. A shipper that keeps up ships them
        first (a batch is due ``ship_interval_ms`` after it last caught up, and the due check
        comes before this one), so only a failing or lagging database leads here with records
        that old (see the module docstring)."""
        if not self.settings.fsync:
            return
        if end <= max(shipped, spool.synced_end()):
            self._unsafe_since = None
            return
        now = time.monotonic()
        if self._unsafe_since is None:
            self._unsafe_since = now
        elif now - self._unsafe_since >= self.settings.ship_interval_ms / 1000.0:
            spool.sync()
            self._unsafe_since = None

    def _idle(self, seconds: float) -> None:
        self._wake_shipper.wait(seconds)
        self._wake_shipper.clear()

    def _next_batch(
        self, spool: Spool, position: Position, end: Position
    ) -> tuple[list[Shipped] | None, Position, bool]:
        """The records to ship from ``position`` (None: nothing complete after it), the
        position after them, and whether they were handed over in memory."""
        handed = self._take_handed(position)
        if handed is not None:
            return handed[0], handed[1], True
        if position == end:
            return None, position, False  # NOTE: caught up: no spool read
        lines, after = spool.read(position, self.settings.ship_batch)
        if not lines:
            return None, after, False
        return self._decode(lines), after, False

    def _ship_due(self) -> bool:
        """Whether to ship now rather than at the shipper's own next wake-up: its batch is
        due (``ship_interval_ms`` after it last caught up), a flush or the shutdown waits, or
        a full batch is waiting. The spooler asks it too after a pass: a wake-up that finds
        nothing to do costs the core and the GIL all the same."""
        return (
            time.monotonic() >= self._due_at
            or self._urgent > 0
            or self._stopping.is_set()
            or self._handed_rows >= self.settings.ship_batch
        )

    def _decode(self, lines: list[bytes]) -> list[Shipped]:
        shipped: list[Shipped] = []
        for line in lines:
            try:
                shipped.append(decode_line(line))
            except msgspec.DecodeError:
                self.corrupt += 1
        return shipped

    async def _write(self, sink: Sink, lines: list[Shipped]) -> int | None:
        """Ship ``lines``; the records they hold, or None when the write failed."""
        try:
            if lines:
                await sink.write(lines)
        except Exception as exc:  # any database failure: keep the records and retry
            self.ship_failures += 1
            if self.ship_failures == 1 or self.ship_failures % 100 == 0:
                log.warning(
                    "prediction log: database write failed (%s: %s); records stay in the "
                    "spool and are retried (%d failures so far)",
                    type(exc).__name__,
                    exc,
                    self.ship_failures,
                )
            return None
        records = sum(line.records for line in lines)
        self.shipped += records
        return records

    def _spooler_alive(self) -> bool:
        return bool(self._threads) and self._threads[0].is_alive()

    # -- control --------------------------------------------------------------------------

    async def flush(self, timeout_s: float = 30.0) -> bool:
        """Spool everything buffered now and wait until it reached the database.

        Returns:
            True when it did within ``timeout_s`` (False: the database is down; the records
            are safe in the spool).
        """
        self._urgent += 1
        try:
            return await self._flush(time.monotonic() + timeout_s)
        finally:
            self._urgent -= 1

    async def _flush(self, deadline: float) -> bool:
        while True:  # NOTE: until a whole pass left nothing unspooled (a full disk: not yet)
            passes = self._spool_passes
            self._wake_spooler.set()
            while self._spool_passes <= passes + 1 and self._spooler_alive():
                if time.monotonic() > deadline:
                    return False
                self._wake_spooler.set()
                await asyncio.sleep(0.002)
            if not self._unspooled:
                break
            if time.monotonic() > deadline or not self._spooler_alive():
                return False
            await asyncio.sleep(0.01)
        assert self._spool is not None
        target = self._spool.durable_end()
        self._wake_shipper.set()
        while self._shipped_to < target:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    async def close(self) -> None:
        """Spool everything, ship until done or ``shutdown_timeout_s``, stop both threads."""
        self._ship_deadline = time.monotonic() + self.settings.shutdown_timeout_s
        self._stopping.set()
        self._wake_spooler.set()
        self._wake_shipper.set()
        for thread in self._threads:
            await asyncio.to_thread(thread.join, self.settings.shutdown_timeout_s + 5)
        if self._spool is not None:
            self._spool.close()

    def pending_bytes(self) -> int:
        """Bytes of spool segments not yet recycled (including shipped records of the current
        one; :meth:`Spool.disk_bytes`)."""
        return self._spool.disk_bytes() if self._spool is not None else 0

    @property
    def spool_fsyncs(self) -> int:
        """How often the shipper fsynced the spool (0 while the database keeps up)."""
        return self._spool.fsyncs if self._spool is not None else 0

    def collect(self) -> Iterator[Metric]:
        """Prometheus collector: the log's counters and gauges (read at scrape time)."""
        counters = {
            "buffered": ("Answered requests buffered for the log", self.capture.buffered),
            "spooled": ("Records written to the local spool", self.spooled),
            "shipped": ("Records written to the database", self.shipped),
            "dropped": ("Requests whose records the overflow policy dropped", self.capture.dropped),
            "ship_failures": ("Failed database writes (retried)", self.ship_failures),
            "spool_failures": (
                "Failed spool writes or reads, e.g. a full disk (retried)",
                self.spool_failures,
            ),
            "corrupt": ("Spool records that could not be decoded (skipped)", self.corrupt),
            "spool_fsyncs": (
                "fsyncs of spool records the database had not taken in time",
                self.spool_fsyncs,
            ),
        }
        for name, (text, value) in counters.items():
            yield CounterMetricFamily(f"modelyard_prediction_log_{name}", text, value=value)
        yield GaugeMetricFamily(
            "modelyard_prediction_log_buffer_requests",
            "Requests waiting in the buffer",
            value=self.capture.buffered - self.capture.taken,
        )
        with contextlib.suppress(OSError):
            yield GaugeMetricFamily(
                "modelyard_prediction_log_spool_bytes",
                "Bytes of spool segments on disk",
                value=self.pending_bytes(),
            )


__all__ = ["PredictionLogWriter"]
