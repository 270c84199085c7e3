"""Typing slips: a word one swap, drop, double or wrong letter away from a word the parser knows
("ninetes", "drmaa", "lvoed", "soomething"). Pure: the standard library and rapidfuzz."""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable

from rapidfuzz import process
from rapidfuzz.distance import OSA

from recommender.chat.lexicon import COUNT_NOUNS, DECADE_WORDS, FILLERS, MEND_WORDS, NUMBER_WORDS, YEAR_WORDS
from recommender.data import Catalog
from recommender.data.titles import TitleMatcher


def slip(token: str, words: list[str]) -> tuple[str, ...] | None:
    """The word ``token`` is one typing slip from (a swap, a dropped, doubled or wrong letter), or None.

    Six letters or more for any slip ("ninetes", "modeern", "anmiated"); five letters only for two
    swapped letters ("drmaa"), so that "eastern" stays no western and "funky" no "funny"."""
    best = process.extractOne(token, words, scorer=OSA.distance, score_cutoff=1)
    if best is None or best[1] == 0:
        return None
    if len(token) >= 6 and len(best[0]) >= 6 or sorted(token) == sorted(best[0]):
        return (best[0],)
    return None


def mend_slips(text: str, known: set[str]) -> str:
    """``text`` with each word that is one typing slip from a ``MEND_WORDS`` word written as that word
    ("lvoed Scream" -> "loved Scream"); the ``known`` words (the catalogue's titles, the lexicon) stay as typed."""

    def mend(match: re.Match[str]) -> str:
        word = match.group()
        folded = word.lower()
        if folded in known:
            return word
        best = process.extractOne(folded, MEND_WORDS, scorer=OSA.distance, score_cutoff=1)
        if best is None or not (
            max(len(folded), len(best[0])) >= 6 or sorted(folded) == sorted(best[0]) or len(folded) == 4
        ):  # a 4-letter word only as a dropped letter: "lved", "askd"
            return word
        return best[0].upper() if word.isupper() else best[0].capitalize() if word[0].isupper() else best[0]

    return re.sub(r"(?<![\w'’])[A-Za-z]{4,}(?![\w'’])", mend, text)


def known_words(catalog: Catalog, phrases: Iterable[str]) -> set[str]:
    """Words never mended: every word of the catalogue's titles, of the lexicon's ``phrases`` and the fillers
    (built once per catalogue)."""
    known = _KNOWN.get(catalog)
    if known is None:
        known = {w for key in TitleMatcher.for_catalog(catalog).keys for w in key.split()}
        known |= {w for phrase in phrases for w in phrase.split()} | FILLERS | set(MEND_WORDS)
        known |= set(NUMBER_WORDS) | set(DECADE_WORDS) | COUNT_NOUNS | YEAR_WORDS
        _KNOWN[catalog] = known
    return known


_KNOWN: weakref.WeakKeyDictionary[Catalog, set[str]] = weakref.WeakKeyDictionary()
