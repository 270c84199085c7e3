"""bench.explain reads the rows it stores: each film's threshold, or one floor in rows of older runs."""

from __future__ import annotations

import numpy as np

from bench.explain_report import _bar, _floor_lines, row_threshold


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


def _judged(user: str, passes: bool, deletion: tuple[float, float] | None = None) -> dict:
    row = {"user": user, "rubric": {"names_influence": passes, "supported_link": passes}}
    return row | ({"drop_listed": deletion[0], "drop_random": deletion[1]} if deletion else {})


def test_two_runs_are_paired_on_their_common_users_only():
    from bench.explain_report import paired_lines

    here = [_judged("1", True, (0.3, 0.1)), _judged("2", True, (0.2, 0.0)), _judged("3", False), _judged("9", True)]
    there = [_judged("1", True, (0.1, 0.1)), _judged("2", False), _judged("3", True, (0.05, 0.0))]
    text = "\n".join(paired_lines(here, there, seed=0))
    assert "(3 common users)" in text  # user 9 was not in the other run
    assert "66.7% here, 66.7% there; paired +0.0%" in text and "(+1 / -1)" in text
    assert "users with one in both runs (1): +0.2000 here, +0.0000 there; paired +0.2000" in text
    assert paired_lines(here, [_judged("7", True)], seed=0) == []
