"""A rubric scored by code on every explanation. Pure: the standard library.

    context = RubricContext.from_evidence(evidence, history_items)
    score = score_explanation(text, context, TitleChecker(catalog).check(text, context.allowed_ids))
    score.names_influence, score.supported_link, score.false_claims, score.content_words, score.passes

What it checks, each against the evidence (catalogue, logs, measured influences):
- ``names_influence``: the text names a MEASURED influence (a history film whose drop-one effect is
  above its threshold and raised the score), or every member of a measured group influence (films
  that share a link with the item and, removed together, lowered its score beyond the group's floor).
- ``supported_link``: it states a link between a named influence and the recommended film that the
  evidence supports: a genre both have, their shared decade, co-watching, a graph relation.
- ``false_claims``, each ``(kind, detail)``:
  ``watched_target`` (says or implies the person watched, liked or rated the recommended film),
  ``wrong_genre`` (gives a film a genre it does not have), ``wrong_year`` (a year or decade a film does
  not have), ``outside_film`` (names a film outside the history and the recommended one),
  ``unmeasured_influence`` (names a history film that is no measured influence, or a group member
  without the rest of its group), ``wrong_count``
  (co-watching numbers or co-watching the logs do not show), ``unsupported_relation`` (same director,
  writer, cast or sequel without the graph saying so), ``unsupported_number`` (a number no rule can
  check: "the film's 20-year history", "90% of viewers"; a century is checked as a year is).
- ``second_person``: it speaks to the person ("you"), never of "the user"; ``names_item``: it names
  the recommended film.
- ``content_words``: distinct words outside a stop list (how much the sentence says).

A genre, year or decade word is a claim about the nearest film named before it in its sentence
(the recommended film when none is), or about every film named before "both" / "all three" when
such a quantifier precedes it, or before it when a plural reference follows it ("the war themes in
those films").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Genre names (ML-100k's) -> how a sentence says them; other genres match their own name.
GENRE_PATTERNS = {
    "Action": r"action",
    "Adventure": r"adventures?",
    "Animation": r"animated|animation|cartoons?",
    "Children's": r"children'?s|kids'?",
    "Comedy": r"comed(?:y|ies)|comedic",
    "Crime": r"crime",
    "Documentary": r"documentar(?:y|ies)",
    "Drama": r"dramas?|dramatic",
    "Fantasy": r"fantasy|fantasies",
    "Film-Noir": r"film[- ]noir|noir",
    "Horror": r"horror",
    "Musical": r"musicals?",
    "Mystery": r"myster(?:y|ies)",
    "Romance": r"romance|romances|romantic",
    "Sci-Fi": r"sci-?fi|science[- ]fiction",
    "Thriller": r"thrillers?",
    "War": r"war",
    "Western": r"westerns?",
}
_NEGATION = re.compile(r"\b(?:no|not|nothing|without|never|non)\b\W+(?:\w+\W+){0,2}$", re.I)
_QUANTIFIER = re.compile(r"\b(?:both|all three|all four|all of them|all)\b", re.I)
# A plural reference AFTER a claim ("the war themes in those films") makes it a claim about every film before it.
_PLURAL_AFTER = re.compile(
    r"\b(?:(?:th(?:ese|ose)|both|the two|all)(?: (?:two|three|four))? (?:films|movies|titles|stories)|each of them)\b",
    re.I,
)
# Between a genre word and a title: "<genre>[, <genre> and <genre>] film like <title>" compares the two.
_LIKE_BEFORE_TITLE = re.compile(
    rf"(?:\s*(?:,|\band\b|&|/)\s*(?:{'|'.join(GENRE_PATTERNS.values())}))*\s*(?:films?|movies?)?\s*like\s*", re.I
)
_IT_IS = re.compile(r"\b(?:it is|it's|it was)\b", re.I)
_DECADE = re.compile(
    r"\b((?:18|19|20)\d0)s\b|(?<![\w'])'?(\d)0s\b"
    r"|\b(twenties|thirties|forties|fifties|sixties|seventies|eighties|nineties)\b",
    re.I,
)
_DECADE_WORDS = {"twenties": "1920s", "thirties": "1930s", "forties": "1940s", "fifties": "1950s",
                 "sixties": "1960s", "seventies": "1970s", "eighties": "1980s", "nineties": "1990s"}  # fmt: skip
_YEAR = re.compile(r"\b(?:18|19|20)\d\d\b")
_SAME_ERA = re.compile(r"\bsame (?:era|decade|year|period)\b", re.I)
_COWATCH = re.compile(
    r"\b(?:people|viewers|users|others|audiences?) (?:who|that) (?:watched|saw|liked|loved|enjoyed)|also watched"
    r"|watched (?:together|both)|co-?watch\w*",
    re.I,
)
_COUNT = re.compile(r"\b(\d[\d,]*)\s+(?:of the\s+(\d[\d,]*)\s+)?(?:people|viewers|users|others)\b", re.I)
# A relation a sentence states -> the graph words (``data.knowledge``) that support it.
_RELATIONS = {
    r"sequel": ("sequel",),
    r"prequel": ("prequel",),
    r"same series|series": ("series", "sequel", "prequel"),
    r"same director|directed by|director": ("director",),
    r"same (?:writer|screenwriter)|written by|writer": ("writer",),
    r"cast members?|actors?|actress\w*|same cast|starring|stars?": ("cast",),
}
_CAST_COUNT = re.compile(r"\b(\d+) cast members\b", re.I)
_CENTURY = re.compile(r"\b(\d\d?)(?:st|nd|rd|th)[- ]century\b", re.I)
_FILM_COUNT = re.compile(r"\b(\d+) (?:films|movies|titles)\b", re.I)
_NUMBER = re.compile(r"(?<![\w.,])\d[\d,.]*(?:st|nd|rd|th)?\b")
_PAST = r"(?:watched|seen|saw|liked|loved|enjoyed|rated|viewed|adored|rewatched)"
_SUBJECT = r"(?:\byou(?:'ve|'d| have| had)?|\bthe (?:user|person|viewer))"
_ADVERBS = r"(?:\s+(?:already|also|once|recently|really|previously|both))*"
_WATCHED_BEFORE = re.compile(rf"{_SUBJECT}{_ADVERBS}\s+{_PAST}\s*$", re.I)
_FAN_OF = re.compile(r"\b(?:as an?|you(?:'re| are)(?: an?)?(?: big)?|your) fans? of\s*$", re.I)
_WATCHED_IT = re.compile(rf"{_SUBJECT}{_ADVERBS}\s+{_PAST}\s+(?:it|this(?: film| movie| one)?)\b", re.I)
_SEEN_BEFORE = re.compile(r"\b(?:again|rewatch\w*|re-watch\w*|revisit\w*|once more|already|your favou?rites?)\b", re.I)
_THIRD_PERSON = re.compile(r"\bthe (?:user|person|viewer|customer)\b|\bthey (?:watched|liked|enjoyed)\b", re.I)
_GLUE = {"and", "the", "movie", "movies", "film", "films", "both", "also", "as", "well", "or", "too", "classic", "&"}
_STOP = set(
    "a an the and or but so of in on to for with from at by as is are was were be been it its this that these those "
    "you your we i they he she them his her our may might will would could should can also both all three because "
    "like than then there here which who whom what when why how very more most just not no about into too".split()
)


@dataclass(frozen=True)
class Film:
    """A film the rubric knows: catalogue facts only."""

    id: str
    title: str
    year: int | None
    genres: tuple[str, ...]


@dataclass(frozen=True)
class RubricContext:
    """What the text may say: the recommended film, the history, the measured influences and the
    links of each (co-watching counts, graph relations)."""

    item: Film
    history: tuple[Film, ...]
    influences: frozenset[str]  # ids of measured influences that raised the score (a group's members too)
    cowatch: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # history id -> (both, watched)
    relations: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # history id -> {graph word: count}
    groups: tuple[frozenset[str], ...] = ()  # members of group influences: measured together, named together

    @property
    def allowed_ids(self) -> list[str]:
        return [film.id for film in self.history] + [self.item.id]

    @classmethod
    def from_evidence(cls, evidence: Mapping[str, Any], history: Sequence[Any]) -> RubricContext:
        """From ``explanation_evidence.build_evidence``'s dict and the history items (``Item``)."""
        item = evidence["item"]
        films = tuple(Film(h.id, h.display_title(), h.year, tuple(h.genres)) for h in history)
        cowatch, relations = {}, {}
        for entry in evidence["influences"]:
            for link in entry["links"]:
                if link["kind"] == "cowatch":
                    cowatch[entry["id"]] = (int(link["both"]), int(link["watched"]))
                if link["kind"] == "relation":
                    relations.setdefault(entry["id"], {})[link["relation"]] = int(link.get("count", 1))
        target = Film(item["id"], item["title"], item["year"], tuple(item["genres"]))
        members = frozenset(e["id"] for e in evidence["influences"] if e.get("group"))
        influences = frozenset(e["id"] for e in evidence["influences"])
        return cls(target, films, influences, cowatch, relations, (members,) if members else ())


