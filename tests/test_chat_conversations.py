"""Whole conversations through the parser and the state (tests/data/chat_conversations.yaml): after the
checked messages the state must hold what the person asked for, written from meaning by an outside
reader. Fails when a wanted genre ends excluded or the reverse, or fewer than 90% of the checks match.
Pure: no models; the app's five cards are on screen after every message."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from recommender.chat.state import ConversationState, apply, parse_message, record_shown
from recommender.data.loaders import load_dataset

TABLE = Path(__file__).parent / "data" / "chat_conversations.yaml"
CARDS = ("50", "100", "181", "258", "127")  # Star Wars, Fargo, Return of the Jedi, Contact, The Godfather
GENRES = {"include": "include_genres", "exclude": "exclude_genres"}
ITEMS = ("anchors", "liked", "disliked", "seen", "exclude_items")
MIN_SHARE = 0.90


@pytest.fixture(scope="module")
def catalog():
    return load_dataset("ml-100k").catalog


def states(messages: list[str], catalog) -> list[ConversationState]:
    state, shown, after = ConversationState(), (), []
    for message in messages:
        state = record_shown(apply(state, parse_message(message, catalog, shown=shown), catalog), CARDS)
        shown = CARDS
        after.append(state)
    return after


def _set_differs(actual, spec) -> bool:
    actual = {str(x) for x in actual}
    if isinstance(spec, dict):  # {has: [...], within: [...]}
        has, within = {str(x) for x in spec.get("has", ())}, spec.get("within")
        return not has <= actual or within is not None and not actual <= {str(x) for x in within}
    return actual != {str(x) for x in spec}


def _year_differs(actual, spec) -> bool:
    if isinstance(spec, list):  # [lo, hi] or [lo, hi, null]: a range, null allowed with a third entry
        return not (actual is None and len(spec) > 2 or actual is not None and spec[0] <= actual <= spec[1])
    return actual != spec


def differences(state: ConversationState, expect: dict) -> list[str]:
    wrong = [f"{key} {getattr(state, name)}" for key, name in GENRES.items()
             if _set_differs(getattr(state, name), expect.get(key, []))]  # fmt: skip
    wrong += [f"{key} {getattr(state, key)}" for key in ITEMS if _set_differs(getattr(state, key), expect.get(key, []))]
    wrong += [f"{key} {getattr(state, key)}" for key in ("year_min", "year_max")
              if _year_differs(getattr(state, key), expect.get(key))]  # fmt: skip
    return wrong + ([f"k {state.k}"] if state.k != expect.get("k") else [])


def test_conversations_end_where_people_mean(catalog):
    conversations = yaml.safe_load(TABLE.read_text(encoding="utf-8"))["conversations"]
    checked, failed, inverted = 0, [], []
    for conversation in conversations:
        after = states(conversation["messages"], catalog)
        for check in conversation["checks"]:
            state = after[-1] if check["after"] == "end" else after[check["after"] - 1]
            expect, checked = check["expect"], checked + 1
            wrong = differences(state, expect)
            if wrong:
                failed.append(f"{conversation['id']} after {check['after']}: {'; '.join(wrong)}")
            wanted = set(expect.get("include", ())) if isinstance(expect.get("include", ()), list) else set()
            ruled_out = set(expect.get("exclude", ())) if isinstance(expect.get("exclude", ()), list) else set()
            inverted += [f"{conversation['id']}: {g}" for g in wanted & set(state.exclude_genres)]
            inverted += [f"{conversation['id']}: {g}" for g in ruled_out & set(state.include_genres)]
    print(f"\n{checked - len(failed)}/{checked} checks hold", *failed, sep="\n  ")
    assert not inverted, f"inverted: {inverted}"
    assert checked >= 40 and (checked - len(failed)) / checked >= MIN_SHARE, failed
