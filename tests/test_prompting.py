"""Prompt rendering and the label scheme: pure, milliseconds."""

from __future__ import annotations

import subprocess
import sys

import jinja2
import numpy as np
import pytest

import recommender.prompts as prompts
from recommender.data import Item
from recommender.llm.prompting import (
    LABELS,
    candidate_line_ends,
    item_text,
    make_labels,
    rank_completion,
    rating_completion,
    render_chat_system,
    render_explain,
    render_pointwise,
    render_rank,
    tokens_at_chars,
    truncate_history,
    with_completion,
)
from recommender.llm.rating_prompt import render_rating


def make_items(n: int, prefix: str = "m") -> list[Item]:
    return [Item(f"{prefix}{i}", f"Film {prefix}{i}", 1990 + i % 10, ("Drama", "Comedy")) for i in range(n)]


FARGO = Item("1", "Fargo", 1996, ("Crime", "Drama", "Thriller"))


def test_every_template_has_a_version_and_renders_messages():
    assert {"rank", "pointwise", "rating", "explain", "chat_system"} <= set(prompts.TEMPLATE_VERSIONS)
    assert all(version.startswith(name) for name, version in prompts.TEMPLATE_VERSIONS.items())
    with pytest.raises(KeyError, match="known"):
        prompts.template_version("nope")


def test_missing_field_raises_at_once():
    with pytest.raises(jinja2.UndefinedError, match="rank"):
        prompts.render("rank", history=[])
    with pytest.raises(ValueError, match="no field"):
        prompts.render("pointwise", history=[], candidate="x", cnadidate="typo")


def test_item_text_is_one_line():
    assert item_text(FARGO) == "Fargo (1996) - Crime, Drama, Thriller"
    assert item_text(Item("2", "Untitled")) == "Untitled"
    messy = Item("3", "Line one\nSYSTEM: line two   ", None, ())
    assert item_text(messy) == "Line one SYSTEM: line two"
    assert len(item_text(Item("4", "x" * 500))) == 160


def test_rank_prompt_letters_candidates_in_order():
    history, candidates = make_items(3, "h"), make_items(4, "c")
    prompt = render_rank(history, candidates)
    assert [m["role"] for m in prompt.messages] == ["system", "user"]
    user = prompt.messages[1]["content"]
    assert "A. Film c0 (1990) - Drama, Comedy\nB. Film c1" in user
    assert "- Film h0 (1990)" in user and user.index("Film h0") < user.index("Film h2")
    assert user.endswith("Answer with one letter from A to D.")
    assert prompt.labels == ("A", "B", "C", "D")
    assert prompt.item_ids == ("c0", "c1", "c2", "c3")
    assert prompt.label_of("c2") == "C" and prompt.dropped_history == 0
    assert prompt.template_version == prompts.template_version("rank")


def test_rank_prompt_is_deterministic_for_training_and_serving():
    history, candidates = make_items(5, "h"), make_items(20, "c")
    assert render_rank(history, candidates).messages == render_rank(history, candidates).messages
    example = with_completion(render_rank(history, candidates).messages, rank_completion("T"))
    assert example[-1] == {"role": "assistant", "content": "T"}


def test_empty_history_renders_history_free_prompt():
    prompt = render_rank([], make_items(2))
    assert "oldest first" not in prompt.messages[1]["content"]
    assert "know nothing" in prompt.messages[1]["content"]
    assert "oldest first" not in render_pointwise([], FARGO).messages[1]["content"]
    assert "oldest first" not in render_rating([], FARGO).messages[1]["content"]
    assert "oldest first" not in render_explain([], FARGO).messages[1]["content"]


def test_history_truncation_drops_oldest_and_counts():
    history = make_items(30, "h")
    prompt = render_rank(history, make_items(3), max_history=5)
    user = prompt.messages[1]["content"]
    assert prompt.dropped_history == 25
    assert "Film h24 " not in user and "Film h25 " in user and "Film h29 " in user
    kept, dropped = truncate_history(list("abcdef"), max_items=None, max_chars=7, lengths=[3, 3, 3, 3, 3, 3])
    assert kept == ["e", "f"] and dropped == 4
    assert truncate_history([], 5) == ([], 0)
    assert truncate_history([1, 2], 0) == ([], 2)
    char_limited = render_pointwise(history, FARGO, max_history=None, max_history_chars=60)
    assert 0 < char_limited.dropped_history < 30


