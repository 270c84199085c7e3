"""bench.explain reads the rows it stores: each film's threshold, or one floor in rows of older runs."""

from __future__ import annotations

import json

import numpy as np

from bench.explain_deletion import deletion_sets, listed_positions, second_film_adds, set_summary, summary_table
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


def test_every_set_of_as_many_shown_films_is_removed_once():
    history = np.array([10, 11, 12, 13, 14, 15])
    weights = {10: 0.0, 11: 0.5, 12: 0.1, 13: 0.3, 14: 0.0, 15: 0.2}  # film -> its share of the score

    def score(histories):  # the score is the sum of the films left in the prompt
        return [sum(weights[f] for f in h) for h in histories]

    base = score([history])[0]
    found = deletion_sets(score, base, history, positions=[2, 3, 4, 5], listed=[3], random=[5])
    assert [c for c, _ in found["set_drops"]] == [[2], [3], [4], [5]]  # film 11 (position 1) is not shown
    assert np.isclose(found["drop_listed"], 0.3) and np.isclose(found["drop_random"], 0.2)
    pairs = deletion_sets(score, base, history, positions=[5, 3, 2, 4], listed=[5, 3], random=[2, 4])
    assert len(pairs["set_drops"]) == 6 and np.isclose(pairs["drop_listed"], 0.5)


def test_the_set_summary_is_the_one_draws_expectation():
    row = {"listed": [3], "set_drops": [[[2], 0.1], [[3], 0.3], [[4], 0.0], [[5], 0.3]]}
    summary = set_summary(row)
    assert np.isclose(summary["difference"], 0.3 - 0.7 / 4)
    assert summary["beats_draw"] == 0.5  # beats 2 of 4 draws: itself and the equal film are ties
    assert np.isclose(summary["beats_other"], 2 / 3)
    assert np.isclose(summary["beats_unnamed"], 2 / 3)  # one listed film: the unlisted sets are the other films
    pair = set_summary({"listed": [2, 3], "set_drops": [[[2, 3], 0.5], [[2, 4], 0.6], [[4, 5], 0.1], [[3, 5], 0.4]]})
    assert pair["beats_unnamed"] == 1.0 and np.isclose(pair["beats_other"], 2 / 3)  # only {4, 5} names neither
    strongest = set_summary({"listed": [3], "set_drops": [[[2], 0.1], [[3], 0.4], [[4], 0.0], [[5], 0.3]]})
    assert strongest["beats_draw"] == 0.75 and strongest["beats_other"] == 1.0  # the one-draw cap: 1 - 1/4


def test_stored_rows_without_a_listed_field_give_the_positions_the_run_removed():
    row = {"values": [None, 0.2, 0.01, 0.3, 0.15], "thresholds": [None, 0.1, 0.05, 0.1, 0.2], "group_test": None}
    assert listed_positions(row) == [3, 1]  # above their own thresholds, strongest first; 0.15 < 0.2
    assert listed_positions({**row, "listed": [3, 1]}, at_most=1) == [3]  # fewer listed than the run did
    quiet = {**row, "values": [None, 0.0, 0.0, 0.0, 0.0], "group_test": {"positions": [2, 4], "measured": True}}
    assert listed_positions(quiet) == [2, 4]
    assert listed_positions({**quiet, "group_test": {"positions": [2, 4], "measured": False}}) == []


class ShownFilms:
    """A pipeline stand-in whose top pick (row 10) scores ``worth(films the prompt shows)``; the prompt shows
    the last 5 of a 6-film history (rows 0-5), so a removal lets row 0 in."""

    def __init__(self, worth):
        from types import SimpleNamespace

        self.worth = worth
        self.catalog = SimpleNamespace(ids=[str(r) for r in range(12)])
        self.config = SimpleNamespace(llm_candidates=2)
        self.split = SimpleNamespace(case=lambda user, split: SimpleNamespace(history=list(range(6))))
        self.retriever = SimpleNamespace(retrieve=lambda ids, k: SimpleNamespace(items=[10, 11]))

    def llm_scores(self, histories, candidates):
        return [np.array([self.worth(set(np.asarray(h)[-5:].tolist())), -9.0]) for h in histories]

    def neutral_swap_pairs(self, history, candidates, shown):
        from recommender.influence import swap_pairs

        return swap_pairs(len(history), shown, lambda i, j: True)  # every swap keeps the evidence


def test_the_second_film_is_listed_only_when_it_adds_once_the_first_is_gone():
    row = {"user": "7", "item": "10", "window": 5, "values": [None, 0.0, 0.0, 0.0, 2.0, 1.5],
           "thresholds": [None, 0.1, 0.1, 0.1, 0.1, 0.1]}  # fmt: skip
    adds = second_film_adds(ShownFilms(lambda shown: 2.0 * (4 in shown) + 1.5 * (5 in shown)), row, "test", 0)
    assert adds["listed"] == [4, 5] and np.isclose(adds["second"]["effect"], 1.5) and adds["second"]["orders"] == 5
    assert np.isclose(adds["drop_listed"], 3.5)
    # Films 4 and 5 matter only together: each is an influence alone, but once 4 is gone 5 adds nothing.
    together = second_film_adds(ShownFilms(lambda shown: 2.0 * ({4, 5} <= shown)), row, "test", 0)
    assert together["listed"] == [4] and np.isclose(together["second"]["effect"], 0.0)
    assert [len(c) for c, _ in together["set_drops"]] == [1] * 5  # the drops of single films follow


def test_the_summary_reads_each_file_of_set_drops(tmp_path):
    rows = [
        {"user": "1", "listed": [3], "drop_listed": 0.3, "drop_random": 0.1,
         "set_drops": [[[2], 0.1], [[3], 0.3], [[4], 0.0], [[5], 0.2]]},
        {"user": "2"},  # no listed influence: no test
    ]  # fmt: skip
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = summary_table([str(path)])
    assert f"| {path} | 1 | +0.2000, 100% | +0.1500 " in table  # 0.3 - mean(0.1, 0.3, 0.0, 0.2)
    assert "| 75.0% (75%) | 100.0% | 100.0% (1) | 100% |" in table  # the cap: the draw is the listed film 1 in 4
    pair = {"user": "3", "listed": [2, 3], "drop_listed": 0.5, "drop_random": 0.6,
            "set_drops": [[[2, 3], 0.5], [[2, 4], 0.6], [[3, 4], 0.1]]}  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in [*rows, pair]))
    split = summary_table([str(path)], by_listed=True)
    assert f"| {path} (1 listed) | 1 |" in split and f"| {path} (2 listed) | 1 | -0.1000, 0% |" in split
    assert "| 33.3% (67%) | 50.0% | - | 100% |" in split  # beats {3, 4} only; no set of unlisted films


def test_the_latency_table_gives_medians_and_the_slowest_user():
    from types import SimpleNamespace

    from bench.explain_latency import render

    rows = [("whole explanation (batch 8)", [3.0, 1.0, 2.0], 0), ("influences only (batch 8)", [1.0, 4.0], 30)]
    table = render(rows, SimpleNamespace(users=3, seed=0, threads=2), "2-core CPU")
    assert "| whole explanation (batch 8) |  | 2.00 | 3.00 |" in table
    assert "| influences only (batch 8) | 30 | 2.50 | 4.00 |" in table