@dataclass(frozen=True)
class RubricScore:
    """The rubric's verdict on one text."""

    names_influence: bool
    supported_link: bool
    false_claims: tuple[tuple[str, str], ...]
    content_words: int
    links: tuple[str, ...] = ()  # kinds of supported links stated
    second_person: bool = True
    names_item: bool = True  # the recommended film is named

    @property
    def passes(self) -> bool:
        """Names the film and a measured influence, states a supported link, speaks to "you", claims nothing false."""
        return (
            self.names_influence
            and self.supported_link
            and self.second_person
            and self.names_item
            and not self.false_claims
        )

    def to_dict(self) -> dict[str, Any]:
        return {"names_influence": self.names_influence, "supported_link": self.supported_link,
                "false_claims": [list(c) for c in self.false_claims], "content_words": self.content_words,
                "links": list(self.links), "second_person": self.second_person, "names_item": self.names_item,
                "passes": self.passes}  # fmt: skip


def mask_titles(text: str, spans: Sequence[tuple[int, ...]], fill: str = " ") -> str:
    """``text`` with each title span blanked, except a full stop that ends the sentence after it
    (a span takes "Sunset Blvd." whole, and "... like Fargo." its period too)."""
    masked = list(text)
    for start, end, *_ in spans:
        stop = end
        while stop > start and text[stop - 1] in ".!?" and _sentence_ends(text[end:]):
            stop -= 1
        masked[start:stop] = fill * (stop - start)
    return "".join(masked)