def test_labels_and_candidate_limits():
    assert make_labels(3) == ("A", "B", "C") and len(LABELS) == 26
    with pytest.raises(ValueError, match="only 26 labels"):
        make_labels(27)
    with pytest.raises(ValueError, match="at most 20"):
        render_rank([], make_items(21))
    assert render_rank([], make_items(26), max_candidates=26).labels[-1] == "Z"
    with pytest.raises(ValueError, match="exceeds the 26 available labels"):
        render_rank([], make_items(3), max_candidates=27)
    with pytest.raises(ValueError, match="at least one candidate"):
        render_rank([], [])


def test_duplicate_candidates_are_an_error():
    items = make_items(3)
    with pytest.raises(ValueError, match="duplicate candidate id 'm1' at positions 1 and 3"):
        render_rank([], [*items, items[1]])


def test_wrong_types_are_named():
    with pytest.raises(TypeError, match=r"candidates\[0\] is a str"):
        render_rank([], ["m1"])  # type: ignore[list-item]


def test_pointwise_puts_the_candidate_last():
    history = make_items(4, "h")
    a = render_pointwise(history, FARGO).messages
    b = render_pointwise(history, make_items(1)[0]).messages
    assert a[0] == b[0]
    assert a[1]["content"].endswith("Item: Fargo (1996) - Crime, Drama, Thriller")
    shared = a[1]["content"].rsplit("Item:", 1)[0]
    assert b[1]["content"].startswith(shared)


def test_rating_prompt_and_completion():
    prompt = render_rating([(FARGO, 5.0), (make_items(1)[0], 3.5)], make_items(2)[1])
    assert "- Fargo (1996) - Crime, Drama, Thriller: 5/5" in prompt.messages[1]["content"]
    assert ": 3.5/5" in prompt.messages[1]["content"]
    assert [rating_completion(r) for r in (1, 2.4, 3.5, 5)] == ["1", "2", "4", "5"]
    with pytest.raises(ValueError, match="from 1 to 5"):
        render_rating([(FARGO, float("nan"))], FARGO)
    with pytest.raises(ValueError, match="from 1 to 5"):
        rating_completion(6)


def test_explain_and_chat_system():
    prompt = render_explain(make_items(2, "h"), FARGO, ["you liked Film h1\n(1991)"])
    assert "- you liked Film h1 (1991)" in prompt.messages[1]["content"]
    system = render_chat_system([FARGO, make_items(1)[0]], [["crime like Heat"], []], ["no horror"])
    assert len(system) == 1 and system[0]["role"] == "system"
    text = system[0]["content"]
    assert "Name no film outside this list" in text and "The user asked for: no horror." in text
    assert "1. Fargo (1996) - Crime, Drama, Thriller (crime like Heat)" in text
    assert "Name no film." in render_chat_system([])[0]["content"]
    with pytest.raises(ValueError, match="one list per item"):
        render_chat_system([FARGO], [[], []])


def test_permutations():
    from recommender.llm.ranking_prompts import shuffled_orders

    orders = shuffled_orders(5, 3, seed=1)
    assert np.array_equal(orders[0], np.arange(5)) and all(sorted(o) == list(range(5)) for o in orders)
    assert all(np.array_equal(a, b) for a, b in zip(orders, shuffled_orders(5, 3, seed=1)))
    with pytest.raises(ValueError):
        shuffled_orders(5, 0)


def test_candidate_line_ends_point_at_each_lines_last_character():
    text = "Recent: A. not a line start; B. neither\nA. Fargo (recent 3)\nB. Babe (recent 9)\nafter"
    ends = candidate_line_ends(text, ("A", "B"))
    assert [text[i] for i in ends] == [")", ")"]
    assert text[: ends[0] + 1].endswith("A. Fargo (recent 3)") and text[: ends[1] + 1].endswith("B. Babe (recent 9)")
    with pytest.raises(ValueError, match="'C.'"):
        candidate_line_ends(text, ("A", "B", "C"))
    with pytest.raises(ValueError, match="'B.'"):  # lines are searched in label order
        candidate_line_ends("B. x\nA. y", ("A", "B"))


def test_tokens_at_chars_maps_characters_to_their_token():
    offsets = [(0, 0), (0, 3), (3, 4), (4, 9), (10, 11)]  # a special token, then text tokens; 9 is a gap
    assert tokens_at_chars(offsets, [0, 2, 3, 8, 10]) == [1, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="character 9"):
        tokens_at_chars(offsets, [9])


def test_prompting_imports_no_model_code():
    code = (
        "import sys, recommender.llm.prompting; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
