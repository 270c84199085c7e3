"""How many films a message asks for: "give me 3 options", "top 5 comedies", "a couple of westerns".
Pure: the standard library."""

from __future__ import annotations

import re

from recommender.chat.lexicon import COUNT_ADJECTIVES, COUNT_NOUNS, GENRE_PLURALS, NUMBER_WORDS


def asked_count(tokens: list[str], used: list[bool]) -> int | None:
    """The number of films asked for: "give me 3 options", "top 5 comedies", "a couple of westerns"."""
    for i, token in enumerate(tokens):
        value = int(token) if token.isdigit() and len(token) <= 12 else NUMBER_WORDS.get(token)
        if value is None or used[i] or re.fullmatch(r"(?:18|19|20)\d\d", token):
            continue
        previous = tokens[i - 1] if i else ""
        ahead = [t for t in tokens[i + 1 : i + 6] if t not in {"of", "more", "good", "great", "new", "old", "a"}]
        noun = next((k for k, t in enumerate(ahead[:4]) if t in COUNT_NOUNS or _genre_plural(t)), None)
        if token in {"one", "couple", "dozen", "hundred", "thousand", "million"} and previous not in {
            "just",
            "only",
            "a",
            "top",
            "me",
            "give",
            "recommend",
            "show",
            "pick",
            "exactly",
            "",
        }:
            continue  # "one of those", "the one with …"
        if (
            previous in {"top", "just", "only", "exactly"}
            or noun is not None
            and all(t in COUNT_ADJECTIVES for t in ahead[:noun])
        ):
            used[i] = True
            if previous == "top":
                used[i - 1] = True
            return value
    return None


def _genre_plural(token: str) -> bool:
    return token.endswith("s") and (token in GENRE_PLURALS)