def _sentence_ends(after: str) -> bool:
    """True when ``after`` (the text after a full stop) is empty or starts a new sentence."""
    rest = after.lstrip()
    return not rest or (after[:1].isspace() and rest[:1].isupper())


def _decade(year: int | None) -> str:
    return f"{year // 10 * 10}s" if year else ""


def _decade_of(match: re.Match[str]) -> str:
    if match.group(1):
        return f"{match.group(1)}s"
    if match.group(2):
        digit = int(match.group(2))
        return f"{19 if digit >= 2 else 20}{digit}0s"
    return _DECADE_WORDS[match.group(3).lower()]


class _Reader:
    """One text: the films each title span names, the text with titles blanked, sentence bounds."""

    def __init__(self, text: str, context: RubricContext, spans: Sequence[tuple[int, int, tuple[str, ...]]]):
        self.text, self.context = text, context
        films = {film.id: film for film in (*context.history, context.item)}
        self.named: list[tuple[int, int, Film]] = []
        for start, end, ids in spans:
            ids = tuple(ids)
            chosen = context.item.id if context.item.id in ids else next((i for i in ids if i in films), None)
            if chosen is not None:
                self.named.append((start, end, films[chosen]))
        self.masked = mask_titles(text, [(start, end) for start, end, _ in self.named])
        bounds = [0] + [m.end() for m in re.finditer(r"[.!?](?=\s|$)", self.masked)] + [len(text)]
        self.sentences = [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]

    def sentence_of(self, position: int) -> tuple[int, int]:
        return next(((a, b) for a, b in self.sentences if a <= position < b), self.sentences[-1])

    def films_in(self, start: int, end: int) -> list[Film]:
        return [film for s, _, film in self.named if start <= s < end]

    def subject_of(self, match: re.Match[str]) -> Film | None:
        """The film a co-watching phrase is about: the first named after it in its sentence
        ("people who watched Seven"), else the last named before it ("Seven ... also watched it")."""
        start, end = self.sentence_of(match.start())
        after = self.films_in(match.end(), end)
        before = self.films_in(start, match.start())
        return after[0] if after else (before[-1] if before else None)

    def scope(self, position: int, claim_end: int | None = None) -> tuple[list[Film], bool]:
        """The films a claim at ``position`` is about, and whether it must hold for all of them."""
        start, end = self.sentence_of(position)
        if claim_end is not None:
            compared = self.compared_with(position, claim_end, end)
            if compared is not None:
                return compared, True
        before = [(s, film) for s, _, film in self.named if start <= s < position]
        quantifiers = list(_QUANTIFIER.finditer(self.masked, start, position))
        if quantifiers:
            q = quantifiers[-1].start()
            covered = [film for s, film in before if s < q]
            if len(covered) >= 2 and len(covered) == len(before):  # no film named between "both" and the claim
                return covered, True
        if len(before) >= 2 and _PLURAL_AFTER.search(self.masked, position, end):
            return [film for _, film in before], True
        if before:
            return [before[-1][1]], True
        return self.films_in(start, end) or [self.context.item], False

    def compared_with(self, position: int, claim_end: int, sentence_end: int) -> list[Film] | None:
        """ "<genre> film like <Film>": the claim is about that film, and about the recommended one
        when its clause says "it is" ("it is a war film like Dr. Strangelove"); None otherwise."""
        for s, _, film in self.named:
            if claim_end <= s < sentence_end:
                if not _LIKE_BEFORE_TITLE.fullmatch(self.masked[claim_end:s]):
                    return None
                clause = self.masked[:position].rsplit(",", 1)[-1].rsplit(":", 1)[-1]
                return [film, self.context.item] if _IT_IS.search(clause) else [film]
        return None


