"""Catalogue titles as people type them: case, accents, typos, a moved article, an optional year.

``TitleMatcher.for_catalog(catalog)`` normalises every title once per catalogue (titles like
"Usual Suspects, The" or "Seven (Se7en)" get the forms "the usual suspects", "usual suspects",
"se7en"), then answers exact lookups in a dict, unique word prefixes ("shawshank"), and fuzzy
ones with rapidfuzz's normalised Indel ratio (difflib's ratio, in C) among titles of similar
length. Pure: the standard library and rapidfuzz.
"""

from __future__ import annotations

import re
import unicodedata
import weakref
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from recommender.data.catalog import Catalog, Item

FUZZY_CUTOFF = 0.8  # Indel (difflib) ratio for a typo'd title to count as that title
PREFIX_MIN_CHARS = 6  # a typed prefix this long that starts exactly one title names it ("shawshank")
ARTICLES = ("the", "a", "an", "il", "la", "le", "les", "l", "el", "los", "las", "das", "der", "die", "den", "lo")
# Words too common to say a typed span is a title ("did you mean" ignores them).
COMMON_WORDS = {
    "the",
    "and",
    "with",
    "from",
    "about",
    "movie",
    "movies",
    "film",
    "films",
    "something",
    "like",
    "anything",
    "please",
    "similar",
    "stuff",
    "another",
    "other",
    "nothing",
    "everything",
    "first",  # "more like the second godfather" is no start of "The Second Jungle Book"
    "second",
    "third",
    "last",
    "pretty",  # "seen pretty much every Hitchcock film" is no start of "Pretty Woman"
    "much",
    "every",
    "all",
}


def fold(text: str) -> str:
    """Lower-case, accents folded, "&" as "and", apostrophes dropped, other punctuation as spaces."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower().replace("&", " and ")
    text = re.sub(r"['’`´]", "", text)
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


_MOVED_ARTICLE = re.compile(r"^(.+), (The|A|An|Il|La|Le|Les|L'|El|Los|Las|Das|Der|Die|Den|Lo)$")


def readable_title(item: Item) -> str:
    """The title as a sentence writes it, with its year: "The Usual Suspects (1995)" for the
    catalogue's "Usual Suspects, The" (``TitleChecker`` reads both)."""
    moved = _MOVED_ARTICLE.match(item.title.strip())
    title = f"{moved.group(2)} {moved.group(1)}" if moved else item.title
    return f"{title} ({item.year})" if item.year else title


@dataclass(frozen=True)
class TitleMatch:
    """A title found in a message: what was typed, the items it names, and how sure we are."""

    typed: str
    item_ids: tuple[str, ...]
    title: str
    score: float  # 1.0 for an exact (normalised) match, the difflib ratio for a fuzzy one


@dataclass(frozen=True)
class TitleMiss:
    """Text after "I liked ..." that names no catalogue title, with the closest titles."""

    typed: str
    suggestions: tuple[str, ...]  # display titles, best first


def title_keys(title: str) -> set[str]:
    """Every normalised form a person may type: article moved or dropped, alias in brackets alone."""
    parts = [title]
    alias = re.match(r"^(.*?)\s*\(([^()]*)\)\s*$", title)
    if alias:
        parts = [alias.group(1), alias.group(2)]
    # "Dr. Strangelove or: How I Learned…", "Star Trek: First Contact": the part before the colon too.
    parts += [re.split(r"\s+or:|:", part)[0] for part in parts if ":" in part]
    keys = set()
    for part in parts:
        folded = fold(part)
        if not folded:
            continue
        keys.add(folded)
        moved = re.match(r"^(.*),\s*(" + "|".join(ARTICLES) + r")'?$", part.strip(), re.I)
        if moved:
            body = fold(moved.group(1))
            keys.update({body, f"{moved.group(2).lower()} {body}"})
        words = folded.split()
        if len(words) > 1 and words[0] in ARTICLES:
            keys.add(" ".join(words[1:]))
    keys |= {variant for key in keys for variant in _sequel_forms(key)}
    return keys | {variant for key in keys for variant in _number_forms(key)}


_ROMAN = {"ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6"}
_DIGIT = {digit: roman for roman, digit in _ROMAN.items()}


