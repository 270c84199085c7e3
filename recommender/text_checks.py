"""Checks on generated text that chat replies and explanations share.

    repeats_itself("entertaining and entertaining")      # True: degenerate repetition
    ordinary = ordinary_words(catalog)                     # words that are never a title by themselves
    names_title(text, start, end, ordinary)                # is the title matched at text[start:end] one?

``names_title`` is the one rule that decides whether a catalogue title found in a text is written
as a title there: ``chat.replies.mentioned_titles`` (chat replies) and
``explanation_titles.TitleChecker`` (explanations) both apply it, so "Heat", "Ran" or "Big" are
read the same way everywhere. Pure: the standard library and ``recommender.data``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Set

from recommender.data import Catalog
from recommender.data.titles import ARTICLES, fold

# "again and again", "better and better": a word joined to itself that is no repetition.
REPEAT_IDIOMS = {"again", "more", "over", "on", "round", "through", "out", "back", "less", "better", "worse", "time",
                 "bigger", "faster", "closer", "further", "here", "there", "by", "side", "step", "day",
                 "year"}  # fmt: skip
# Words that join the words of a title ("Of Mice and Men"): never a title's weight by themselves.
CONNECTORS = {"of", "the", "a", "an", "and", "in", "on", "to", "for", "with", "from", "at", "by", "&", "or", "de"}
# Capitalised words that start sentences or talk about films, never a title by themselves.
NOT_TITLE_WORDS = {
    "if", "you", "your", "this", "these", "that", "the", "based", "as", "since", "because", "like", "with", "it", "its",
    "we", "i", "they", "both", "also", "fans", "recommended", "recommendation", "item", "items", "user", "users",
    "film", "films", "movie", "movies", "people", "who", "and", "but", "so", "in", "a", "an", "for", "here", "there",
    "why", "what", "when", "given", "just", "then", "plus", "enjoy", "enjoyed", "liked", "watched", "try", "check",
    "similar", "candidate", "candidates", "answer", "explanation", "yes", "no", "mr", "mrs", "dr", "st",
}  # fmt: skip
TITLE_MARKS = "\"'“‘*_"  # an opening quote or bold/italic mark right before a word makes it a title
SENTENCE_ENDS = ".!?:\n-*•"  # after one of these (or at the start) a word is capitalised anyway
_YEAR_AFTER = re.compile(r"[.!?…'’]*\s*\((?:18|19|20)\d\d\)")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def repeats_itself(text: str) -> bool:
    """True for degenerate repetition: a 3-word run three times, a 5-word run twice, few distinct words,
    or one word joined to itself ("entertaining and entertaining", "dark, dark"; idioms like "again and
    again" aside)."""
    for match in re.finditer(r"\b([a-z']{3,})(?:\s*,\s*|\s+(?:and|or|but)\s+)\1\b", text.lower()):
        if match.group(1) not in REPEAT_IDIOMS:
            return True
    words = re.findall(r"[\w']+", text.lower())
    for n, limit in ((3, 3), (5, 2)):
        grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
        if grams and max(grams.values()) >= limit:
            return True
    return len(words) >= 12 and len(set(words)) < 0.45 * len(words)


def ordinary_words(catalog: Catalog) -> set[str]:
    """Words never read as a one-word title: ``NOT_TITLE_WORDS`` and the catalogue's genre words
    (and their plurals: "Horror", "Westerns")."""
    genre_words = {word for genre in catalog.genre_vocabulary for word in fold(genre).split()}
    return NOT_TITLE_WORDS | genre_words | {word + "s" for word in genre_words}


def sentence_start(text: str, position: int) -> bool:
    """True when ``position`` starts ``text``, a sentence, a line or a list entry (opening quotes and
    brackets aside), where any word is capitalised."""
    before = text[:position].rstrip(" \t\"'“‘(")
    return not before or before[-1] in SENTENCE_ENDS


def names_title(text: str, start: int, end: int, ordinary: Set[str] = frozenset(NOT_TITLE_WORDS)) -> bool:
    """Whether the catalogue title matched at ``text[start:end]`` is written as a title there.

    It is when its year follows in brackets ("Heat (1995)", "heat (1995)"). A title of two or more
    words (articles aside) counts in any case, unless all of them are ``ordinary`` or connectors
    ("I Like It Like That"). Otherwise its one word ("Heat", "The Net", "Ran") counts only when
    capitalised and either quoted or bold ("**Ran**"), or mid-sentence and not an ``ordinary`` word
    ("a genre film"); a bare number counts only quoted or bold.

    Args:
        text: the text the title was found in.
        start, end: where the title's words are written (no year, no closing quote).
        ordinary: words that are never a title by themselves (``ordinary_words(catalog)``).
    """
    if _YEAR_AFTER.match(text, end):
        return True
    words = _WORD.findall(text[start:end])
    before = text[:start].rstrip()
    marked = bool(before) and before[-1] in TITLE_MARKS
    significant = [word for word in words if word.lower() not in ARTICLES] or words
    if not words or all(word.isdigit() for word in significant):
        return marked  # "1995", "the 187 (people)" are a year or a count unless quoted or bold
    if len(significant) >= 2 and not all(
        word.lower() in ordinary or word.lower() in CONNECTORS for word in significant
    ):
        return True
    word = significant[0]
    if not (word[:1].isupper() or word[:1].isdigit()):
        return False
    if marked:
        return True
    return word.lower() not in ordinary and not sentence_start(text, start)