def _check_attributes(reader: _Reader, claims: list[tuple[str, str]], links: set[str]) -> None:
    """Genre, year and decade words: false when their film lacks them; a link when the recommended
    film and a measured influence named in the same sentence both have them."""
    context, masked = reader.context, reader.masked
    for genre, pattern in GENRE_PATTERNS.items():
        for match in re.finditer(rf"\b(?:{pattern})\b", masked, re.I):
            if _NEGATION.search(masked[: match.start()]):
                continue
            wrong = _false_for(*reader.scope(match.start(), match.end()), _has_genre(genre))
            if wrong is not None:
                claims.append(("wrong_genre", f"{match.group()} for {wrong.title}"))
            elif genre in context.item.genres and _influence_has(reader, match.start(), _has_genre(genre)):
                links.add("genre")
    eras = [(m, _decade_of(m)) for m in _DECADE.finditer(masked)]
    eras += [(m, m.group()) for m in _YEAR.finditer(masked)]
    for match, value in eras:
        films, every = reader.scope(match.start())

        def has(film: Film, value: str = value) -> bool:
            return _decade(film.year) == value if value.endswith("s") else str(film.year) == value

        wrong = _false_for(films, every, has)
        if wrong is not None:
            claims.append(("wrong_year", f"{match.group()} for {wrong.title}"))
        elif has(context.item) and _influence_has(reader, match.start(), has):
            links.add("era")
    for match in _SAME_ERA.finditer(masked):
        if _influence_has(reader, match.start(), lambda f: _decade(f.year) == _decade(context.item.year)):
            links.add("era")
        else:
            claims.append(("wrong_year", match.group()))
    for start, end, film in reader.named:  # "Fargo (1994)": the year written with a title
        year = re.search(r"\((\d{4})\)\s*$", reader.text[start:end])
        if year and film.year and int(year.group(1)) != film.year:
            claims.append(("wrong_year", f"{reader.text[start:end]} is from {film.year}"))


