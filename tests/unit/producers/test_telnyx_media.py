"""The Telnyx per-stream assembler: formats, reorder, duplicates, gaps, track filter, aggregation."""

from __future__ import annotations

import pytest

from producers.telnyx.errors import FrameError, UnsupportedEncodingError
from producers.telnyx.media import AudioFormat, Packet, Piece, StreamAssembler, audio_format

PCMU = audio_format("PCMU", 8000, 1)


def packet(n: int, *, track: str = "inbound", ts: int | None = -1, size: int = 160, order: int | None = -1) -> Packet:
    """Packet number ``n`` (1-based): 20 ms of PCMU whose bytes all equal n, timestamp 20*(n-1) ms by default."""
    return Packet(
        track=track,
        order=n if order == -1 else order,
        timestamp_ms=20 * (n - 1) if ts == -1 else ts,
        payload=bytes([n % 256]) * size,
        received_at_ms=1_000 + n,
    )


def run(assembler: StreamAssembler, packets: list[Packet]) -> list[Piece]:
    out = []
    for p in packets:
        out.extend(assembler.push(p))
    return out + assembler.flush()


def test_formats_map_encodings_to_codec_rate_and_width() -> None:
    assert audio_format("PCMU", 8000, 1) == AudioFormat("PCMU", 8000, 1, 1.0)
    assert audio_format("audio/x-mulaw", None, 1) == AudioFormat("PCMU", 8000, 1, 1.0)
    assert audio_format("audio/x-alaw", 8000, 1) == AudioFormat("PCMA", 8000, 1, 1.0)
    assert audio_format("L16", 16000, 1) == AudioFormat("L16_BE", 16000, 1, 2.0)
    assert audio_format("L16", None, 1).sample_rate == 8000


def test_g722_is_16_khz_audio_although_its_rtp_clock_says_8000() -> None:
    g722 = audio_format("G722", 8000, 1)
    assert (g722.codec, g722.sample_rate) == ("G722", 16000)
    assert g722.samples_in(b"\x00" * 160) == 320  # 20 ms at 64 kbit/s = 320 samples at 16 kHz


def test_l16_samples_are_two_big_endian_bytes_per_channel() -> None:
    mono, stereo = audio_format("L16", 16000, 1), audio_format("L16", 16000, 2)
    assert mono.samples_in(b"\x00" * 640) == 320
    assert stereo.samples_in(b"\x00" * 640) == 160
    with pytest.raises(FrameError, match="L16_BE payload of 641 bytes"):
        mono.samples_in(b"\x00" * 641)
    with pytest.raises(FrameError, match="payload of 0 bytes"):
        mono.samples_in(b"")


@pytest.mark.parametrize("encoding", ["OPUS", "AMR-WB", "speex", "pcm"])
def test_encodings_that_cannot_be_aggregated_are_refused_by_name(encoding: str) -> None:
    with pytest.raises(UnsupportedEncodingError, match=repr(encoding)):
        audio_format(encoding, 8000, 1)


def test_in_order_packets_aggregate_to_chunk_ms_and_the_tail_is_flushed() -> None:
    assembler = StreamAssembler(PCMU, chunk_ms=100, reorder_window=3)
    pieces = run(assembler, [packet(n) for n in range(1, 13)])  # 12 x 20 ms
    assert [(p.sequence, p.start_sample, p.samples, p.media_timestamp_ms) for p in pieces] == [
        (0, 0, 800, 0),
        (1, 800, 800, 100),
        (2, 1600, 320, 200),  # the short tail
    ]
    assert pieces[0].payload == b"".join(bytes([n]) * 160 for n in range(1, 6))
    assert pieces[0].received_at_ms == 1_001 and pieces[1].received_at_ms == 1_006


def test_a_chunk_closes_at_the_first_packet_reaching_the_target_and_never_splits_one() -> None:
    assembler = StreamAssembler(PCMU, chunk_ms=50, reorder_window=0)  # 400 samples; packets of 160
    pieces = run(assembler, [packet(n) for n in range(1, 6)])
    assert [(p.start_sample, p.samples) for p in pieces] == [(0, 480), (480, 320)]


def test_shuffled_packets_come_out_in_chunk_order() -> None:
    order = [2, 1, 4, 3, 6, 5, 8, 7, 10, 9]
    assembler = StreamAssembler(PCMU, chunk_ms=200, reorder_window=2)
    pieces = run(assembler, [packet(n) for n in order])
    assert len(pieces) == 1
    assert pieces[0].payload == b"".join(bytes([n]) * 160 for n in range(1, 11))
    assert assembler.counters.late == 0


def test_packets_are_released_as_soon_as_they_are_contiguous() -> None:
    assembler = StreamAssembler(PCMU, chunk_ms=20, reorder_window=2)
    assert assembler.push(packet(1)) == []
    assert assembler.push(packet(2)) == []
    released = assembler.push(packet(3))  # window exceeded: 1 goes out, then 2 and 3 follow it directly
    assert [p.payload[0] for p in released] == [1, 2, 3]
    assert assembler.push(packet(5)) == []  # waits for 4
    assert [p.payload[0] for p in assembler.push(packet(4))] == [4, 5]


