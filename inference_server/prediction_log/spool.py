"""The local spool between a worker's buffer and the database: framed records in recycled
segments.

Layout of one worker's folder (``<spool_dir>/worker-<k>``)::

    .lock                   flock held by the process that owns the folder
    0000000000000007.seg    segments: a file header, then framed records (appended)
    0000000000000008.seg
    0000000000000005.spare  shipped segments kept for reuse (at most ``MAX_SPARES``)
    checkpoint              "<segment> <offset> <crc>": everything before it reached the database

**Format (v2).** A segment starts with a 16-byte file header, :data:`FILE_MAGIC` and the
segment's number (little-endian u64). Each record (one prediction block, binary) follows as a
frame: a 20-byte header -- :data:`FRAME_MAGIC`, the segment's number (u64), the payload's
length (u32) and its ``zlib.crc32`` (u32) -- then the payload. A reader takes frames in order
and stops at the first one that is incomplete (the file ends inside it: a write cut by
``kill -9``), whose magic or segment number is wrong, or whose payload fails the CRC; such a
frame and everything after it in that segment are never read as data. Positions are
(segment, byte offset); the first record of a v2 segment is at offset :data:`HEADER_BYTES`
(a position at offset 0 means "the segment's first record").

**Recycling.** Deleting shipped segments made every append allocate new page-cache pages for
a growing file (most of the spooler's write cost); so a segment the shipper has passed is
renamed to a spare (``<its number>.spare``; beyond ``MAX_SPARES``, or larger than twice
``segment_bytes``, it is deleted), and a roll renames a spare to the next segment's name and
overwrites it from offset 0 (opened without truncation; the file header rewritten): the
spooler writes into pages the page cache already holds. Past the written end, a recycled file
still holds frames of its previous life; they carry a lower segment number, so a reader stops
there. Segment numbers only grow: a process starts at one past every segment, spare and
checkpoint it finds, so no file ever holds a stale frame with its current number.

**A failed write** (a full disk, an I/O error) raises from :meth:`Spool.append` with none of
its records in the spool: the bytes of it that reached the file are cut off again
(``ftruncate`` back to the last whole frame; if even that fails, the segment is left there and
the next append starts a new segment: a reader stops at the partial frame, and a frame of the
failed write that did reach the file whole is read too, its retry then a duplicate that the
database drops by the block's key). The caller
keeps the records and appends them again (:mod:`~inference_server.prediction_log.writer`).
A roll that fails after a successful append is tried again after the next one: the current
segment grows past ``segment_bytes`` meanwhile.

**Upgrade.** A segment that does not start with :data:`FILE_MAGIC` was written by the previous
release: newline-delimited JSON (blocks ``{...}`` or per-row records ``[...]``). It is read
line by line as before (complete lines only, each with its newline), so a spool left by the
old server ships after an upgrade.

The spooler thread appends whole frames (one ``writev`` per flush) and publishes the end: from
then on they survive a process kill (they are in the page cache). ``fsync``, when configured, is
the shipper thread's job (:meth:`Spool.sync`, for records the database has not taken within the
ship interval: :mod:`~inference_server.prediction_log.writer`): a slow disk then delays neither
the spooler's next pass nor, therefore, the ``kill -9`` bound. The shipper reads complete
records up to the end, ships them, then moves the checkpoint: one ``pwrite`` of a fixed-width
line (:func:`checkpoint_line`: both numbers padded to 20 digits and their CRC) over the previous
one, in a file kept open. It used to be written aside and renamed into place, which cost the
shipper a file creation and a rename per batch (on ext4 a rename over a file also starts the new
file's write-back): about 1 % of the observed server's CPU at saturation (``benchmarks.corun``,
RESULTS.md). A line that does not check out (a torn write on power loss) reads as no checkpoint:
shipping resumes at the oldest segment, which only replays records the database drops as
duplicates. A checkpoint of the previous release (two numbers, no CRC) is read as it is. A
process starts a new segment, so a frame cut by ``kill -9`` in the middle of a write is never
appended to. Replaying from the checkpoint may send records the database already has (a crash
between commit and checkpoint): the table's unique key drops them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Final

from modelyard.errors import ConfigurationError

_SUFFIX = ".seg"
_SPARE_SUFFIX = ".spare"
_READ_CHUNK = 4 * 1024 * 1024
_IOV_MAX = 1024

FILE_MAGIC: Final = b"MYSPOOL2"
"""The first bytes of a v2 segment (a segment without them holds JSON lines)."""
FRAME_MAGIC: Final = b"MYf2"
"""The first bytes of each frame header."""
_FILE_HEADER = struct.Struct("<8sQ")
_FRAME = struct.Struct("<4sQII")
HEADER_BYTES: Final = _FILE_HEADER.size
"""Bytes of a v2 segment's file header (the offset of its first record)."""
FRAME_BYTES: Final = _FRAME.size
"""Bytes of a frame header."""
MAX_SPARES: Final = 2
"""Shipped segments kept for reuse (each at most twice ``segment_bytes``)."""