def _false_for(films: list[Film], every: bool, holds: Any) -> Film | None:
    """The film a claim about ``films`` is false for (it must hold for each when ``every``, else for one)."""
    found = [holds(film) for film in films]
    if all(found) if every else any(found):
        return None
    return next(film for film, ok in zip(films, found) if not ok)


def _has_genre(genre: str) -> Any:
    return lambda film: genre in film.genres


def _influence_has(reader: _Reader, position: int, test: Any) -> bool:
    start, end = reader.sentence_of(position)
    return any(film.id in reader.context.influences and test(film) for film in reader.films_in(start, end))


def _check_logs(reader: _Reader, claims: list[tuple[str, str]], links: set[str]) -> None:
    """Co-watching and graph relations must be what the logs and the graph say about a named film."""
    context, masked = reader.context, reader.masked
    for match in _COWATCH.finditer(masked):
        counts = context.cowatch.get(getattr(reader.subject_of(match), "id", ""), (0, 0))
        if counts[0] > 0:
            links.add("cowatch")
        else:
            claims.append(("wrong_count", f"{match.group()!r} without co-watching in the logs"))
    for match in _COUNT.finditer(masked):
        both = int(match.group(1).replace(",", ""))
        watched = int(match.group(2).replace(",", "")) if match.group(2) else None
        known = context.cowatch.get(getattr(reader.subject_of(match), "id", ""))
        if not (known and known[0] == both and watched in (None, known[1])):
            claims.append(("wrong_count", match.group()))
    for pattern, words in _RELATIONS.items():
        for match in re.finditer(rf"\b(?:{pattern})\b", masked, re.I):
            start, end = reader.sentence_of(match.start())
            named = reader.films_in(start, end)
            if any(word in context.relations.get(film.id, {}) for film in named for word in words):
                links.add("relation")
            else:
                claims.append(("unsupported_relation", match.group()))
    for match in _CAST_COUNT.finditer(masked):
        start, end = reader.sentence_of(match.start())
        counts = [context.relations.get(film.id, {}).get("cast") for film in reader.films_in(start, end)]
        if int(match.group(1)) not in counts:
            claims.append(("unsupported_relation", match.group()))


def _check_numbers(reader: _Reader, claims: list[tuple[str, str]]) -> None:
    """Every number outside a title must be one the other rules check (a year, a decade, a co-watching or
    cast count), a century every film it is about lies in, or a count of films no larger than the films
    named; any other ("the film's 20-year history") states what no evidence can support."""
    masked, checked = reader.masked, []
    for pattern in (_YEAR, _DECADE, _COUNT, _CAST_COUNT):
        checked += [m.span() for m in pattern.finditer(masked)]
    for match in _CENTURY.finditer(masked):
        checked.append(match.span())
        century = int(match.group(1))
        in_it = lambda f, c=century: f.year is not None and f.year // 100 + 1 == c  # noqa: E731
        wrong = _false_for(*reader.scope(match.start()), in_it)
        if wrong is not None:
            claims.append(("wrong_year", f"{match.group()} for {wrong.title}"))
    for match in _FILM_COUNT.finditer(masked):
        checked.append(match.span())
        if int(match.group(1)) > len({film.id for _, _, film in reader.named}):
            claims.append(("unsupported_number", match.group()))
    for match in _NUMBER.finditer(masked):
        if not any(start <= match.start() < end for start, end in checked):
            start, end = reader.sentence_of(match.start())
            before, after = masked[start : match.start()].split()[-3:], masked[match.start() : end].split()[:4]
            claims.append(("unsupported_number", " ".join(before + after)))