def test_exact_duplicates_are_counted_and_dropped_pending_or_already_released() -> None:
    assembler = StreamAssembler(PCMU, chunk_ms=200, reorder_window=2)
    stream = [packet(1), packet(2), packet(2), packet(3), packet(4), packet(1), packet(5)]
    pieces = run(assembler, stream)
    assert pieces[0].payload == b"".join(bytes([n]) * 160 for n in range(1, 6))
    assert assembler.counters.duplicates == 2


def test_a_different_payload_under_a_seen_number_is_a_conflict_and_the_first_wins() -> None:
    assembler = StreamAssembler(PCMU, chunk_ms=200, reorder_window=4)
    liar = Packet("inbound", 2, 20, b"\xff" * 160, 0)
    pieces = run(assembler, [packet(1), packet(2), liar, packet(3)])
    assert pieces[0].payload == b"".join(bytes([n]) * 160 for n in range(1, 4))
    assert (assembler.counters.conflicts, assembler.counters.duplicates) == (1, 0)


def test_a_packet_older_than_the_reorder_window_is_late_and_dropped() -> None:
    assembler = StreamAssembler(PCMU, chunk_ms=1000, reorder_window=1)
    pieces = run(assembler, [packet(2), packet(3), packet(4), packet(1), packet(5)])
    assert pieces[0].payload == b"".join(bytes([n]) * 160 for n in (2, 3, 4, 5))
    assert pieces[0].start_sample == 160  # timestamp 20 ms: the position, not zero
    assert assembler.counters.late == 1


def test_a_timestamp_gap_starts_a_new_chunk_at_the_timestamp_position() -> None:
    assembler = StreamAssembler(PCMU, chunk_ms=200, reorder_window=2)
    stream = [packet(1), packet(2), packet(3), packet(6), packet(7)]  # 4 and 5 (40 ms) lost
    pieces = run(assembler, stream)
    assert [(p.sequence, p.start_sample, p.samples, p.media_timestamp_ms) for p in pieces] == [
        (0, 0, 480, 0),
        (1, 800, 320, 100),
    ]


def test_timestamp_jitter_within_tolerance_stays_contiguous() -> None:
    assembler = StreamAssembler(PCMU, chunk_ms=200, reorder_window=2, gap_tolerance_ms=10)
    stream = [packet(1, ts=0), packet(2, ts=27), packet(3, ts=38), packet(4, ts=61)]
    pieces = run(assembler, stream)
    assert [(p.start_sample, p.samples) for p in pieces] == [(0, 640)]


def test_without_timestamps_the_position_is_the_packet_count_times_its_duration() -> None:
    assembler = StreamAssembler(PCMU, chunk_ms=40, reorder_window=2)
    pieces = run(assembler, [packet(n, ts=None) for n in (1, 2, 4, 5)])  # 3 lost: cannot be seen
    assert [(p.start_sample, p.media_timestamp_ms) for p in pieces] == [(0, None), (320, None)]


def test_assumption_timestamps_are_ms_since_stream_start_so_the_first_packet_starts_there() -> None:
    assembler = StreamAssembler(audio_format("G722", 8000, 1), chunk_ms=200)
    pieces = run(assembler, [packet(1, ts=5)])
    assert (pieces[0].start_sample, pieces[0].samples) == (80, 320)  # 5 ms at 16 kHz


def test_tracks_are_sequenced_and_positioned_independently() -> None:
    assembler = StreamAssembler(PCMU, chunk_ms=40, reorder_window=2)
    stream = [packet(n, track=t) for n in range(1, 5) for t in ("inbound", "outbound")]
    pieces = run(assembler, stream)
    by_track = {(p.track, p.sequence): p.start_sample for p in pieces}
    assert by_track == {("inbound", 0): 0, ("inbound", 1): 320, ("outbound", 0): 0, ("outbound", 1): 320}


def test_only_configured_tracks_are_kept() -> None:
    assembler = StreamAssembler(PCMU, chunk_ms=200, tracks={"inbound"})
    pieces = run(assembler, [packet(n, track=t) for n in (1, 2) for t in ("inbound", "outbound")])
    assert {p.track for p in pieces} == {"inbound"}
    assert assembler.counters.filtered == 2


def test_without_order_numbers_arrival_order_is_used() -> None:
    assembler = StreamAssembler(PCMU, chunk_ms=200)
    pieces = run(assembler, [packet(n, order=None, ts=None) for n in (3, 1, 2)])
    assert pieces[0].payload == b"".join(bytes([n]) * 160 for n in (3, 1, 2))


def test_a_misaligned_payload_is_refused_and_changes_nothing() -> None:
    assembler = StreamAssembler(audio_format("L16", 8000, 1), chunk_ms=200)
    with pytest.raises(FrameError, match="161 bytes"):
        assembler.push(packet(1, size=161))
    pieces = run(assembler, [packet(1, size=320)])
    assert [(p.sequence, p.samples) for p in pieces] == [(0, 160)]
