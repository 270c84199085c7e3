"""Clauses and the reach of a negation in a tokenised message: which words "no", "not", "without" …
govern, where a clause ends, and which clauses only explain ("because the kids get scared"). Pure: the
standard library."""

from __future__ import annotations

from recommender.chat.lexicon import (
    CLAUSE_WORDS,
    FILLERS,
    LIST_GLUE,
    REASON_WORDS,
    RESUME,
    TRANSPARENT,
    YEAR_WORDS,
)
from recommender.chat.years import decade, names_years

MAX_NEGATION_GAP = 2  # a negation reaches over at most this many other content words
# Words that open a year phrase: after a negated genre it is wanted ("a comedy without romance from the 70s").
_COMPARING = {"newer", "older", "earlier", "later", "more", "less", "better", "worse", "recent"}
_ANYTHING_BUT = {"anything but", "everything but", "other than", "except"}
YEAR_LEADS = {"from", "after", "before", "since", "until", "till", "pre", "post", "between", "in"}


def negation_scope(tokens: list[str], phrases) -> tuple[list[bool], list[int], list[bool]]:
    """Which tokens a negation governs, each token's clause number, and which clauses only explain
    ("nothing scary because the little one gets scared easily").

    A clause ends at punctuation, "but"/"though"/…, or an "and"/"or" that does not continue a list of
    items. Within a clause a negator governs the items that follow it, across transparent words and at
    most ``MAX_NEGATION_GAP`` other content words; a word like "give" or "love" ends it once it governed
    something ("no horror give me comedy")."""
    at = {start: (n, kind) for start, n, kind, _ in phrases}
    item_at = {start for start, _, kind, _ in phrases if kind in {"genre", "adult", "recent", "old"}}
    negated, clause, reason = [False] * len(tokens), [0] * len(tokens), [False] * len(tokens)
    number, state, gap, governed, i, explains = 0, False, 0, False, 0, False
    genre_governed = False  # the negation has governed a genre: a year after it may be wanted (``_wanted_years``)
    wanted_before = False  # a wanted genre, or "anything but", came first: the years describe what is wanted
    rather = False  # "rather" in this clause: a "than" after it negates what follows
    while i < len(tokens):
        token = tokens[i]
        n, kind = at.get(i, (1, ""))
        if state and genre_governed and not kind and _wanted_years(tokens, i, wanted_before):
            state = False
        if kind == "idle":
            state = False
        elif kind == "neg" or token == "than" and rather:  # "rather a western than a war film"
            state, gap, governed, genre_governed = True, 0, False, False
            wanted_before = wanted_before or " ".join(tokens[i : i + n]) in _ANYTHING_BUT
        elif token in {",", ";", ".", "!", "?", ":"} | CLAUSE_WORDS or (
            token in {"and", "or"} and not _continues(tokens, i, item_at)
        ):
            number, state, explains, rather = number + 1, False, token in REASON_WORDS, False
        elif token in {"and", "or"}:
            genre_governed = False  # the list goes on: "no westerns or anything before 1960" negates the years
        elif kind or names_years(token):
            gap, governed = 0, governed or state
            genre_governed = genre_governed or state and kind in {"genre", "adult"}
            wanted_before = wanted_before or not state and kind == "genre"
        elif state and governed and token in RESUME:
            state = False
        elif state and token not in TRANSPARENT and token not in YEAR_WORDS and token not in FILLERS:
            gap += 1
            state = gap <= MAX_NEGATION_GAP
        rather = (rather or token == "rather") and token not in _COMPARING  # "rather something newer than 1990"
        for k in range(i, i + n):
            negated[k], clause[k], reason[k] = (
                state and kind != "neg" and not (token == "than" and rather),
                number,
                explains,
            )
        i += n
    return negated, clause, reason


def _wanted_years(tokens: list[str], i: int, wanted_before: bool) -> bool:
    """True when the year phrase at ``i``, after a negated genre, is wanted rather than negated: after a wanted
    genre or "anything but" ("a comedy without romance from the 70s", "anything but horror from after 1990"),
    and a decade or year said as a range ("no horror from the 80s"); a bound alone stays negated ("no horror
    before 1980": nothing before 1980)."""
    if not (tokens[i] in YEAR_LEADS or names_years(tokens[i])) or i and tokens[i - 1] in YEAR_LEADS | {"the"}:
        return False  # not the first word of a year phrase
    if wanted_before:
        return True
    following = [t for t in tokens[i : i + 3] if t != "the"]
    return (
        names_years(following[0]) or following[0] in {"from", "in"} and len(following) > 1 and names_years(following[1])
    )


def _continues(tokens: list[str], i: int, item_at: set[int]) -> bool:
    """True when the "and"/"or" at ``i`` joins two items of one list: "no horror or (any) thrillers"."""
    j = i + 1
    while j < len(tokens) and tokens[j] in LIST_GLUE:
        j += 1
    if j < len(tokens) and tokens[j] in YEAR_LEADS and {"anything", "any", "something"} & set(tokens[i + 1 : j]):
        return True  # "no westerns or anything before 1960": the years are negated too
    return j in item_at or (j < len(tokens) and bool(decade(tokens[j]) or tokens[j].isdigit()))