def _sequel_forms(key: str) -> set[str]:
    """A sequel's number as people type it: "godfather part ii" is also "godfather 2", "godfather part 2" and
    "godfather ii"; "star trek iii" is "star trek 3". Only a number after the first word, so "8 1 2" stays."""
    words = key.split()
    at = next((i for i, w in enumerate(words) if i and words[i - 1].isalpha() and (w in _ROMAN or w in _DIGIT)), None)
    if at is None:
        return set()
    roman, digit = (words[at], _ROMAN[words[at]]) if words[at] in _ROMAN else (_DIGIT[words[at]], words[at])
    head = words[: at - 1] if words[at - 1] == "part" else words[:at]
    tail = words[at + 1 :]
    forms = {" ".join([*head, number, *tail]) for number in (roman, digit)}
    forms |= {" ".join([*head, "part", number, *tail]) for number in (roman, digit)}
    return forms - {key}


_NUMBER_WORDS = (
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty"
).split()
_WORD_OF = {str(n): word for n, word in enumerate(_NUMBER_WORDS, start=1)}
_NUMBER_OF = {word: digits for digits, word in _WORD_OF.items()}
_ORDINALS = {
    word: place
    for place, pair in enumerate(
        (("second", "2nd"), ("third", "3rd"), ("fourth", "4th"), ("fifth", "5th"), ("sixth", "6th")), start=2
    )
    for word in pair
}
_TEXTED = {"1", "2", "4"}  # typed for "one", "too", "for": "not 2 much gore" names no Two Much
# A sequel's place as typed after its name ("jurassic park 2", "star trek ii", "die hard three"): one table
# for ``TitleMatcher`` and the chat ("batman 2 times" is a count, ``title_cues``).
SEQUEL_PLACES = {
    **{str(digit): digit for digit in range(10)},
    **{roman: int(digit) for roman, digit in _ROMAN.items()},
    **{word: int(_NUMBER_OF[word]) for word in ("two", "three", "four", "five", "six")},
}
_SEQUEL_PLACE = "|".join(sorted(SEQUEL_PLACES, key=len, reverse=True))


def _number_forms(key: str) -> set[str]:
    """A title opening with a number as people type it: "twelve monkeys" is also "12 monkeys", "8 heads in a
    duffel bag" "eight heads in a duffel bag". Only a first word, only in a title of two words or more (three
    for 1, 2 and 4)."""
    first, _, rest = key.partition(" ")
    swapped = _NUMBER_OF.get(first) or _WORD_OF.get(first)
    if swapped in _TEXTED and len(rest.split()) < 2:
        return set()  # "2 much", "2 friends": texting, not Two Much; "4 weddings and a funeral" is the film
    return {f"{swapped} {rest}"} if swapped and rest else set()


def _strip_article(key: str) -> str:
    words = key.split()
    return " ".join(words[1:]) if len(words) > 1 and words[0] in ARTICLES else key


