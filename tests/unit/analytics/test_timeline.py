"""Interval helpers on integer media time."""

from __future__ import annotations

import pytest

from processors.analytics.errors import InvalidInputError
from processors.analytics.timeline import Piece, clip, covers, ms_of_sample, pieces, total


def test_clip_covers_total() -> None:
    assert clip([(0, 10), (20, 30), (40, 50)], 5, 45) == [(5, 10), (20, 30), (40, 45)]
    assert clip([(0, 10)], 10, 20) == []
    assert covers([(0, 10)], 0) and not covers([(0, 10)], 10)
    assert total([(0, 10), (20, 25)]) == 15


def test_pieces_cut_at_every_boundary_and_merge_equal_neighbours() -> None:
    layers = [[(0, 10), (10, 20)], [(5, 15)], []]
    assert pieces(0, 25, layers) == [
        Piece(0, 5, (True, False, False)),
        Piece(5, 15, (True, True, False)),
        Piece(15, 20, (True, False, False)),
        Piece(20, 25, (False, False, False)),
    ]
    assert pieces(7, 7, layers) == []
    assert [p.length for p in pieces(3, 12, layers)] == [2, 7]


def test_pieces_refuse_a_reversed_range() -> None:
    with pytest.raises(InvalidInputError, match=r"interval \[9, 3\) ends before it starts"):
        pieces(9, 3, [])


def test_ms_of_sample() -> None:
    assert ms_of_sample(12, 8000) == 1
    assert ms_of_sample(16_000, 16_000) == 1_000
    with pytest.raises(InvalidInputError, match="sample rate 0 Hz"):
        ms_of_sample(1, 0)