def _check_target(reader: _Reader, claims: list[tuple[str, str]]) -> None:
    """Nothing may say or imply that the person already watched, liked or rated the recommended film."""
    context, text = reader.context, reader.text
    for start, end, film in reader.named:
        if film.id != context.item.id:
            continue
        sentence_start, _ = reader.sentence_of(start)
        before = list(text[sentence_start:start])
        for s, e, other in reader.named:
            if sentence_start <= s < start and other.id != context.item.id:
                before[s - sentence_start : e - sentence_start] = " " * (e - s)
        words = re.findall(r"[\w']+|[^\w\s]", "".join(before))
        stripped = []
        while words and (words[-1].lower() in _GLUE or words[-1] in {",", "(", ")"}):
            stripped.append(words.pop().lower())
        head = " ".join(words)
        if "," in stripped and not {"and", "or"} & set(stripped):
            # "you watched A, T and B" lists T; "Since you loved A, T has ..." starts a new clause with T.
            after = re.match(r"\s*([\w']+|[^\w\s]|$)", reader.masked[end:]).group(1).lower()
            if after not in {"and", "or", "", ".", ",", ";", ":", "!", "?"}:
                continue
        if _WATCHED_BEFORE.search(head) or _FAN_OF.search(head):
            claims.append(("watched_target", f"{head[-40:]} {film.title}".strip()))
    for match in _WATCHED_IT.finditer(reader.masked):
        sentence_start, _ = reader.sentence_of(match.start())
        named = [f for s, _, f in reader.named if sentence_start <= s < match.start()]
        if not named or named[-1].id == context.item.id:
            claims.append(("watched_target", match.group()))
    for match in _SEEN_BEFORE.finditer(reader.masked):
        claims.append(("watched_target", match.group()))


def score_explanation(text: str, context: RubricContext, check: Any) -> RubricScore:
    """Score ``text`` against ``context``.

    Args:
        text: the explanation shown to the person.
        context: the evidence it may use (``RubricContext.from_evidence``).
        check: ``explanation_titles.TitleChecker(catalog).check(text, context.allowed_ids)``: the
            allowed titles named (with their spans) and the invented ones.
    """
    claims: list[tuple[str, str]] = [("outside_film", phrase) for phrase, _ in check.invented]
    reader = _Reader(text, context, check.spans)
    links: set[str] = set()
    _check_attributes(reader, claims, links)
    _check_logs(reader, claims, links)
    _check_numbers(reader, claims)
    _check_target(reader, claims)
    named = {film.id for _, _, film in reader.named}
    in_group = frozenset().union(*context.groups)
    for film in context.history:
        if film.id in named and film.id not in context.influences and film.id != context.item.id:
            claims.append(("unmeasured_influence", film.title))
        elif film.id in named and any(film.id in g and not g <= named for g in context.groups):
            claims.append(("unmeasured_influence", f"{film.title} without the rest of its group"))
    words = {w for w in re.findall(r"[a-z][a-z'-]+", text.lower()) if w not in _STOP}
    return RubricScore(
        names_influence=bool(named & (context.influences - in_group)) or any(g <= named for g in context.groups),
        supported_link=bool(links),
        false_claims=tuple(dict.fromkeys(claims)),
        content_words=len(words),
        links=tuple(sorted(links)),
        names_item=context.item.id in named,
        second_person=bool(re.search(r"\byou(?:r|'ve|'ll|'d)?\b", text, re.I)) and not _THIRD_PERSON.search(text),
    )


__all__ = ["GENRE_PATTERNS", "Film", "RubricContext", "RubricScore", "mask_titles", "score_explanation"]
