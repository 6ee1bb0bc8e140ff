"""The spool's v2 format on real files: framed, checksummed records in recycled segments.

A reader must stop at a torn frame (a write cut by ``kill -9``) and must never take the stale
frames a recycled segment holds past its written end; spares stay bounded; a segment of the
previous release (JSON lines) is still read line by line.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from inference_server.prediction_log.spool import (
    FRAME_BYTES,
    HEADER_BYTES,
    MAX_SPARES,
    Spool,
    checkpoint_line,
    parse_checkpoint,
)
from tests.file_limits import file_size_limit
from tests.inference_server.prediction_log.conftest import FullDisk


def _segment(folder: Path, number: int) -> Path:
    return folder / f"{number:016d}.seg"


def _drain(spool: Spool, position: tuple[int, int]) -> tuple[list[bytes], tuple[int, int]]:
    """Every record readable from ``position`` (committing as the shipper does)."""
    records: list[bytes] = []
    while True:
        got, after = spool.read(position, 3)
        if after != position:
            spool.commit(after)
        position = after
        if not got:
            return records, position
        records += got


def test_binary_records_with_newlines_round_trip(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "w", segment_bytes=1 << 20, fsync=True)
    records = [b"\n", b"a\nb\n", b"", bytes(range(256)) * 3, b"\x00" * 10]
    start, end = spool.append(records)
    assert start == (1, HEADER_BYTES)
    assert end == (1, HEADER_BYTES + len(records) * FRAME_BYTES + sum(map(len, records)))
    spool.sync()
    got, after = spool.read(spool.checkpoint(), 100)
    assert got == records
    assert after == end
    assert spool.read((1, HEADER_BYTES), 2) == (
        records[:2],
        (1, HEADER_BYTES + 2 * FRAME_BYTES + 5),
    )
    spool.close()


def test_a_torn_frame_is_not_read_and_later_frames_in_a_new_segment_are(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    spool = Spool(folder, segment_bytes=1 << 20, fsync=False)
    spool.append([b"first", b"second record"])
    spool.close()
    # kill -9 in the middle of a write: the header and part of the payload reached the file.
    path = _segment(folder, 1)
    os.truncate(path, path.stat().st_size - 4)
    again = Spool(folder, segment_bytes=1 << 20, fsync=False)
    assert again.segments() == [1, 2]
    again.append([b"third"])
    assert _drain(again, again.checkpoint())[0] == [b"first", b"third"]
    again.close()


def test_a_frame_failing_its_checksum_ends_the_segment(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    spool = Spool(folder, segment_bytes=1 << 20, fsync=False)
    spool.append([b"good", b"flipped", b"after"])
    spool.close()
    with _segment(folder, 1).open("r+b") as handle:  # one payload byte of "flipped"
        handle.seek(HEADER_BYTES + 2 * FRAME_BYTES + len(b"good"))
        handle.write(b"F")
    again = Spool(folder, segment_bytes=1 << 20, fsync=False)
    again.append([b"new"])
    assert _drain(again, again.checkpoint())[0] == [b"good", b"new"]
    again.close()


def test_stale_frames_of_a_recycled_segment_are_never_read(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    record = bytes(range(200))
    spool = Spool(folder, segment_bytes=4096, fsync=False)
    spool.append([record] * 30)  # segment 1: 30 frames; the spooler rolls to segment 2
    got, position = _drain(spool, spool.checkpoint())
    assert got == [record] * 30
    spool.append([b"two"] * 20)  # into segment 2 (a new file)
    got, position = _drain(spool, position)  # passes segment 1 over: recycled
    assert got == [b"two"] * 20
    assert spool.spares() == [1]
    inode = (folder / "0000000000000001.spare").stat().st_ino
    spool.append([record] * 20)  # segment 2 rolls to 3: the spare, overwritten from 0
    assert spool.durable_end()[0] == 3
    assert _segment(folder, 3).stat().st_ino == inode
    assert spool.spares() == []
    # One record of the same size as the stale ones: the next stale frame starts exactly at
    # the written end, with a valid magic and checksum, but segment 1's number.
    spool.append([b"x" * len(record)])
    written = spool.durable_end()[1]
    assert _segment(folder, 3).stat().st_size > written + FRAME_BYTES
    spool.close()
    again = Spool(folder, segment_bytes=4096, fsync=False)  # a restart (after a kill)
    assert again.durable_end()[0] == 4
    got, after = _drain(again, again.checkpoint())
    assert got == [record] * 20 + [b"x" * len(record)]
    again.append([b"four"])
    got, after = _drain(again, after)
    assert got == [b"four"]
    again.close()


def test_spares_are_bounded_and_segments_are_reused(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    # NOTE: 350, not 300: a segment then never exceeds twice segment_bytes (at most 616 bytes
    # here), so every shipped one is kept as a spare and no file is ever deleted. With 300 the
    # five-record segments were deleted and new files created, and the inode count below held
    # only because Linux gave the next file the freed inode -- until another process (a second
    # pytest worker) took it first.
    spool = Spool(folder, segment_bytes=350, fsync=False)
    position = spool.checkpoint()
    inodes: set[int] = set()
    for i in range(40):
        spool.append([b"r" * 100] * (1 + i % 5))
        inodes.add(_segment(folder, spool.durable_end()[0]).stat().st_ino)
        _, position = _drain(spool, position)
        spares = sorted(folder.glob("*.spare"))
        assert len(spares) <= MAX_SPARES
        assert len(spool.spares()) == len(spares)
    assert spool.durable_end()[0] > 30  # many segments, few files
    assert len(inodes) <= MAX_SPARES + 2
    assert spool.segments() == [spool.durable_end()[0]]
    # disk_bytes: only the current segment's written bytes, not the spares'.
    assert spool.disk_bytes() == spool.durable_end()[1]
    spool.close()
    # Many shipped segments at once (the database was down): only MAX_SPARES are kept.
    spool = Spool(folder, segment_bytes=300, fsync=False)
    for _ in range(10):
        spool.append([b"r" * 400])
    assert len(spool.segments()) >= 10
    _drain(spool, spool.checkpoint())
    assert len(list(folder.glob("*.spare"))) == MAX_SPARES
    assert len(spool.segments()) == 1
    spool.close()


def test_a_segment_larger_than_twice_the_segment_size_is_deleted_not_kept(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "w"
    spool = Spool(folder, segment_bytes=100, fsync=False)
    spool.append([b"r" * 300])  # one append past 2 x 100 bytes: its segment is oversized
    spool.append([b"r" * 50])
    oversized = spool.segments()[0]
    assert (folder / f"{oversized:016d}.seg").stat().st_size > 2 * 100
    _drain(spool, spool.checkpoint())
    assert oversized not in spool.spares()
    assert not (folder / f"{oversized:016d}.seg").exists()
    assert not list(folder.glob("*.spare"))
    spool.close()


def test_a_restart_numbers_segments_past_spares_and_the_checkpoint(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    spool = Spool(folder, segment_bytes=100, fsync=False)
    for _ in range(5):
        spool.append([b"r" * 120])
    _, position = _drain(spool, spool.checkpoint())
    spool.close()
    for path in folder.glob("*.seg"):
        path.unlink()  # only spares and the checkpoint left
    again = Spool(folder, segment_bytes=100, fsync=False)
    assert again.durable_end()[0] > max(position[0], *again.spares())
    again.append([b"after"])
    assert _drain(again, again.checkpoint())[0] == [b"after"]
    again.close()


def test_a_json_lines_segment_of_the_previous_release_is_read_line_by_line(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "w"
    folder.mkdir()
    _segment(folder, 3).write_bytes(b'{"a":1}\n["b"]\n{"torn')
    spool = Spool(folder, segment_bytes=1 << 20, fsync=False)
    assert spool.durable_end() == (4, HEADER_BYTES)
    spool.append([b"\x81\xa1k\x01"])
    got, _ = _drain(spool, spool.checkpoint())
    assert got == [b'{"a":1}\n', b'["b"]\n', b"\x81\xa1k\x01"]
    spool.close()


def test_left_segments_are_fsynced_by_the_shipper_only_while_unshipped(tmp_path: Path) -> None:
    # The spooler never fsyncs at a roll (a whole segment's write-back would delay its next
    # pass); what it left counts as unsynced until an fsync covers it or the database holds it.
    spool = Spool(tmp_path / "w", segment_bytes=256, fsync=True)
    spool.append([b"x" * 300])  # rolls: segment 1 left unsynced
    spool.append([b"y" * 300])  # rolls again: segment 2 left
    end = spool.durable_end()
    assert spool.fsyncs == 0
    assert spool.synced_end() == (1, HEADER_BYTES) < end
    spool.commit((2, HEADER_BYTES))  # the database holds segment 1 (not 2): closed, no fsync
    assert spool.fsyncs == 0
    assert spool.synced_end() == (2, HEADER_BYTES)
    spool.sync()  # the shipper's fsync covers segment 2 and the current one
    assert spool.fsyncs == 1
    assert spool.synced_end() == end
    spool.append([b"z" * 300])  # left again; close() fsyncs what nobody covered
    spool.close()
    again = Spool(tmp_path / "w", segment_bytes=256, fsync=True)
    records, _ = _drain(again, (2, 0))
    assert records == [b"y" * 300, b"z" * 300]
    again.close()


def test_holds_at_least_agrees_with_disk_bytes(tmp_path: Path) -> None:
    # The spooler's cap check lists the folder only near the cap; its answer must still be
    # the listing's: appends, rolls and recycled segments in every order.
    spool = Spool(tmp_path / "w", segment_bytes=300, fsync=False)
    position = spool.checkpoint()
    for i in range(60):
        spool.append([b"r" * (20 + 37 * (i % 7))] * (1 + i % 3))
        if i % 4 == 3:
            _, position = _drain(spool, position)
        size = spool.disk_bytes()
        for limit in (1024, size, size + 1, 2 * size + 1, 300):
            assert spool.holds_at_least(limit) == (size >= limit), (i, limit, size)
    spool.close()


def test_the_checkpoint_is_overwritten_in_place_and_a_torn_one_replays(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    spool = Spool(folder, segment_bytes=1 << 20, fsync=False)
    _, end = spool.append([b"a", b"b"])
    spool.commit(end)
    spool.commit((1, 0))  # a shorter line after a longer one leaves no stale tail
    assert spool.checkpoint() == (1, 0)
    spool.commit(end)
    spool.close()
    line = (folder / "checkpoint").read_bytes()
    assert line == checkpoint_line(end)
    reopened = Spool(folder, segment_bytes=1 << 20, fsync=False)
    assert reopened.checkpoint() == end
    reopened.close()
    # The previous release's checkpoint (two numbers, no CRC) is read as it is.
    (folder / "checkpoint").write_text(f"{end[0]} {end[1]}\n")
    assert parse_checkpoint((folder / "checkpoint").read_bytes()) == end
    # A torn line (power lost mid-write) reads as none: shipping replays the oldest segment.
    (folder / "checkpoint").write_bytes(checkpoint_line((3, 5))[:25] + line[25:])
    assert parse_checkpoint((folder / "checkpoint").read_bytes()) is None
    again = Spool(folder, segment_bytes=1 << 20, fsync=False)
    assert again.checkpoint() == (1, 0)
    assert _drain(again, again.checkpoint())[0] == [b"a", b"b"]
    again.close()


def test_a_failed_write_leaves_nothing_of_its_records_and_the_next_one_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FullDisk(monkeypatch)
    folder = tmp_path / "w"
    spool = Spool(folder, segment_bytes=1 << 20, fsync=False)
    _, end = spool.append([b"one", b"two"])
    disk.full = True
    with pytest.raises(OSError, match="No space left"):
        spool.append([b"lost then retried"])
    assert spool.durable_end() == end
    assert _segment(folder, 1).stat().st_size == end[1]  # the partial frame is cut off
    disk.full = False
    spool.append([b"lost then retried", b"three"])
    assert _drain(spool, spool.checkpoint())[0] == [b"one", b"two", b"lost then retried", b"three"]
    spool.close()


def test_a_segment_that_cannot_be_cut_back_is_left_for_a_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FullDisk(monkeypatch)
    folder = tmp_path / "w"
    spool = Spool(folder, segment_bytes=1 << 20, fsync=False)
    spool.append([b"one"])

    def no_truncate(fd: int, length: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "ftruncate", no_truncate)
    disk.full = True
    with pytest.raises(OSError, match="No space left"):
        spool.append([b"two"])
    with pytest.raises(OSError, match="No space left"):  # the new segment's header fails too
        spool.append([b"two"])
    disk.full = False
    spool.append([b"two"])
    assert spool.durable_end()[0] == 2  # a new segment; segment 1 ends in a partial frame
    assert _drain(spool, spool.checkpoint())[0] == [b"one", b"two"]
    spool.close()
    again = Spool(folder, segment_bytes=1 << 20, fsync=False)  # a restart reads the same
    assert _drain(again, again.checkpoint())[0] == []  # everything was committed
    again.close()


def test_a_roll_that_fails_after_an_append_keeps_the_records_and_rolls_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "w"
    spool = Spool(folder, segment_bytes=64, fsync=False)
    real_open = os.open
    refuse = {"on": True}

    def open_segment(path: os.PathLike[str] | str, flags: int, mode: int = 0o777) -> int:
        if refuse["on"] and str(path).endswith(".seg"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", open_segment)
    start, end = spool.append([b"a" * 100])  # past segment_bytes: the roll fails, quietly
    assert (start[0], end[0]) == (1, 1)
    spool.append([b"b"])  # still segment 1
    refuse["on"] = False
    _, end = spool.append([b"c"])  # the roll after this append works
    assert spool.durable_end() == (2, HEADER_BYTES)
    assert _drain(spool, spool.checkpoint())[0] == [b"a" * 100, b"b", b"c"]
    spool.close()


def test_a_short_write_refused_by_the_kernel_is_cut_back(tmp_path: Path) -> None:
    """The same on a real failure: under the file size limit
    (:func:`~tests.file_limits.file_size_limit`) ``writev`` writes part of the frames, then the
    rest fails with EFBIG."""
    folder = tmp_path / "w"
    spool = Spool(folder, segment_bytes=1 << 20, fsync=False)
    _, end = spool.append([b"one"])
    with file_size_limit(end[1] + 10), pytest.raises(OSError, match="File too large"):
        spool.append([b"x" * 100])
    assert _segment(folder, 1).stat().st_size == end[1]
    spool.append([b"two"])
    assert _drain(spool, spool.checkpoint())[0] == [b"one", b"two"]
    spool.close()
