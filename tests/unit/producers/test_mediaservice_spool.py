"""The durable spool: order, delivery marks, reopening, crash recovery (torn last line), compaction, the lock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from producers.mediaservice import spool as spool_module
from producers.mediaservice.spool import (
    ACK_NAME,
    LOG_NAME,
    Spool,
    SpoolCorruptError,
    SpoolEntry,
    SpoolError,
    encode_line,
    read_pending,
)

VALUE = b"\xc3\x01binary\nwith newline\x00"


@pytest.fixture
def opened(tmp_path: Path) -> Iterator[Spool]:
    spool = Spool.open(tmp_path / "spool")
    try:
        yield spool
    finally:
        spool.close()


def fill(spool: Spool, count: int) -> list[SpoolEntry]:
    return [spool.append("t.calls.events", f"call-{i}", VALUE + bytes([i])) for i in range(count)]


def test_entries_come_back_in_order_with_their_bytes(opened: Spool) -> None:
    written = fill(opened, 3)
    assert [e.seq for e in written] == [1, 2, 3]
    assert opened.pending(10) == written
    assert opened.pending(2) == written[:2]
    assert written[1] == SpoolEntry(2, "t.calls.events", "call-1", VALUE + b"\x01")


def test_delivered_entries_are_gone_and_numbering_continues_after_reopen(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    spool = Spool.open(directory)
    written = fill(spool, 3)
    spool.ack(2)
    assert spool.pending(10) == written[2:]
    spool.close()
    again = Spool.open(directory)
    try:
        assert again.pending(10) == written[2:]
        assert again.append("t", "k", b"v").seq == 4
        again.ack(4)
        assert again.pending_count == 0
        assert (directory / LOG_NAME).stat().st_size == 0  # all delivered: truncated
    finally:
        again.close()
    last = Spool.open(directory)
    try:
        assert last.append("t", "k", b"v").seq == 5  # the ack file remembers where numbering was
    finally:
        last.close()


def test_a_torn_last_line_is_cut_off_at_open(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    spool = Spool.open(directory)
    written = fill(spool, 2)
    spool.close()
    log = directory / LOG_NAME
    intact = log.stat().st_size
    torn = encode_line(SpoolEntry(3, "t", "k", b"lost"))[:-7]  # a crash in the middle of the append
    with log.open("ab") as out:
        out.write(torn)
    assert read_pending(directory) == written  # inspection ignores it
    again = Spool.open(directory)
    try:
        assert again.pending(10) == written
        assert log.stat().st_size == intact
        assert again.append("t", "k", b"next").seq == 3
    finally:
        again.close()


def test_a_last_line_with_a_bad_checksum_is_cut_off(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    spool = Spool.open(directory)
    written = fill(spool, 2)
    spool.close()
    line = bytearray(encode_line(SpoolEntry(3, "t", "k", b"zeroed")))
    line[12:20] = b"\x00" * 8
    with (directory / LOG_NAME).open("ab") as out:
        out.write(bytes(line))
    again = Spool.open(directory)
    try:
        assert again.pending(10) == written
    finally:
        again.close()


def test_a_damaged_line_before_the_last_stops_the_open(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    spool = Spool.open(directory)
    fill(spool, 3)
    spool.close()
    log = directory / LOG_NAME
    data = bytearray(log.read_bytes())
    second = data.index(b"\n") + 1
    data[second + 15] ^= 0x01
    log.write_bytes(bytes(data))
    with pytest.raises(SpoolCorruptError, match=rf"spool\.log: entry at byte {second} is damaged \(CRC mismatch\)"):
        Spool.open(directory)
    with pytest.raises(SpoolCorruptError):  # the failed open released the lock: not "in use"
        Spool.open(directory)


def test_a_damaged_ack_file_stops_the_open(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    Spool.open(directory).close()
    (directory / ACK_NAME).write_text("seven\n")
    with pytest.raises(SpoolCorruptError, match="expected a sequence number, found 'seven'"):
        Spool.open(directory)


def test_a_large_delivered_prefix_is_compacted_away(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spool_module, "COMPACT_BYTES", 200)
    directory = tmp_path / "spool"
    spool = Spool.open(directory)
    try:
        written = fill(spool, 10)
        spool.ack(7)
        remaining = b"".join(encode_line(e) for e in written[7:])
        assert (directory / LOG_NAME).read_bytes() == remaining
        assert spool.pending(10) == written[7:]
        assert spool.append("t", "k", b"after").seq == 11
        assert [e.seq for e in read_pending(directory)] == [8, 9, 10, 11]
    finally:
        spool.close()


def test_one_process_per_spool_directory(opened: Spool) -> None:
    with pytest.raises(SpoolError, match="is in use by another process"):
        Spool.open(opened.directory)


def test_acking_an_old_sequence_again_changes_nothing(opened: Spool) -> None:
    written = fill(opened, 2)
    opened.ack(1)
    opened.ack(1)
    opened.ack(0)
    assert opened.pending(10) == written[1:]
