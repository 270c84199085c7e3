"""Title fragments as constraints: "not another Star Trek" leaves out every catalogue title holding
"Star Trek", "no more Batman movies" every Batman film. Pure: the standard library only.

A fragment is the words after an exclusion cue ("not", "no more", "sick of", ...; see
``lexicon.EXCLUDE_CUES``), matched at word boundaries against every normalised form of every title
(``titles.title_keys``: the article moved or dropped, the part before a colon). A fragment that is
exactly one film's title is left to the title matcher (one film), unless the person said "another"
or "more" (the whole series)::

    >>> fragment = negated_fragment("another Star Trek", "not ", catalog)
    >>> fragment.typed, len(fragment.item_ids)
    ('Star Trek', 8)
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass

from recommender.chat.lexicon import (
    COUNT_NOUNS,
    FILLERS,
    FRAGMENT_GLUE,
    FRAGMENT_MAX_FILMS,
    FRAGMENT_MIN_CHARS,
    FRANCHISE_CUES,
    KIND_WORDS,
    NOT_FRAGMENTS,
    SERIES_NOUNS,
    TRANSPARENT,
)
from recommender.data import Catalog
from recommender.data.titles import COMMON_WORDS, fold, title_keys

# Words after a name that only a series takes: "the alien series" (lower case, one word) is still a series.
_ONLY_SERIES = {"sequels", "prequels", "series", "franchise", "saga", "trilogy"}
MAX_FRAGMENT_WORDS = 6  # a fragment is at most this many words ("nightmare on elm street")


@dataclass(frozen=True)
class Fragment:
    """A negated title fragment: what was typed, the films whose titles hold it, and where it ended."""

    typed: str  # as the person wrote it, e.g. "Star Trek"
    item_ids: tuple[str, ...]  # every catalogue film whose title holds the fragment
    end: int  # offset in the searched text just after the fragment


class FragmentIndex:
    """Every normalised title form of one catalogue, for word-boundary lookups; built once per catalogue."""

    _cache: weakref.WeakKeyDictionary[Catalog, FragmentIndex] = weakref.WeakKeyDictionary()

    def __init__(self, catalog: Catalog):
        # (item id, title, its forms, the forms joined as " form | form ") per film
        self.forms: list[tuple[str, str, frozenset[str], str]] = []
        for item in catalog.items:
            keys = frozenset(title_keys(item.title) | {fold(item.title)})
            if keys & {"unknown", ""}:
                continue
            self.forms.append((item.id, item.title, keys, " " + " | ".join(sorted(keys)) + " "))

    @classmethod
    def for_catalog(cls, catalog: Catalog) -> FragmentIndex:
        """The index of ``catalog``, built on first use and kept while the catalogue lives."""
        index = cls._cache.get(catalog)
        if index is None:
            index = cls._cache[catalog] = cls(catalog)
        return index

    def films(self, fragment: str) -> tuple[tuple[str, ...], set[str]]:
        """(ids of the films whose title holds ``fragment`` as whole words, their distinct titles)."""
        needle = f" {fold(fragment)} "
        hits = [(item_id, title) for item_id, title, _, joined in self.forms if needle in joined]
        return tuple(item_id for item_id, _ in hits), {title for _, title in hits}

    def exact_titles(self, fragment: str) -> set[str]:
        """Distinct titles one of whose forms is exactly ``fragment`` ("star trek": four films' short form)."""
        key = fold(fragment)
        return {title for _, title, keys, _ in self.forms if key in keys}


def _words(text: str) -> list[re.Match[str]]:
    return list(re.finditer(r"[^\W_]+(?:['’.:&-][^\W_]+)*", text))


def _plausible(words: list[str], typed: list[str], franchise: bool) -> bool:
    """A fragment names something: not only filler, and a single word is long and written like a name."""
    content = [w for w in words if w not in FILLERS and w not in TRANSPARENT and w not in COMMON_WORDS]
    if not content:
        return False
    if len(words) == 1:
        if words[0] in NOT_FRAGMENTS:
            return False
        return len(words[0]) >= FRAGMENT_MIN_CHARS and (franchise or typed[0][:1].isupper())
    return True


def negated_fragment(after: str, cue: str, catalog: Catalog) -> Fragment | None:
    """The title fragment at the start of ``after`` (the words after an exclusion ``cue``), or None.

    The longest run of words that some titles hold wins ("Star Trek films" -> "Star Trek"). A run that
    is exactly one film's title is left to the title matcher unless the words before it say "another"
    or "more"; a run held by more than ``FRAGMENT_MAX_FILMS`` titles is an ordinary word, no fragment.
    """
    index = FragmentIndex.for_catalog(catalog)
    words = _words(after)
    franchise = bool(set(fold(cue).split()) & FRANCHISE_CUES)
    skip = 0
    while skip < len(words) and fold(words[skip].group()) in FRAGMENT_GLUE:
        franchise = franchise or fold(words[skip].group()) in FRANCHISE_CUES
        skip += 1
    span = words[skip : skip + MAX_FRAGMENT_WORDS]
    for n in range(len(span), 0, -1):
        typed = [w.group() for w in span[:n]]
        folded = [fold(w) for w in typed]
        noun = fold(span[n].group()) if n < len(span) else ""
        # "no Batman movies", "no batman sequels"; "no dark films", "no wild stuff" name a kind, no series
        topic = n == 1 and not typed[0][:1].isupper() and noun not in _ONLY_SERIES and folded[0] in KIND_WORDS
        series = franchise or noun in SERIES_NOUNS and not topic
        if folded[-1] in COUNT_NOUNS or not _plausible(folded, typed, series):
            continue
        ids, titles = index.films(" ".join(folded))
        if not ids or len(titles) > FRAGMENT_MAX_FILMS:
            continue
        if not series and (len(titles) == 1 or len(index.exact_titles(" ".join(folded))) == 1):
            return None  # "not Heat", "not Godfather": one film, the title matcher's job
        return Fragment(" ".join(typed).strip(" ,.;:"), ids, span[n - 1].end())
    return None


# Words that may open a request before a series' name: "I want to watch the Star Wars films".
_SERIES_LEAD = {"i", "want", "wanna", "need", "give", "show", "me", "some", "got", "recommend", "suggest", "watch",
                "to", "can", "you", "please", "pls", "do", "have", "how", "about", "what", "maybe", "any", "more",
                "anything", "something", "else", "could", "would", "id", "i'd", "im", "i'm", "looking", "for", "good",
                "lets", "let's", "in", "the", "mood", "love", "all", "of", "see", "check", "out", "like"}  # fmt: skip


def series_fragment(clause: str, catalog: Catalog, vocabulary: set[str]) -> Fragment | None:
    """A series asked for by name at the start of ``clause``: "star wars movies", "the Alien films", "more
    Batman" (the clause ends there), "any godfather sequels"; None for genre and mood words ("horror movies":
    the "Rocky Horror" title does not make it a series) and for a name with no series word after it."""
    words = _words(clause)
    skip = 0
    while skip < len(words) - 1 and fold(words[skip].group()) in _SERIES_LEAD:
        skip += 1
    lead = {fold(w.group()) for w in words[:skip]}
    start = words[skip].start() if skip < len(words) else len(clause)
    fragment = negated_fragment(clause[start:], "more" if lead & FRANCHISE_CUES else "", catalog)
    if fragment is None:
        return None
    named = fold(fragment.typed).split()
    if all(w in vocabulary or w in FILLERS or w in FRAGMENT_GLUE for w in named):
        return None
    tail = fold(clause[start + fragment.end :]).split()
    named_as_name = len(named) > 1 or fragment.typed[:1].isupper() and not clause.isupper()  # "ghost movies": a topic
    if tail[:1] and (tail[0] in _ONLY_SERIES or tail[0] in SERIES_NOUNS and named_as_name):
        noun = re.match(r"\W*[^\W_]+", clause[start + fragment.end :])  # "the alien series": the word read too
        return Fragment(fragment.typed, fragment.item_ids, start + fragment.end + (noun.end() if noun else 0))
    if not tail and lead & FRANCHISE_CUES and named_as_name:  # "more Batman"
        return Fragment(fragment.typed, fragment.item_ids, start + fragment.end)
    return None
