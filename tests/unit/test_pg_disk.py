"""The WAL disk experiment's choice of the pg_wal files a stopped server reads again."""

from __future__ import annotations

from agentia_tools.chaos.pg_disk import recycled_ahead

REDO = "000000010000000000000046"


def test_segments_after_the_redo_segment_are_recycled_ones() -> None:
    assert recycled_ahead("000000010000000000000047", REDO)
    assert recycled_ahead("000000010000000000000100", REDO)
    assert not recycled_ahead(REDO, REDO)
    assert not recycled_ahead("000000010000000000000045", REDO)


def test_files_that_are_not_segments_are_kept() -> None:
    assert not recycled_ahead("00000002.history", REDO)
    assert not recycled_ahead("000000010000000000000050.partial", REDO)
    assert not recycled_ahead("000000010000000000000050.00000028.backup", REDO)
