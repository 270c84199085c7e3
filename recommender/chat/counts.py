"""How many films a message asks for: "give me 3 options", "top 5 comedies", "a couple of westerns".
Pure: the standard library."""

from __future__ import annotations

from recommender.chat.lexicon import (
    AMBIGUOUS_COUNT_LEADS,
    AMBIGUOUS_COUNTS,
    BARE_COUNT_WORDS,
    COUNT_ADJECTIVES,
    COUNT_MARKERS,
    COUNT_NOUNS,
    COUNT_SKIPPED,
    GENRE_MASS_NOUNS,
    GENRE_PLURALS,
    GENRE_SINGULARS,
)
from recommender.chat.text import spoken_number
from recommender.chat.years import is_year

# The most cards one turn shows, whatever a message ("recommend 500 movies") or a slider asks:
# more is no conversation. A count above it is cut to it, and the reply says so (MAX_COUNT_NOTE).
MAX_K = 50
BARE_COUNT_MAX = 20  # a number alone is a count up to this ("make it 5"); "42" alone asks for nothing
MAX_COUNT_NOTE = "I show at most {cap} at a time; here are the first {cap}."


def asked_count(tokens: list[str], used: list[bool]) -> int | None:
    """The number of films asked for: "give me 3 options", "top 5 comedies", "a couple of westerns"."""
    for i, token in enumerate(tokens):
        value = spoken_number(token, 12)
        if value is None or used[i] or is_year(token):
            continue
        previous = tokens[i - 1] if i else ""
        half = token == "dozen" and "half" in tokens[max(0, i - 2) : i]  # "half a dozen dramas"
        if half:
            value, previous = 6, "a"
        ahead = [t for t in tokens[i + 1 : i + 6] if t not in COUNT_SKIPPED]
        nouns = COUNT_NOUNS | GENRE_MASS_NOUNS | (GENRE_SINGULARS if value == 1 else set())  # "one good comedy"
        noun = next((k for k, t in enumerate(ahead[:4]) if t in nouns or _genre_plural(t)), None)
        if token in AMBIGUOUS_COUNTS and previous not in AMBIGUOUS_COUNT_LEADS:
            continue  # "one of those", "the one with …"
        others = [t for k, t in enumerate(tokens) if k != i]  # "make it 25"; "42" alone asks for nothing
        alone = value <= (MAX_K if others else BARE_COUNT_MAX) and all(t in BARE_COUNT_WORDS for t in others)
        if tokens[i + 1 : i + 2] in (["or"], ["to"]) and spoken_number(
            tokens[i + 2] if i + 2 < len(tokens) else "", 12
        ):
            continue  # "3 or 4 options": the second number is read
        of_them = tokens[i + 1 : i + 3] in (["of", "them"], ["of", "those"], ["of", "these"])  # "thrillers, 6 of them"
        enough = (
            previous not in {"the", "number", "no"}
            and (  # "3 or 4 would be plenty", not "1 is fine"
                bool(set(tokens[i + 1 : i + 4]) & {"plenty", "enough"})
                or tokens[i + 1 : i + 3] in (["would", "be"], ["will", "do"])
            )
            and "too" not in tokens[i + 1 : i + 4]  # "10 would be too many"
        )
        asked = of_them or (
            previous in {"me", "us"}
            and tokens[i - 2 : i - 1] in (["give"], ["show"], ["get"], ["find"])
            and (tokens[i + 1 : i + 2] in ([], ["more"], ["please"], ["pls"], ["then"], [","], ["."]))
        )  # "give me five more like those", not "give me 12 angry men"
        if (
            previous in COUNT_MARKERS
            or alone
            or asked
            or enough  # "3 or 4 would be plenty"
            or noun is not None
            and all(t in COUNT_ADJECTIVES for t in ahead[:noun])
        ):
            used[i] = True
            if i >= 2 and tokens[i - 1] in {"or", "to"} and spoken_number(tokens[i - 2], 12) is not None:
                used[i - 2] = used[i - 1] = True  # "three or four would be plenty": both numbers read
            if previous == "top" or half:
                used[i - 1 if previous == "top" else tokens.index("half", max(0, i - 2))] = True
            return value
    return None


def _genre_plural(token: str) -> bool:
    return token.endswith("s") and (token in GENRE_PLURALS)
