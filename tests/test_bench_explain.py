"""bench.explain reads the rows it stores: each film's threshold, or one floor in rows of older runs."""

from __future__ import annotations

import numpy as np

from bench.explain import _bar, _floor_lines, row_threshold


def _row(**fields) -> dict:
    return {"values": [None, 0.05, -0.002, 0.01], "swaps": 4, **fields}


def test_rows_carry_each_films_threshold_and_older_rows_one_floor():
    new = _row(thresholds=[None, 0.02, 0.004, 0.03], floor=0.5)
    np.testing.assert_allclose(row_threshold(new), [np.nan, 0.02, 0.004, 0.03])  # the per-film ones, not the floor
    assert row_threshold(_row(floor=0.012)) == 0.012
    assert _bar(new) == "thresholds 0.0040-0.0300" and _bar(_row(floor=0.012)) == "floor 0.0120"
    assert _bar(_row(thresholds=[None] * 4, floor=0.0)) == "no threshold"


def test_the_report_counts_effects_against_their_own_threshold():
    lines = "\n".join(_floor_lines([_row(thresholds=[None, 0.02, 0.004, 0.03], floor=0.0), _row(floor=0.03)]))
    # first row: 0.05 > 0.02 passes, 0.002 and 0.01 do not; second row (floor 0.03 for all): 0.05 passes
    assert "2 of 6 effects (33.3%) exceed their threshold" in lines
    assert "median 0.0300" in lines  # thresholds 0.02, 0.004, 0.03 and the older row's 0.03 (x3)
