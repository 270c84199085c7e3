"""The influence-rule comparison bench: its rules and null pass rates, on rows with known effects."""

from types import SimpleNamespace

import numpy as np

from bench.influence_rules import RULES, render_report, rule_table


def _row(orders, floor, swaps=4, blend=None):
    orders = np.asarray(orders, dtype=float)
    blend = orders if blend is None else np.asarray(blend, dtype=float)
    return {
        "user": "1", "item": "2", "history_length": 20, "shown": orders.shape[1], "swaps": swaps,
        "served_pick_same": True, "llm_orders": orders.tolist(), "blend_orders": blend.tolist(),
        "llm_swap_floor": floor, "blend_swap_floor": floor, "blend_whole": [0.0] * 15 + list(orders[0]),
        "prompts": 30, "seconds": 1.0,
    }  # fmt: skip


def test_a_film_that_lowers_the_score_in_every_order_is_an_influence_by_every_rule():
    strong = [[0.20, 0.0, 0.01], [0.21, 0.01, -0.01], [0.19, -0.01, 0.0], [0.20, 0.0, 0.01], [0.22, 0.01, 0.0]]
    shares = {name: share for name, share, _, _ in rule_table([_row(strong, floor=0.03)], seed=0)}
    assert all(share == 1.0 for share in shares.values())


def test_no_swap_means_no_floor_and_no_influence_whatever_the_effects():
    row = _row([[0.5, 0.5]], floor=None, swaps=0)
    shares = {name: share for name, share, _, _ in rule_table([row, _row([[0.5, 0.0]] * 3, floor=0.01)], seed=0)}
    assert shares["LLM score, swap floor (served)"] == 0.5  # the second user only


def test_pure_noise_passes_the_t_test_at_about_its_level_and_the_bonferroni_one_less_often():
    rng = np.random.default_rng(1)
    rows = [_row(rng.normal(0, 0.01, size=(5, 5)), floor=0.02) for _ in range(60)]
    null = {name: rate for name, _, rate, _ in rule_table(rows, seed=0)}
    assert 0.02 < null["mean over orders, t 5%"] < 0.09
    assert null["mean over orders, t 5% Bonferroni"] < null["mean over orders, t 5%"]
    assert set(RULES) <= set(null)
    report = render_report(rows, SimpleNamespace(split="valid", seed=0), "a model")
    assert "| mean over orders, t 5% |" in report and "60 valid users" in report


def test_the_served_rule_report_pairs_the_two_rules_on_the_same_users():
    from bench.served_rule import render_report as served_report

    rows = [{"user": str(u), "now": now, "before": before, "seconds": 1.0}
            for u, (now, before) in enumerate([(True, False)] * 3 + [(False, True)] + [(True, True)] * 4)]  # fmt: skip
    report = served_report(rows, SimpleNamespace(seed=0, skip=["a.jsonl"]), "a model")
    assert "| candidate: two-stage blend, the prompt one title shorter | 87.5% |" in report
    assert "| served: LLM log-probability, the next-older film let in | 62.5% |" in report
    assert "+25.0% [" in report and "users +3 / -1" in report and "outside a.jsonl" in report


def test_another_adapter_is_named_as_the_candidate_and_needs_stored_rows_to_pair_with():
    import pytest

    from bench.served_rule import main
    from bench.served_rule import render_report as served_report

    rows = [{"user": "1", "now": True, "before": False, "seconds": 1.0, "candidate": "the served rule with adapter x"}]
    report = served_report(rows, SimpleNamespace(seed=0, skip=[]), "a model")
    assert "| candidate: the served rule with adapter x | 100.0% |" in report
    with pytest.raises(SystemExit, match="--adapter needs --against"):
        main(["--adapter", "runs/x"])


def test_bench_rows_resume_from_the_stored_users_and_append_the_others(tmp_path):
    from bench.user_rows import emit, measured_rows, read_rows

    path, calls = tmp_path / "rows.jsonl", []

    def measure(user):
        calls.append(user)
        return {"user": user, "seconds": 0.1}

    assert measured_rows(["1", "2"], measure, path) == read_rows(path) and calls == ["1", "2"]
    rows = measured_rows(["1", "2", "3"], measure, path)  # a resumed run measures only the new user
    assert calls == ["1", "2", "3"] and [r["user"] for r in rows] == ["1", "2", "3"] == [
        r["user"] for r in read_rows(path)
    ]
    assert read_rows(tmp_path / "none.jsonl") == [] and read_rows(None) == []
    assert emit("# report\n", tmp_path / "r.md") == 0 and (tmp_path / "r.md").read_text() == "# report\n"


def test_shards_split_the_users_without_overlap_and_refuse_a_bad_spec():
    import pytest

    from bench.user_rows import shard

    users = [str(u) for u in range(7)]
    parts = [shard(users, f"{k}/3") for k in range(3)]
    assert sorted(sum(parts, [])) == users and parts[0] == ["0", "3", "6"]
    assert shard(users, "0/1") == users
    for bad in ("3/3", "1", "a/b", "-1/2"):
        with pytest.raises(SystemExit, match="--shard"):
            shard(users, bad)


def test_users_with_stored_rows_are_left_out(tmp_path):
    from bench.user_rows import without

    stored = tmp_path / "rows.jsonl"
    stored.write_text('{"user": "2"}\n{"user": "5"}\n')
    assert without(["1", "2", "3", "5"], [stored]) == ["1", "3"]
    assert without(["1", "2"], []) == ["1", "2"] and without(["1"], [tmp_path / "none.jsonl"]) == ["1"]