def _segment_name(number: int) -> str:
    return f"{number:016d}{_SUFFIX}"


def _spare_name(number: int) -> str:
    return f"{number:016d}{_SPARE_SUFFIX}"


def frames(payloads: Sequence[bytes], segment: int) -> list[bytes]:
    """The pieces of the frames of ``payloads`` in segment ``segment``: each frame's header
    followed by its payload (not joined: written with one ``writev``)."""
    pieces: list[bytes] = []
    pack = _FRAME.pack
    for payload in payloads:
        pieces.append(pack(FRAME_MAGIC, segment, len(payload), zlib.crc32(payload)))
        pieces.append(payload)
    return pieces


def _write_all(fd: int, pieces: Sequence[bytes]) -> int:
    """Write ``pieces`` in order at the file position (``writev``, finishing short writes);
    the bytes written."""
    total = 0
    for first in range(0, len(pieces), _IOV_MAX):
        batch = pieces[first : first + _IOV_MAX]
        want = sum(len(p) for p in batch)
        done = os.writev(fd, batch)
        if done < want:  # NOTE: only on a signal or a full disk (which then raises below)
            rest = memoryview(b"".join(batch))[done:]
            while rest:
                rest = rest[os.write(fd, rest) :]
        total += want
    return total


class Spool:
    """One worker's spool folder (see the module docstring).

    Args:
        folder: the worker's spool folder (created).
        segment_bytes: roll to a new segment past this size.
        fsync: fsync from :meth:`sync` and when a segment is closed.

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
        self._spare_guard = threading.Lock()
        """Held while spares are taken or added (spooler and shipper)."""
        self._synced_end = (0, 0)
        """(segment, offset) up to which the segments are fsynced (shipper side)."""
        self._closed: list[tuple[int, int, int]] = []
        """Segments the spooler has left that no fsync has covered yet (``fsync`` on):
        (number, end, descriptor). :meth:`sync` fsyncs them with the current one; :meth:`commit`
        closes, without an fsync, the ones the database now holds entirely."""
        self.fsyncs = 0
        """Calls of :meth:`sync` that fsynced (segments fsynced as they close not counted)."""
        self._spares = sorted(
            int(p.name[: -len(_SPARE_SUFFIX)])
            for p in folder.glob(f"*{_SPARE_SUFFIX}")
            if p.name[: -len(_SPARE_SUFFIX)].isdigit()
        )
        self._ends: dict[int, int] = {}
        """Where this process's finished segments end (recycled files are longer)."""
        if fsync:  # NOTE: a killed process may have left its last segment unsynced
            for number in self.segments():
                with (folder / _segment_name(number)).open("rb") as left:
                    os.fsync(left.fileno())
        saved = self._saved_checkpoint()
        latest = max([0, *self.segments(), *self._spares, saved[0] if saved else 0])
        self._current = latest + 1
        self._fd = self._open_segment(self._current)
        self._size = HEADER_BYTES
        self._durable = (self._current, HEADER_BYTES)
        self._committed_segment = -1
        """The segment of the last commit that retired the ones before it (shipper only)."""
        self._checkpoint_fd: int | None = None
        """The checkpoint file, open for writing from the first commit (shipper only)."""
        self._size_bound: int | None = None
        """An upper bound of :meth:`disk_bytes` (spooler only; see :meth:`holds_at_least`)."""
        self._torn = False
        """A failed write left bytes after the last whole frame (spooler only)."""

    def segments(self) -> list[int]:
        """The numbers of the segments on disk (not the spares), oldest first."""
        return sorted(int(p.stem) for p in self.folder.glob(f"*{_SUFFIX}") if p.stem.isdigit())

    def spares(self) -> list[int]:
        """The former numbers of the spare files kept for reuse."""
        with self._spare_guard:
            return list(self._spares)

    def holds_at_least(self, limit: int) -> bool:
        """Whether :meth:`disk_bytes` is at least ``limit`` (spooler thread). The folder is
        listed only when an upper bound -- the last listing plus every byte appended since
        (recycling only lowers the real size) -- reaches ``limit``: far below the cap, a pass
        costs no directory listing (about 0.13 ms of GIL per pass on the harness's machine)."""
        if self._size_bound is not None and self._size_bound < limit:
            return False
        self._size_bound = self.disk_bytes()
        return self._size_bound >= limit

    def disk_bytes(self) -> int:
        """Bytes of the segments not yet recycled (shipped records of those included): the
        current one up to its end, this process's finished ones up to where they ended, others
        by their file size. Spares are not counted (at most ``MAX_SPARES`` files of at most
        twice ``segment_bytes``)."""
        with self._guard:
            current, size = self._current, self._size
            ends = dict(self._ends)
        total = 0
        for number in self.segments():
            if number == current:
                total += size
            elif number in ends:
                total += ends[number]
            else:
                try:
                    total += (self.folder / _segment_name(number)).stat().st_size
                except FileNotFoundError:
                    continue
        return total

    # -- spooler side ---------------------------------------------------------------------

    def _open_segment(self, number: int) -> int:
        """Open segment ``number`` for writing from offset 0 (a spare renamed when there is
        one, else a new file) and write its file header; the descriptor."""
        path = self.folder / _segment_name(number)
        with self._spare_guard:
            spare = self._spares.pop() if self._spares else None
        if spare is not None:
            # NOTE: a spare removed behind our back: a new file instead
            with contextlib.suppress(FileNotFoundError):
                os.rename(self.folder / _spare_name(spare), path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            _write_all(fd, [_FILE_HEADER.pack(FILE_MAGIC, number)])
        except OSError:
            os.close(fd)  # NOTE: the file stays; the next attempt opens it again from 0
            raise
        return fd

    def append(self, records: Sequence[bytes]) -> tuple[tuple[int, int], tuple[int, int]]:
        """Append ``records`` as frames (one write) and publish the new end.

        Returns:
            The (segment, offset) positions where the frames start and end.

        Raises:
            OSError: the write failed (a full disk, an I/O error): none of ``records`` is in
                the spool -- what part of them reached the file is cut off again, or, when
                that fails too, the segment is left and the next append starts a new one --
                so the caller keeps them and appends them again later.
        """
        if self._torn:
            self._roll()  # NOTE: raises while the disk is still full: the caller retries
        start = (self._current, self._size)
        try:
            written = _write_all(self._fd, frames(records, self._current))
        except OSError:
            self._cut_back()
            raise
        self._size += written
        if self._size_bound is not None:
            self._size_bound += written + HEADER_BYTES  # NOTE: a roll's new header, at most
        end = (self._current, self._size)
        with self._guard:
            self._durable = end
        if self._size >= self._segment_bytes:
            # NOTE: the records are in; a roll failing now (no room for the next segment) is
            # tried again after the next append
            with contextlib.suppress(OSError):
                self._roll()
        return start, end

    def _cut_back(self) -> None:
        """After a failed write: end the current segment at its last whole frame again (a
        partial frame would read as the end of the segment, hiding every later one), or, if
        that fails too, leave it for a new one at the next append (a reader then stops at the
        partial frame, which ends this segment: nothing published is after it)."""
        try:
            os.ftruncate(self._fd, self._size)
            os.lseek(self._fd, self._size, os.SEEK_SET)
        except OSError:
            self._torn = True

    def _roll(self) -> None:
        following = self._current + 1
        fd = self._open_segment(following)  # NOTE: first: if it fails, nothing changed
        with self._file_guard:
            if self._fsync:
                # NOTE: not fsynced here: on the spooler a whole segment's write-back would
                # delay its next pass (the kill -9 window), and the shipper usually ships the
                # segment before it would need one (see _closed).
                self._closed.append((self._current, self._size, self._fd))
            else:
                os.close(self._fd)
            with self._guard:
                self._ends[self._current] = self._size
                self._current = following
                self._size = HEADER_BYTES
                self._fd = fd
                self._durable = (following, HEADER_BYTES)
        self._torn = False

    def sync(self) -> None:
        """fsync what the spooler appended since the last call (when ``fsync`` is on)."""
        if not self._fsync:
            return
        with self._file_guard:
            end = self.durable_end()
            closed, self._closed = self._closed, []
            if end == self._synced_end and not closed:
                return
            for _, _, fd in closed:
                os.fsync(fd)
                os.close(fd)
            os.fsync(self._fd)
            self.fsyncs += 1
            self._synced_end = end

    def synced_end(self) -> tuple[int, int]:
        """(segment, offset) up to which the spool needs no fsync (``fsync`` on): everything
        before the first segment the spooler left unsynced (or, none, before the current one)
        and what :meth:`sync` covered. Segments shipped entirely count (the database holds
        them durably)."""
        if not self._fsync:
            return (0, 0)
        with self._guard:
            current = self._current
        with self._file_guard:
            first = self._closed[0][0] if self._closed else current
        return max(self._synced_end, (first, HEADER_BYTES))

    def durable_end(self) -> tuple[int, int]:
        """(segment, offset) up to which records are complete on disk."""
        with self._guard:
            return self._durable

    # -- shipper side ---------------------------------------------------------------------

    def _saved_checkpoint(self) -> tuple[int, int] | None:
        try:
            return parse_checkpoint((self.folder / "checkpoint").read_bytes())
        except FileNotFoundError:
            return None

    def checkpoint(self) -> tuple[int, int]:
        """Where shipping resumes: (segment, offset)."""
        saved = self._saved_checkpoint()
        if saved is not None:
            return saved
        numbers = self.segments()
        return (numbers[0] if numbers else self._current), 0

    def read(
        self, position: tuple[int, int], max_lines: int
    ) -> tuple[list[bytes], tuple[int, int]]:
        """Up to ``max_lines`` complete records from ``position`` and the position after them
        (v2: the frames' payloads; previous release: lines, each with its newline).

        Moves past (and recycles) finished segments: ones the spooler left that have no
        complete record after ``position``.
        """
        number, offset = position
        while True:
            end_segment, end_offset = self.durable_end()
            limit = end_offset if number == end_segment else None
            records, after = self._read_segment(number, offset, limit, max_lines)
            if records or number >= end_segment:
                return records, (number, after)
            following = [n for n in self.segments() if n > number]
            if not following:
                return [], (number, after)
            self._retire(number)
            number, offset = following[0], 0

    def _read_segment(
        self, number: int, offset: int, limit: int | None, max_lines: int
    ) -> tuple[list[bytes], int]:
        """The records of segment ``number`` from ``offset`` (up to ``limit``) and the offset
        after them."""
        try:
            with (self.folder / _segment_name(number)).open("rb") as handle:
                head = handle.read(len(FILE_MAGIC))
                if not head:  # NOTE: just created: nothing yet, whichever format
                    return [], offset
                if FILE_MAGIC.startswith(head):
                    return _read_frames(handle.fileno(), number, offset, limit, max_lines)
                lines = _read_lines(handle, offset, limit, max_lines)
        except FileNotFoundError:
            return [], offset
        return lines, offset + sum(len(line) for line in lines)

    def commit(self, position: tuple[int, int]) -> None:
        """Record that everything before ``position`` reached the database (and close the
        left segments it covers without an fsync: their records are durable there)."""
        if self._checkpoint_fd is None:
            self._checkpoint_fd = os.open(
                self.folder / "checkpoint", os.O_WRONLY | os.O_CREAT, 0o644
            )
        os.pwrite(self._checkpoint_fd, checkpoint_line(position), 0)
        if self._closed:
            with self._file_guard:
                shipped = [c for c in self._closed if (c[0], c[1]) <= position]
                self._closed = [c for c in self._closed if (c[0], c[1]) > position]
            for _, _, fd in shipped:
                os.close(fd)
        if position[0] <= self._committed_segment:
            return  # NOTE: no segment left behind since the last commit: no folder listing
        for number in self.segments():
            if number < position[0]:
                self._retire(number)
        self._committed_segment = position[0]

    def _retire(self, number: int) -> None:
        """Recycle a shipped segment as a spare (or delete it: spares full, or too large)."""
        if number >= self.durable_end()[0]:
            return  # the spooler still writes it
        path = self.folder / _segment_name(number)
        with self._guard:
            self._ends.pop(number, None)
        with self._spare_guard:
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                return
            if len(self._spares) < MAX_SPARES and size <= 2 * self._segment_bytes:
                os.rename(path, self.folder / _spare_name(number))
                self._spares.append(number)
                return
        path.unlink(missing_ok=True)

    def close(self) -> None:
        """fsync (when on) and close the current segment and the left ones no fsync covered,
        and release the folder."""
        with self._file_guard:
            for _, _, fd in self._closed:
                os.fsync(fd)
                os.close(fd)
            self._closed = []
            if self._fsync:
                os.fsync(self._fd)
            os.close(self._fd)
        if self._checkpoint_fd is not None:
            os.close(self._checkpoint_fd)
            self._checkpoint_fd = None
        self._lock_file.close()


def checkpoint_line(position: tuple[int, int]) -> bytes:
    """The checkpoint file's content for ``position``: always the same length, so each write
    covers the whole previous one.

    >>> checkpoint_line((7, 1234))
    b'                   7                 1234 78c15085\\n'
    >>> parse_checkpoint(checkpoint_line((7, 1234)))
    (7, 1234)
    """
    text = f"{position[0]:>20} {position[1]:>20}"
    return f"{text} {zlib.crc32(text.encode()):08x}\n".encode()


def parse_checkpoint(data: bytes) -> tuple[int, int] | None:
    """The position a checkpoint file holds; None when it holds none that checks out.

    >>> parse_checkpoint(b"7 1234\\n")  # the previous release's format
    (7, 1234)
    >>> parse_checkpoint(checkpoint_line((8, 20))[:30] + checkpoint_line((7, 1234))[30:])
    >>> parse_checkpoint(b"")
    """
    fields = data.split()
    try:
        if len(fields) == 2:
            return int(fields[0]), int(fields[1])
        if len(fields) == 3:
            text = data[: data.rindex(b" ")]
            if int(fields[2], 16) == zlib.crc32(text):
                return int(fields[0]), int(fields[1])
    except ValueError:
        pass
    return None


def _read_frames(
    fd: int, number: int, offset: int, limit: int | None, max_records: int
) -> tuple[list[bytes], int]:
    """The payloads of the valid frames of segment ``number`` from ``offset`` (the first
    record when ``offset`` is inside the file header), stopping at ``limit``, at
    ``max_records``, or at the first incomplete, torn or stale frame; and the offset after
    the last one taken."""
    end = os.fstat(fd).st_size if limit is None else limit
    position = max(offset, HEADER_BYTES)
    records: list[bytes] = []
    buffer = b""
    base = position
    unpack = _FRAME.unpack_from
    while len(records) < max_records and position + FRAME_BYTES <= end:
        if position + FRAME_BYTES > base + len(buffer):
            buffer = os.pread(fd, min(_READ_CHUNK, end - position), position)
            base = position
            if len(buffer) < FRAME_BYTES:
                break
        magic, segment, length, crc = unpack(buffer, position - base)
        after = position + FRAME_BYTES + length
        if magic != FRAME_MAGIC or segment != number or after > end:
            break
        if after > base + len(buffer):
            buffer = os.pread(fd, max(min(_READ_CHUNK, end - position), after - position), position)
            base = position
            if len(buffer) < after - position:
                break
        payload = buffer[position - base + FRAME_BYTES : after - base]
        if zlib.crc32(payload) != crc:
            break
        records.append(payload)
        position = after
    return records, position


def _read_lines(handle: IO[bytes], offset: int, limit: int | None, max_lines: int) -> list[bytes]:
    """Up to ``max_lines`` complete lines of a segment of the previous release (JSON lines)
    from ``offset``, each with its newline."""
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
    cut = chunk.rfind(b"\n")
    if cut < 0:
        return []
    return chunk[: cut + 1].splitlines(keepends=True)[:max_lines]


__all__ = [
    "FILE_MAGIC",
    "FRAME_BYTES",
    "FRAME_MAGIC",
    "HEADER_BYTES",
    "MAX_SPARES",
    "Spool",
    "frames",
]