class TitleMatcher:
    """Normalised titles of one catalogue, for exact and fuzzy lookups. Build with ``for_catalog``."""

    _cache: weakref.WeakKeyDictionary[Catalog, TitleMatcher] = weakref.WeakKeyDictionary()

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.keys: dict[str, list[Item]] = {}
        for item in catalog.items:
            if fold(item.title) in {"unknown", "unkonwn", ""}:
                continue
            for key in title_keys(item.title):
                self.keys.setdefault(key, []).append(item)
        self._by_length = sorted(self.keys, key=len)
        self._sorted = sorted(self.keys)
        self._lengths = [len(key) for key in self._by_length]
        self.max_words = max((len(key.split()) for key in self.keys), default=1)

    @classmethod
    def for_catalog(cls, catalog: Catalog) -> TitleMatcher:
        """The matcher of ``catalog``, built on first use and kept while the catalogue lives."""
        matcher = cls._cache.get(catalog)
        if matcher is None:
            matcher = cls._cache[catalog] = cls(catalog)
        return matcher

    def exact(self, typed: str, year: int | None = None) -> TitleMatch | None:
        key = fold(typed)
        items = self.keys.get(key) or self.keys.get(_strip_article(key)) or self._numbered_in_series(key)
        return self._match(typed, items, 1.0, year) if items else None

    def series(self, base: str) -> list[Item]:
        """The films whose titles carry ``base`` as whole words, by year ("jurassic park": Jurassic Park, The
        Lost World: Jurassic Park), when the first is titled ``base``, no two share a title (remakes) or a year,
        and the numbers in their titles agree with their places ("Alien", "Alien 3": Aliens is missing); else [].
        A sequel missing from the catalogue without a number in the others' titles goes unseen ("aladdin 2" is
        Aladdin and the King of Thieves, the third film)."""
        if base not in self.keys:
            return []  # the first film is titled ``base``: no need to read every title ("show me 5")
        padded = f" {base} "  # not stripped of an article: "die hard" is no series of "hard"
        found = {item.id: item for key, items in self.keys.items() if padded in f" {key} " for item in items}
        members = sorted(found.values(), key=lambda item: (item.year or 0, item.id))
        years = [item.year for item in members]
        if len(members) < 2 or None in years or len(set(years)) < len(years):
            return []  # no order without years; two of one year ("Three Colors: Red", "... White") have none
        if base not in title_keys(members[0].title) or len({fold(item.title) for item in members}) < len(members):
            return []
        for place, item in enumerate(members, start=1):
            for key in title_keys(item.title):
                number = re.match(rf"{re.escape(base)} (?:part )?(\w+)", key)
                said = number and (_ROMAN.get(number.group(1)) or number.group(1))
                if said and said.isdigit() and int(said) != place:
                    return []
        return members

    def _numbered_in_series(self, key: str) -> list[Item] | None:
        """ "jurassic park 2", "star trek 2", "batman part 3", "the second godfather": the film at that place of
        ``series``, for sequels whose titles carry no number (or not as typed)."""
        typed = re.fullmatch(rf"(.+?) (?:part )?(\d|{_SEQUEL_PLACE})", key)  # any digit, as int() reads it
        ordinal = re.fullmatch(r"(?:the )?(second|third|fourth|fifth|sixth|2nd|3rd|4th|5th|6th) (.+)", key)
        if typed:
            said = typed.group(2)
            base, number = typed.group(1), int(said) if said.isdigit() else SEQUEL_PLACES[said]
        elif ordinal:
            base, number = ordinal.group(2), _ORDINALS[ordinal.group(1)]
        else:
            return None
        members = self.series(base)
        return [members[number - 1]] if 2 <= number <= len(members) else None

    def fuzzy(self, typed: str, year: int | None = None, cutoff: float = FUZZY_CUTOFF) -> TitleMatch | None:
        """Closest title by Indel ratio, among titles of similar length; None below ``cutoff``."""
        key = _strip_article(fold(typed))
        if len(key) < 4:
            return None
        best = process.extractOne(key, self._near_length(key), scorer=fuzz.ratio, score_cutoff=cutoff * 100)
        if not best:
            return None
        return self._match(typed, self.keys[best[0]], best[1] / 100, year)

    def prefix(self, typed: str) -> TitleMatch | None:
        """The one title whose words start with ``typed`` ("shawshank"); None when none or several do."""
        key = _strip_article(fold(typed))
        if len(key) < PREFIX_MIN_CHARS or key.split()[0] in COMMON_WORDS:
            return None
        lo = bisect_left(self._sorted, key + " ")
        hits = []
        for name in self._sorted[lo:]:
            if not name.startswith(key + " "):
                break
            hits.append(name)
        films = {item.title for name in hits for item in self.keys[name]}
        if len(films) != 1:
            return None
        return self._match(typed, self.keys[hits[0]], 0.95, None)

    def closest(self, typed: str, n: int = 3) -> tuple[str, ...]:
        """Display titles of the ``n`` titles nearest to ``typed``, for "did you mean"."""
        key = _strip_article(fold(typed))
        if not key:
            return ()
        found = process.extract(key, self._by_length, scorer=fuzz.ratio, limit=n * 3, score_cutoff=50)
        names = [name for name, _, _ in found]
        words = {word for word in key.split() if len(word) > 3 and word not in COMMON_WORDS}
        if len(names) < n and words:  # fall back on titles sharing a longer word
            names += [k for k in self._by_length if words & set(k.split())][: n * 3]
        out: list[str] = []
        for name in names:
            for item in self.keys[name]:
                if item.display_title() not in out:
                    out.append(item.display_title())
        return tuple(out[:n])

    def _near_length(self, key: str) -> list[str]:
        slack = max(2, int(len(key) * 0.3))
        lo = bisect_left(self._lengths, len(key) - slack)
        hi = bisect_right(self._lengths, len(key) + slack)
        return self._by_length[lo:hi]

    @staticmethod
    def _match(typed: str, items: list[Item], score: float, year: int | None) -> TitleMatch:
        if year is not None and any(item.year == year for item in items):
            items = [item for item in items if item.year == year]
        # Same title, different ids: remakes differ by year; ML-100k also lists a few films twice.
        if len({item.year for item in items}) > 1 and year is None:
            items = [items[0]]
        return TitleMatch(typed, tuple(item.id for item in items), items[0].display_title(), score)
