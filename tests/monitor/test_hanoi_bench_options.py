"""The Hà Nội bench refuses a feed stage it does not know before it touches anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.hanoi import FEEDS, run_bench


def test_an_unknown_feed_to_skip_is_refused_with_the_stage_names(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    with pytest.raises(ValueError) as err:
        run_bench(10, out, skip_feeds=("station", "visits"))
    assert "visits" in str(err.value)
    assert all(name in str(err.value) for name, _, _ in FEEDS)
    assert not out.exists()  # refused before generating or starting a database
