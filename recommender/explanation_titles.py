"""Film titles in generated text, checked against the films an explanation may name.

    check = TitleChecker(catalog).check(text, allowed_ids)
    check.ok, check.mentioned, check.invented, check.spans

Pure: the standard library, ``recommender.data.titles`` and ``recommender.text_checks`` (whose
``names_title`` decides what counts as a title, as for chat replies). ``spans`` locate each allowed title
named in the text (its year in brackets included), so ``explanation_rubric`` can check the year
written after a title and read genre and era words outside titles.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from recommender.data import Catalog, Item
from recommender.data.titles import ARTICLES, TitleMatcher, fold
from recommender.text_checks import CONNECTORS, names_title, ordinary_words

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|&")
_YEAR_AFTER = re.compile(r"\s*\(?((?:18|19|20)\d\d)\)?")
_QUOTED = re.compile(r"\"([^\"\n]{1,100})\"|“([^”\n]{1,100})”|(?<!\w)'([^'\n]{1,100})'(?!\w)")


@dataclass(frozen=True)
class TitleCheck:
    """Film titles found in a text: the allowed ones it names and the ones it must not."""

    mentioned: tuple[str, ...]  # allowed item ids named in the text
    invented: tuple[tuple[str, str], ...]  # (phrase, kind): "catalogue", "quoted", "year" or "title-cased"
    spans: tuple[tuple[int, int, tuple[str, ...]], ...] = ()  # (start, end, allowed ids) per allowed title named

    @property
    def ok(self) -> bool:
        return not self.invented


class TitleChecker:
    """Finds film titles in generated text and checks them against an allowed set of items.

    Titles are matched through ``recommender.data.titles.TitleMatcher`` keys, so loose writing passes:
    any case, "The Usual Suspects" / "Usual Suspects" for "Usual Suspects, The", with or without
    "(1995)". A text is refused when it names a catalogue title outside the allowed items, puts in
    quotes something that is no allowed title, puts a year in brackets after something that is no
    allowed title ("the movie The (1997)"), or contains a Title-Cased run of two or more words
    (genres and sentence openers aside) that is no allowed title: films the model made up.
    One-word catalogue titles ("Heat", "Babe") count only when capitalised mid-sentence, quoted or
    followed by a year, so ordinary words are not taken for films.
    """

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.matcher = TitleMatcher.for_catalog(catalog)
        self.ordinary = ordinary_words(catalog)  # never a title by themselves: sentence openers, genres

    def _items_of(self, phrase: str) -> list[Item]:
        key = fold(phrase)
        items = self.matcher.keys.get(key)
        if not items:
            words = key.split()
            if len(words) > 1 and words[0] in ARTICLES:
                items = self.matcher.keys.get(" ".join(words[1:]))
        return list(items or [])

    def check(self, text: str, allowed_ids: Sequence[str]) -> TitleCheck:
        """Every title-like phrase of ``text``; those not naming an item of ``allowed_ids`` are invented."""
        allowed = {str(i) for i in allowed_ids}
        mentioned: list[str] = []
        invented: list[tuple[str, str]] = []
        spans: list[tuple[int, int, tuple[str, ...]]] = []
        words = list(_WORD.finditer(text))
        used = [False] * len(words)

        def accept(items: list[Item], phrase: str, kind: str, start: int, end: int) -> None:
            ids = [item.id for item in items if item.id in allowed]
            if ids:
                mentioned.extend(i for i in ids if i not in mentioned)
                spans.append((start, end, tuple(ids)))
            else:
                invented.append((phrase, kind))

        # 1. Quoted phrases: must be an allowed title (an optional year or " - genres" tail aside).
        for match in _QUOTED.finditer(text):
            inner = next(g for g in match.groups() if g is not None)
            core = re.sub(r"\s*\(?(?:18|19|20)\d\d\)?\s*$", "", inner.split(" - ")[0]).strip(" .,;:!?")
            items = self._items_of(core)
            year = _YEAR_AFTER.match(text, match.end())
            stop = year.end() if year and text[match.end() :].lstrip().startswith("(") else match.end()
            accept(items, inner, "catalogue" if items else "quoted", match.start(), stop)
            for k, word in enumerate(words):
                if match.start() <= word.start() < stop:
                    used[k] = True
        # 2. Catalogue titles anywhere, longest first.
        folded = [fold(w.group()) for w in words]
        i = 0
        while i < len(words):
            if used[i]:
                i += 1
                continue
            for n in range(min(self.matcher.max_words, len(words) - i), 0, -1):
                if any(used[i : i + n]) or not all(folded[i : i + n]):
                    continue
                phrase = text[words[i].start() : words[i + n - 1].end()]
                items = self._items_of(phrase)
                if items and names_title(text, words[i].start(), words[i + n - 1].end(), self.ordinary):
                    end = self._title_tail(text, words[i + n - 1].end(), items)
                    accept(items, phrase, "catalogue", words[i].start(), end)
                    k = i
                    while k < len(words) and words[k].start() < end:
                        used[k] = True
                        k += 1
                    i = k - 1
                    break
            i += 1
        # 3. A year in brackets that follows no title found above names some other film: "The (1997)".
        for k, word in enumerate(words):
            if not used[k] and re.fullmatch(r"(?:18|19|20)\d\d", word.group()) and text[: word.start()].endswith("("):
                before = text[max(0, word.start() - 30) : word.end() + 1].split()
                invented.append((" ".join(before[-4:]), "year"))
                used[k] = True
        # 4. Title-Cased runs left over: a made-up film unless it is an allowed title.
        for start, end in self._capitalised_runs(text, words, used):
            phrase = text[words[start].start() : words[end - 1].end()]
            items = self._items_of(phrase)
            if items:
                accept(items, phrase, "catalogue", words[start].start(), words[end - 1].end())
            else:
                invented.append((phrase, "title-cased"))
        return TitleCheck(tuple(mentioned), tuple(invented), tuple(sorted(spans)))

    def _title_tail(self, text: str, end: int, items: list[Item]) -> int:
        """End of a title mention past its "(alias)" ("Seven (Se7en)") and "(1995)" that follow it."""
        end += len(re.match(r"[.!?…'’]*", text[end:]).group())  # "Mars Attacks!", "Sunset Blvd."
        alias = re.match(r"\s*\(([^()]{1,80})\)", text[end:])
        if alias and not re.fullmatch(r"\s*(?:18|19|20)\d\d\s*", alias.group(1)):
            if {item.id for item in self._items_of(alias.group(1))} & {item.id for item in items}:
                end += alias.end()
        year = re.match(r"\s*\(?(?:18|19|20)\d\d\)?", text[end:])
        return end + year.end() if year else end

    def _capitalised_runs(self, text: str, words: list[re.Match[str]], used: list[bool]) -> list[tuple[int, int]]:
        def capital(k: int) -> bool:
            word = words[k].group()
            low = word.lower()
            return not used[k] and word[:1].isupper() and low not in self.ordinary and low not in CONNECTORS

        runs, k = [], 0
        while k < len(words):
            if not capital(k):
                k += 1
                continue
            end, capitals, j = k + 1, 1, k + 1
            while (
                j < len(words) and not used[j] and re.fullmatch(r"[ \t]+", text[words[j - 1].end() : words[j].start()])
            ):
                if capital(j):
                    capitals, end = capitals + 1, j + 1
                elif words[j].group().lower() not in CONNECTORS:
                    break
                j += 1
            if capitals >= 2:
                runs.append((k, end))
            k = max(end, k + 1)
        return runs
