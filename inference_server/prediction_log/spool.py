"""The append-only local spool between a worker's buffer and the database.

Layout of one worker's folder (``<spool_dir>/worker-<k>``)::

    .lock                 flock held by the process that owns the folder
    0000000000000007.seg  segments: JSON lines (records), appended, never rewritten
    0000000000000008.seg
    checkpoint            "<segment> <offset>": everything before it reached the database

The spooler thread appends whole lines (one ``write`` per flush) and publishes the end: from
then on the lines survive a process kill (they are in the page cache). ``fsync``, when
configured, is the shipper thread's job (:meth:`Spool.sync`, for lines the database has not
taken within the ship interval: :mod:`~inference_server.prediction_log.writer`): a slow disk
then delays neither the spooler's next pass nor, therefore, the ``kill -9`` bound. The shipper reads
complete lines up to the end, ships them, then moves the checkpoint (written aside and renamed,
so it is never torn). A segment behind the checkpoint that the spooler has left is deleted. A
process starts a new segment, so a line cut by ``kill -9`` in the middle of a write is never
appended to; readers stop at the last newline of a segment the writer left. Replaying from the
checkpoint may send records the database already has (a crash between commit and checkpoint):
the table's unique key drops them.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path
from typing import IO

from modelyard.errors import ConfigurationError

_SUFFIX = ".seg"
_READ_CHUNK = 4 * 1024 * 1024


def _segment_name(number: int) -> str:
    return f"{number:016d}{_SUFFIX}"


class Spool:
    """One worker's spool folder (see the module docstring).

    Args:
        folder: the worker's spool folder (created).
        segment_bytes: roll to a new segment past this size.
        fsync: fsync after each append.

    Raises:
        ConfigurationError: another live process owns the folder.
    """

    def __init__(self, folder: Path, *, segment_bytes: int, fsync: bool) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._lock_file = (folder / ".lock").open("a")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise ConfigurationError(
                f"prediction-log spool {folder} is in use by another server process"
            ) from None
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        self._guard = threading.Lock()
        self._file_guard = threading.Lock()
        """Held while the current segment's file is fsynced or replaced."""
        self._synced = 0
        self._synced_end = (0, 0)
        """(segment, offset) up to which the segments are fsynced (shipper side)."""
        self.fsyncs = 0
        """Calls of :meth:`sync` that fsynced (segments fsynced as they close not counted)."""
        numbers = self.segments()
        if fsync:  # NOTE: a killed process may have left its last segment unsynced
            for number in numbers:
                with (folder / _segment_name(number)).open("rb") as left:
                    os.fsync(left.fileno())
        self._current = (numbers[-1] + 1) if numbers else 1
        self._file: IO[bytes] = (folder / _segment_name(self._current)).open("ab")
        self._size = 0
        self._durable = (self._current, 0)
        self._committed_segment = -1
        """The segment of the last commit that deleted the ones before it (shipper only)."""

    def segments(self) -> list[int]:
        """The numbers of the segments on disk, oldest first."""
        return sorted(int(p.stem) for p in self.folder.glob(f"*{_SUFFIX}") if p.stem.isdigit())

    def disk_bytes(self) -> int:
        """Bytes the segments hold (shipped or not)."""
        total = 0
        for number in self.segments():
            try:
                total += (self.folder / _segment_name(number)).stat().st_size
            except FileNotFoundError:
                continue
        return total

    # -- spooler side ---------------------------------------------------------------------

    def append(self, lines: list[bytes] | bytes) -> tuple[tuple[int, int], tuple[int, int]]:
        """Append whole lines (one write) and publish the new end.

        Returns:
            The (segment, offset) positions where the lines start and end.
        """
        data = lines if isinstance(lines, bytes) else b"".join(lines)
        start = (self._current, self._size)
        self._file.write(data)
        self._file.flush()
        self._size += len(data)
        end = (self._current, self._size)
        with self._guard:
            self._durable = end
        if self._size >= self._segment_bytes:
            self._roll()
        return start, end

    def _roll(self) -> None:
        with self._file_guard:
            if self._fsync:
                os.fsync(self._file.fileno())
            self._file.close()
            with self._guard:
                self._current += 1
                self._size = 0
                self._file = (self.folder / _segment_name(self._current)).open("ab")
                self._durable = (self._current, 0)

    def sync(self) -> None:
        """fsync what the spooler appended since the last call (when ``fsync`` is on)."""
        if not self._fsync:
            return
        with self._file_guard:
            end = self.durable_end()
            if end == (self._current, self._synced):
                return
            os.fsync(self._file.fileno())
            self.fsyncs += 1
            self._synced = end[1]
            self._synced_end = end

    def synced_end(self) -> tuple[int, int]:
        """(segment, offset) up to which lines are fsynced (segments fsynced as they closed
        count: everything before the current segment when ``fsync`` is on)."""
        with self._guard:
            current = self._current
        return max(self._synced_end, (current, 0)) if self._fsync else (0, 0)

    def durable_end(self) -> tuple[int, int]:
        """(segment, offset) up to which lines are complete on disk."""
        with self._guard:
            return self._durable

    # -- shipper side ---------------------------------------------------------------------

    def checkpoint(self) -> tuple[int, int]:
        """Where shipping resumes: (segment, offset)."""
        try:
            text = (self.folder / "checkpoint").read_text().split()
            return int(text[0]), int(text[1])
        except (FileNotFoundError, IndexError, ValueError):
            numbers = self.segments()
            return (numbers[0] if numbers else self._current), 0

    def read(
        self, position: tuple[int, int], max_lines: int
    ) -> tuple[list[bytes], tuple[int, int]]:
        """Up to ``max_lines`` complete lines from ``position`` and the position after them.

        Moves past (and deletes) finished segments: ones the spooler left that have no
        complete line after ``position``.
        """
        number, offset = position
        while True:
            end_segment, end_offset = self.durable_end()
            limit = end_offset if number == end_segment else None
            lines, consumed = self._read_segment(number, offset, limit, max_lines)
            if lines or number >= end_segment:
                return lines, (number, offset + consumed)
            following = [n for n in self.segments() if n > number]
            if not following:
                return [], (number, offset)
            self._delete(number)
            number, offset = following[0], 0

    def _read_segment(
        self, number: int, offset: int, limit: int | None, max_lines: int
    ) -> tuple[list[bytes], int]:
        path = self.folder / _segment_name(number)
        try:
            with path.open("rb") as handle:
                handle.seek(offset)
                size = _READ_CHUNK if limit is None else min(_READ_CHUNK, limit - offset)
                chunk = handle.read(max(size, 0))
                # NOTE: a line longer than the chunk (one very large request) is read whole
                while b"\n" not in chunk:
                    end = offset + len(chunk)
                    size = _READ_CHUNK if limit is None else min(_READ_CHUNK, limit - end)
                    more = handle.read(size) if size > 0 else b""
                    if not more:
                        break
                    chunk += more
        except FileNotFoundError:
            return [], 0
        cut = chunk.rfind(b"\n")
        if cut < 0:
            return [], 0
        lines = chunk[: cut + 1].splitlines(keepends=True)[:max_lines]
        return lines, sum(len(line) for line in lines)

    def commit(self, position: tuple[int, int]) -> None:
        """Record that everything before ``position`` reached the database."""
        aside = self.folder / "checkpoint.tmp"
        aside.write_text(f"{position[0]} {position[1]}\n")
        os.replace(aside, self.folder / "checkpoint")
        if position[0] <= self._committed_segment:
            return  # NOTE: no segment left behind since the last commit: no folder listing
        for number in self.segments():
            if number < position[0]:
                self._delete(number)
        self._committed_segment = position[0]

    def _delete(self, number: int) -> None:
        if number >= self.durable_end()[0]:
            return  # the spooler still writes it
        (self.folder / _segment_name(number)).unlink(missing_ok=True)

    def close(self) -> None:
        """fsync (when on) and close the current segment, and release the folder."""
        with self._file_guard:
            if self._fsync:
                os.fsync(self._file.fileno())
            self._file.close()
        self._lock_file.close()


__all__ = ["Spool"]
