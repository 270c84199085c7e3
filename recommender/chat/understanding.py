"""Parse one chat message into a ``Refinement``: genres, exclusions, years, titles, query.

Pure: the standard library only. Genres come from the catalogue's own vocabulary (plus a
synonym table for the genres it has); titles are matched by ``TitleMatcher``, built once per
catalogue, which forgives case, typos, a missing or moved article ("Usual Suspects, The") and
an optional "(1995)". Nothing typed raises: the message is cleaned and truncated first.

    >>> refinement = parse_message("no horror, something funny from the 90s", catalog)
    >>> refinement.exclude_genres, refinement.include_genres, refinement.year_min
    (('Horror',), ('Comedy',), 1990)
"""

from __future__ import annotations

import re
import unicodedata
import weakref
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from recommender.chat.fragments import negated_fragment
from recommender.chat.lexicon import (
    ABBREVIATIONS,
    ADDITIVE,
    ADULT_PHRASES,
    BLACK_AND_WHITE_GAP,
    CLAUSE_WORDS,
    COUNT_NOUNS,
    DECADE_WORDS,
    EXCLUDE_CUES,
    FILLERS,
    GENRE_SYNONYMS,
    IDLE_PHRASES,
    LIST_GLUE,
    MEND_WORDS,
    MULTI_GENRE,
    NEGATOR_PHRASES,
    NOT_OLD_GAP,
    NOT_RECENT_GAP,
    NUMBER_WORDS,
    OLD_GAP,
    OLD_PHRASES,
    REASON_WORDS,
    RECENT_PHRASES,
    RECENT_SPAN,
    RESUME,
    SCRIPT_GENRES,
    SHOW_MORE_OPENERS,
    SHOW_MORE_TAILS,
    TRANSPARENT,
    YEAR_WORDS,
)
from recommender.data import Catalog
from recommender.data.titles import ARTICLES, FUZZY_CUTOFF, TitleMatch, TitleMatcher, TitleMiss, fold

MAX_MESSAGE_CHARS = 2000  # longer messages are cut here; the Refinement says so in ``notes``
MAX_TITLE_WORDS = 12  # a title cue looks at most this many words ahead
MAX_TITLE_CUES = 8  # at most this many "I liked X" phrases are matched per message

MAX_K = 50  # the most films one message may ask for ("recommend 500 movies" -> 50, with a note)
MAX_PHRASE = 6  # longest lexicon phrase, in words ("on the edge of my seat")
MAX_NEGATION_GAP = 2  # a negation reaches over at most this many other content words

_CONTROL = {"Cc", "Cf", "Cs", "Co", "Cn"}
_RESET = re.compile(r"\b(start (?:over|again|afresh|fresh|anew)|reset|"
                    r"clear (?:all (?:the )?filters|all|everything|(?:the )?filters)|forget (?:it|everything|all)|"
                    r"new search|from scratch|begin again)\b")  # fmt: skip
_SHOW_MORE = re.compile(rf"^(?:(?:{'|'.join(SHOW_MORE_OPENERS)})\s+)*(?:(?:show|give|find|suggest)\s+(?:me\s+)?)?"
                        r"(?:some\s+|any\s+)?(?:more|others|other ones|next|next page|something else|different ones)"
                        rf"(?:\s+(?:{'|'.join(SHOW_MORE_TAILS)}))*$")  # fmt: skip
_CUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("dislike", re.compile(r"\b(?:i\s+)?(?:(?:didn'?t|did not|don'?t|do not|did\s+not|really\s+didn'?t)\s+"
                           r"(?:like|love|enjoy|care for)|hated|hate|disliked|dislike|can'?t stand|couldn'?t stand|"
                           r"not a fan of)\s+", re.I)),
    ("like", re.compile(r"\b(?:more|something|anything|films?|movies?|stuff|ones?|similar)\s+like\s+|"
                        r"\bsimilar\s+to\s+|\bin the (?:vein|style|spirit) of\s+|\balong the lines of\s+|"
                        r"\breminds?\s+(?:me\s+)?of\s+|\b(?:same|similar)\s+(?:vibes?\s+)?as\s+|\bthe likes of\s+|"
                        r"\bsomething\s+(?:a\s+)?(?:bit\s+)?(?:like|similar to)\s+", re.I)),
    # A bare "like" only at the start of a clause or after a hedge: "like Toy Story", "kinda like Heat".
    ("like_bare", re.compile(r"(?:^|(?<=[,;.!?:])\s*|\b(?:just|kinda|kind of|sort of|and|but|or|maybe)\s+)"
                             r"like\s+", re.I)),
    ("liked", re.compile(r"\b(?:i\s+)?(?:really\s+|also\s+)?(?:liked|loved|enjoyed|adored|(?<=i )(?:like|love))\s+",
                         re.I)),
    ("seen", re.compile(r"\b(?:i(?:'ve|\s+have)?\s+)?(?:already\s+)?(?:seen|watched|saw)\s+", re.I)),
    ("exclude", re.compile(r"\b(?:" + "|".join(re.escape(c) for c in sorted(EXCLUDE_CUES, key=len, reverse=True))
                           + r")\s+", re.I)),
)  # fmt: skip
# After a title at the start of a clause: "Alien-style horror", "Star Wars vibes", "Titanic was boring".
_POSTFIX_SEED = re.compile(r"^(?:style|esque|like|type|vibes?|kind of|sort of|but|feel|energy)\b")
_POSTFIX_BAD = re.compile(
    r"^(?:was|is|were)\s+(?:so\s+|really\s+|too\s+|pretty\s+|kinda\s+)?(?:boring|bad|awful|"
    r"terrible|meh|overrated|dull|rubbish|crap|garbage|the worst|horrible|slow|long)\b"
)
_POSTFIX_GOOD = re.compile(
    r"^(?:was|is|were)\s+(?:so\s+|really\s+|pretty\s+)?(?:great|amazing|awesome|good|"
    r"brilliant|fantastic|the best|excellent|fun|perfect|incredible)\b"
)
_ANAPHORA = re.compile(
    r"\b(?:something|anything|films?|movies?)\s+(?:similar|like (?:it|that|this))\b|"
    r"\bsimilar (?:to (?:it|that|this)|ones?|films?|movies?)\b|\bmore like (?:it|that|this)\b"
)
_MARKUP = re.compile(r"<(script|style)\b.*?(?:</\1\s*>|$)|<[^<>]{0,300}>", re.I | re.S)
_SQL = re.compile(r"\b(?:drop|truncate|alter)\s+table\s+\w+|\bunion\s+(?:all\s+)?select\b[^;]*|\bdelete\s+from\s+\w+"
                  r"|\bor\s+1\s*=\s*1\b|--", re.I)  # fmt: skip
_NOT_TITLE = {"something", "anything", "movies", "films", "movie", "film", "stuff", "any", "ones", "the ones"}
_PRONOUNS = {"it", "that", "this", "them", "those", "these", "both", "all", "one", "some", "the first",
             "the last", "a lot", "you", "me", "him", "her", "so", "too", "to", "sure", "thanks", "way", "idea",
             "more"}  # fmt: skip
_OPENERS = {"hmm", "hm", "ok", "okay", "so", "well", "um", "uh", "oh", "ah", "hey", "hi", "right", "yeah", "nah", "ugh",
            "and", "also", "plus", "honestly", "sadly", "lol"}  # fmt: skip
_YEAR_TOKEN = re.compile(r"^\(?((?:18|19|20)\d\d)\)?$")


def clean_message(text: object, limit: int = MAX_MESSAGE_CHARS) -> tuple[str, bool]:
    """NFKC-normalised text without control or bidi-format characters, cut at ``limit``; (text, truncated)."""
    text = "" if text is None else str(text)
    text = unicodedata.normalize("NFKC", text[: limit * 4])
    text = "".join(" " if unicodedata.category(c) in _CONTROL and c not in "\n\t" else c for c in text)
    truncated = len(text) > limit
    return text[:limit].strip(), truncated


@dataclass(frozen=True)
class Refinement:
    """What one message asks for. Empty tuples and None mean "not mentioned"."""

    include_genres: tuple[str, ...] = ()
    exclude_genres: tuple[str, ...] = ()
    year_min: int | None = None
    year_max: int | None = None
    year_set: bool = False  # True when the message gave a decade, year or range (both bounds replace the old)
    more_like: tuple[str, ...] = ()  # item ids: "more like Fargo"
    liked: tuple[str, ...] = ()  # "I liked / loved X"
    disliked: tuple[str, ...] = ()  # "I hated X", "didn't like X"
    seen: tuple[str, ...] = ()  # "I watched / have seen X"
    exclude_items: tuple[str, ...] = ()  # "not Star Wars"; also every film of an excluded fragment
    exclude_fragments: tuple[str, ...] = ()  # "not another Star Trek": title fragments whose films are excluded
    titles: tuple[TitleMatch, ...] = ()  # every title recognised, for the reply
    unmatched: tuple[TitleMiss, ...] = ()  # titles that matched nothing, with the closest ones
    query: str = ""  # the free text left over, for the embedding retriever
    avoid_terms: tuple[str, ...] = ()  # negated words that are no genre or title ("without violence")
    show_more: bool = False
    reset: bool = False
    additive: bool = False  # "also comedies": add to the wanted genres instead of replacing them
    truncated: bool = False
    notes: tuple[str, ...] = field(default=())  # sentences for the reply: truncation, ranges outside the data
    k: int | None = None  # films asked for ("give me 3 options"), already capped at MAX_K (a note says so)

    @property
    def is_empty(self) -> bool:
        """True when the message asked for nothing we understood (the reply should help)."""
        return not (
            self.include_genres or self.exclude_genres or self.year_min is not None or self.year_max is not None
            or self.more_like or self.liked or self.disliked or self.seen or self.exclude_items or self.query
            or self.show_more or self.reset or self.k is not None
        )  # fmt: skip


# ---------------------------------------------------------------- titles after cues


def _clause_end(text: str, start: int) -> int:
    """End of the clause starting at ``start``: the next ; ! ? newline, " but ", or a sentence's full stop."""
    for match in re.finditer(r"[;!?\n]|\bbut\b|\bthough\b|\.(?=\s|$)", text[start:], re.I):
        if match.group() == ".":
            word = re.findall(r"(\S+)$", text[: start + match.start()])
            if word and (word[0].lower().strip("(") in ABBREVIATIONS or len(word[0]) == 1 or "." in word[0]):
                continue  # "Mr. Holland's Opus", "L.A. Confidential"
        return start + match.start()
    return len(text)


def _starts_with_phrase(words: list[str], phrases: set[str]) -> bool:
    return any(" ".join(words[:n]) in phrases for n in (3, 2, 1))


def _match_span(
    matcher: TitleMatcher, words: list[re.Match[str]], strict: bool, fuzzy: bool = True
) -> tuple[TitleMatch | None, int]:
    """Best title at the start of ``words``: (match, number of words it used)."""
    limit = min(len(words), MAX_TITLE_WORDS, matcher.max_words + 1)
    texts = [w.group() for w in words[:limit]]
    best: tuple[TitleMatch | None, int] = (None, 0)
    for n in range(limit, 0, -1):  # exact matches first, longest wins
        year = _YEAR_TOKEN.match(texts[n].strip(".,;")) if n < len(texts) else None
        match = matcher.exact(" ".join(texts[:n]), int(year.group(1)) if year else None)
        if match:
            return match, n + (1 if year else 0)
    cutoff = 0.88 if strict else FUZZY_CUTOFF
    for n in range(limit, 1 if strict else 0, -1) if fuzzy else ():  # strict: one word must be exact
        year = _YEAR_TOKEN.match(texts[n].strip(".,;")) if n < len(texts) else None
        match = matcher.fuzzy(" ".join(texts[:n]), int(year.group(1)) if year else None, cutoff)
        if match and (best[0] is None or match.score > best[0].score):
            best = (match, n + (1 if year else 0))
    for n in range(limit, 0, -1) if fuzzy and not strict and best[0] is None else ():
        match = matcher.prefix(" ".join(texts[:n]))  # "more like shawshank": the start of exactly one title
        if match:
            return match, n
    return best


_NEGATION_BEFORE = re.compile(r"\b(?:no|not|dont|don't|doesnt|doesn't|never|nothing|without|rather not|hate)\b",
                              re.I)  # fmt: skip


def _clause_start(text: str, start: int) -> int:
    """Start of the clause that holds ``start``: after the last , ; . ! ? newline or "but" before it."""
    last = 0
    for match in re.finditer(r"[,;.!?\n]|\bbut\b|\bthough\b", text[:start], re.I):
        last = match.end()
    return last


def _cue_skips(after: str, matcher: TitleMatcher, vocabulary: set[str]) -> bool:
    """True when the words after a cue are no title: a genre, a decade, a pronoun, a number. A capitalised
    exact title wins over a genre word ("like Aliens"); "like aliens" stays a genre."""
    folded = fold(after).split()
    if not folded or folded[0].isdigit():
        return True
    capital = after[:1].isupper() and not after.isupper()  # SHOUTING capitalises nothing
    match, used = _match_span(matcher, list(re.finditer(r"\S+", after)), strict=True, fuzzy=False)
    if match is not None and (folded[used] if used < len(folded) else "") not in COUNT_NOUNS:
        # A capitalised title ("like Aliens"); in lower case one with its own article ("seen the magic hour")
        # or of three words or more ("seen something to talk about"); "a war movie" stays a genre.
        if capital or used >= 3 or used >= 2 and folded[0] in ARTICLES and fold(match.typed) in matcher.keys:
            return False
    words = folded
    while len(words) > 1 and words[0] in LIST_GLUE | {"another", "with", "too"}:
        words = words[1:]
    if _decade(words[0]) or words[0].isdigit():
        return True
    return _starts_with_phrase(folded, vocabulary | _PRONOUNS | _NOT_TITLE) or _starts_with_phrase(
        words, vocabulary | _PRONOUNS
    )


def _titles_after_cues(text: str, matcher: TitleMatcher, vocabulary: set[str]):
    """Find "more like X", "I liked X", "not X" …; returns matches per cue, misses and consumed spans."""
    found: dict[str, list[TitleMatch]] = {name: [] for name, _ in _CUES}
    found["ignored"] = []  # "I haven't seen Heat": a title, but no fact about the person
    found["fragment"] = []  # "not another Star Trek": every film whose title holds the words
    misses: list[TitleMiss] = []
    consumed: list[tuple[int, int]] = []
    cues = []
    for name, pattern in _CUES:
        for match in pattern.finditer(text):
            if not any(s <= match.start() < e for _, s, e in cues) and match.end() > match.start():
                cues.append((name, match.start(), match.end()))
    for name, start, end in sorted(cues, key=lambda cue: cue[1])[:MAX_TITLE_CUES]:
        if any(s <= start < e for s, e in consumed):
            continue
        stop = _clause_end(text, end)
        words = list(re.finditer(r"\S+", text[end:stop]))
        if _cue_skips(text[end:stop].strip(), matcher, vocabulary):
            continue  # "I like comedies", "not from the 90s", "no thanks", "not another musical": not a title
        denied = name in {"liked", "seen"} and re.search(r"(?:n'?t|\bnot|\bnever)\s+(?:\w+\s+)?$", text[:start])
        if name in {"like", "like_bare"} and _NEGATION_BEFORE.search(text[_clause_start(text, start) : start]):
            name = "exclude"  # "I don't want anything like Scream": no seed
        cue_matches, used_end, fragments = [], end, 0
        while words:
            offset = words[0].start()
            fragment = negated_fragment(text[end + offset : stop], text[start:end], matcher.catalog) if (
                name == "exclude") else None  # fmt: skip
            if fragment is not None:  # "not another Star Trek": every film whose title holds the words
                found["fragment"].append(TitleMatch(fragment.typed, fragment.item_ids, fragment.typed, 1.0))
                used = max(1, sum(1 for w in words if w.start() < offset + fragment.end))
                fragments += 1
            else:
                match, used = _match_span(matcher, words, strict=name in {"exclude", "like_bare"})
                if match is None:
                    break
                cue_matches.append(match)
            used_end = end + words[used - 1].end()
            comma = words[used - 1].group().endswith(",")
            words = words[used:]
            if not comma and not (words and fold(words[0].group()) in {"and", "or", ""}):
                break  # another title must follow a list separator: "Fargo, Heat and Babe"
            while words and fold(words[0].group()) in {"and", "or", ""}:
                words = words[1:]
            if words and fold(words[0].group()) in NEGATOR_WORDS | _NOT_TITLE | _PRONOUNS:
                break  # "like Fargo, not Pulp Fiction": the next title has its own cue
            if words and _cue_skips(text[end + words[0].start() : stop], matcher, vocabulary):
                break  # "I loved Contact and a family movie": a genre, no second title
        if cue_matches or fragments:
            found["ignored" if denied else name].extend(cue_matches)
            consumed.append((start, used_end))
        elif name not in {"exclude", "like_bare"}:
            comma = text.find(",", end, stop)
            stop = comma if comma > 0 else stop  # "I liked Qwerty, westerns": the miss ends at the comma
            typed = " ".join(text[end:stop].split()[:MAX_TITLE_WORDS]).strip(" ,.")
            misses.append(TitleMiss(typed, matcher.closest(typed)))
            consumed.append((start, stop))
    found["like"] += found.pop("like_bare")
    return found, misses, consumed


def _titles_leading_clauses(text: str, matcher: TitleMatcher, found: dict[str, list[TitleMatch]]):
    """A title opening a clause, then "-style", "vibes", "but …" or "was boring": a seed, a like or a dislike."""
    consumed = []
    for clause in re.finditer(r"[^,;.!?\n]+", text):
        words = list(re.finditer(r"\S+", clause.group()))
        while len(words) > 1 and fold(words[0].group()) in _OPENERS:
            words = words[1:]  # "hmm Cemetery Man was boring"
        if not words:
            continue
        match, used = _match_span(matcher, words, strict=True, fuzzy=False)
        if match is None:
            continue
        after = fold(clause.group()[words[used - 1].end() :])
        first = not text[: clause.start()].strip(" ;,")
        verdict = _POSTFIX_BAD.match(after) or _POSTFIX_GOOD.match(after)
        if verdict:
            found["dislike" if verdict.re is _POSTFIX_BAD else "liked"].append(match)
        elif _POSTFIX_SEED.match(after) and (after.split()[0] != "but" or first):
            found["like"].append(match)
        else:
            continue
        end = words[used - 1].end()
        if verdict:  # "was boring" is said about the film, not asked for: no query word
            end = words[min(len(words), used + len(verdict.group().split())) - 1].end()
        consumed.append((clause.start() + words[0].start(), clause.start() + end))
    return consumed


# ---------------------------------------------------------------- genres, years, negation


def _lexicon(catalog: Catalog) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Folded phrase -> (kind, genres) for this catalogue: kind is genre, adult, recent, old, neg or idle."""
    lexicon = _LEXICON.get(catalog)
    if lexicon is not None:
        return lexicon
    genres = {g for g in catalog.genre_vocabulary if g.lower() != "unknown"}
    lexicon = {}
    for phrase, names in MULTI_GENRE.items():
        if set(names) <= genres:
            lexicon[phrase] = ("genre", names)
    for genre in sorted(genres):
        for phrase in (*GENRE_SYNONYMS.get(genre, ()), fold(genre), fold(genre) + "s"):
            lexicon.setdefault(phrase, ("genre", (genre,)))
    if "Children's" in genres:
        lexicon.update({phrase: ("adult", ("Children's",)) for phrase in ADULT_PHRASES})
    lexicon.update({phrase: ("recent", ()) for phrase in RECENT_PHRASES})
    lexicon.update({phrase: ("old", ()) for phrase in OLD_PHRASES})
    lexicon.update({phrase: ("old", ("bw",)) for phrase in ("black and white", "b w", "silent", "silent era")})
    lexicon.update({phrase: ("neg", ()) for phrase in NEGATOR_PHRASES})
    lexicon.update({phrase: ("idle", ()) for phrase in IDLE_PHRASES})
    _LEXICON[catalog] = lexicon
    return lexicon


_LEXICON: weakref.WeakKeyDictionary[Catalog, dict] = weakref.WeakKeyDictionary()
NEGATOR_WORDS = {phrase for phrase in NEGATOR_PHRASES if " " not in phrase}


def _genre_phrases(catalog: Catalog) -> dict[str, str]:
    """Folded phrase -> genre (single-genre phrases of the lexicon), for the cue checks."""
    return {phrase: names[0] for phrase, (kind, names) in _lexicon(catalog).items() if kind == "genre"}


def _decade(token: str) -> int | None:
    """1990 for "90s", "1990s", "nineties" (or "ninetes": one slip); None otherwise."""
    if token in DECADE_WORDS:
        return DECADE_WORDS[token]
    if len(token) >= 6 and token.isalpha() and token not in FILLERS:
        slip = _slip(token, list(DECADE_WORDS))
        return DECADE_WORDS[slip[0]] if slip else None
    match = re.fullmatch(r"((?:18|19|20)\d0|\d0)s", token)
    if not match:
        return None
    value = int(match.group(1))
    return value if value >= 100 else (2000 + value if value < 20 else 1900 + value)


class _YearParser:
    """Collects year bounds from tokens; decades and single years widen, before/after narrow, a negated
    span cuts the edge it touches (of the asked range, else of the catalogue)."""

    def __init__(self, oldest: int | None, newest: int | None):
        self.oldest, self.newest = oldest, newest
        self.ranges: list[tuple[int, int]] = []
        self.negated: list[tuple[int, int, str]] = []
        self.lower: int | None = None
        self.upper: int | None = None
        self.notes: list[str] = []

    def bound(self, lower: int | None = None, upper: int | None = None) -> None:
        if lower is not None:
            self.lower = lower if self.lower is None else max(self.lower, lower)
        if upper is not None:
            self.upper = upper if self.upper is None else min(self.upper, upper)

    def result(self) -> tuple[int | None, int | None, bool]:
        lo = min((r[0] for r in self.ranges), default=None)
        hi = max((r[1] for r in self.ranges), default=None)
        if self.lower is not None:
            lo = self.lower if lo is None else max(lo, self.lower)
        if self.upper is not None:
            hi = self.upper if hi is None else min(hi, self.upper)
        for n_lo, n_hi, token in self.negated:
            edge_lo = lo if lo is not None else self.oldest
            edge_hi = hi if hi is not None else self.newest
            if edge_lo is not None and n_lo <= edge_lo <= n_hi:
                lo = n_hi + 1  # "90s but not the early 90s", "nothing from the 60s or earlier"
            elif edge_hi is not None and n_lo <= edge_hi <= n_hi:
                hi = n_lo - 1  # "not from the 90s" in a catalogue that ends in 1998
            else:
                self.notes.append(f'I can\'t leave out a span of years in the middle; ignoring "not {token}".')
        return lo, hi, bool(self.ranges)


def _parse_years(tokens: list[str], used: list[bool], years: _YearParser, negated_at) -> None:
    """Mark the year tokens in ``tokens`` as used and record their bounds in ``years``."""
    for i, token in enumerate(tokens):
        if used[i]:
            continue
        modifier = tokens[i - 1] if i and tokens[i - 1] in {"early", "mid", "late"} else ""
        decade = _decade(token)
        year = int(token) if re.fullmatch(r"(?:18|19|20)\d\d", token) else None
        span = (decade, decade + 9) if decade is not None else (year, year) if year is not None else None
        if span is None:
            continue
        lo, hi = span
        if decade is not None and modifier:
            lo, hi = {"early": (lo, lo + 3), "mid": (lo + 3, lo + 6), "late": (lo + 6, hi)}[modifier]
            used[i - 1] = True
        used[i] = True
        window = range(max(0, i - 3), i)
        look = [tokens[k] for k in window if tokens[k] not in {"the", "early", "mid", "late", "year"}]
        word = look[-1] if look else ""
        after = " ".join(tokens[i + 1 : i + 3])
        for k in window:
            used[k] = used[k] or tokens[k] in YEAR_WORDS
        negated = negated_at(i)
        if word in {"before", "pre", "until", "till", "prior", "older", "earlier"} or (word == "to" and "up" in look):
            inclusive = word in {"until", "till", "to"}
            edge = hi if inclusive else lo - 1
            years.bound(lower=edge + 1) if negated else years.bound(upper=edge)
        elif word in {"after", "since", "post", "newer", "later", "onwards", "from"} and (
            word != "from" or (i + 1 < len(tokens) and tokens[i + 1] in {"on", "onwards", "onward"})
        ):
            edge = lo if word in {"since", "from"} else hi + 1
            years.bound(upper=edge - 1) if negated else years.bound(lower=edge)
        elif word in {"and", "to"} and years.ranges and not negated:
            first = years.ranges.pop()  # "between 1980 and 1990", "1980 to 1990"
            years.ranges.append((min(first[0], lo), max(first[1], hi)))
        elif negated:
            if re.match(r"(?:or|and) (?:earlier|before|older)", after):
                lo = min(lo, years.oldest or lo)
            elif re.match(r"(?:or|and) (?:later|after|newer)", after):
                hi = max(hi, years.newest or hi)
            years.negated.append((lo, hi, token))
        else:
            years.ranges.append((lo, hi))


def _tokens(text: str) -> list[str]:
    text = re.sub(r"((?:18|19|20)\d\d)\s*[-–]\s*((?:18|19|20)\d\d)", r"\1 to \2", text)
    raw = re.findall(r"[^\W_]+(?:['’][^\W_]+)*|[,;.!?:]", text)
    return [t for t in (fold(t) if t not in ",;.!?:" else t for t in raw) for t in t.split() or [""] if t]


def _phrases(tokens: list[str], lexicon: dict) -> list[tuple[int, int, str, tuple[str, ...]]]:
    """Lexicon phrases in order, longest first: (start, length, kind, genres)."""
    found, i = [], 0
    single = [p for p, (kind, _) in lexicon.items() if kind == "genre" and " " not in p and len(p) >= 5]
    near = [p for p, (kind, _) in lexicon.items() if kind in {"genre", "recent", "old"} and " " not in p]
    while i < len(tokens):
        for n in range(min(MAX_PHRASE, len(tokens) - i), 0, -1):
            phrase = " ".join(tokens[i : i + n])
            if phrase not in lexicon:
                continue
            if phrase in {"year old", "years old"} and not (
                i and (tokens[i - 1].isdigit() or tokens[i - 1] in NUMBER_WORDS)
            ):
                continue  # "a 6 year old" is a child; "a 40 year old film" is no genre
            found.append((i, n, *lexicon[phrase]))
            i += n
            break
        else:
            token = tokens[i]
            script = [g for word, g in SCRIPT_GENRES.items() if word in token] if not token.isascii() else []
            if script and all(g in {p for _, names in lexicon.values() for p in names} for g in script):
                found.append((i, 1, "genre", tuple(script)))
            elif token.isalpha() and len(token) >= 5 and token not in FILLERS:
                best = process.extractOne(token, single, scorer=fuzz.ratio, score_cutoff=88) or _slip(token, near)
                if best:  # "horor", "comedys", "thriler"; one slip: "drmaa", "wetsern", "modeern"
                    found.append((i, 1, *lexicon[best[0]]))
            i += 1
    return found


def _slip(token: str, words: list[str]) -> tuple[str, ...] | None:
    """The word ``token`` is one typing slip from (a swap, a dropped, doubled or wrong letter), or None.

    Six letters or more for any slip ("ninetes", "modeern", "anmiated"); five letters only for two
    swapped letters ("drmaa"), so that "eastern" stays no western and "funky" no "funny"."""
    best = process.extractOne(token, words, scorer=OSA.distance, score_cutoff=1)
    if best is None or best[1] == 0:
        return None
    if len(token) >= 6 and len(best[0]) >= 6 or sorted(token) == sorted(best[0]):
        return (best[0],)
    return None


def _mend_slips(text: str, catalog: Catalog) -> str:
    """``text`` with each word that is one typing slip from a ``MEND_WORDS`` word written as that word
    ("lvoed Scream" -> "loved Scream"); words of the catalogue's titles and the lexicon stay as typed."""
    known = _known_words(catalog)

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


def _known_words(catalog: Catalog) -> set[str]:
    """Words never mended: every word of the catalogue's titles, the lexicon's and the fillers."""
    known = _KNOWN.get(catalog)
    if known is None:
        known = {w for key in TitleMatcher.for_catalog(catalog).keys for w in key.split()}
        known |= {w for phrase in _lexicon(catalog) for w in phrase.split()} | FILLERS | set(MEND_WORDS)
        known |= set(NUMBER_WORDS) | set(DECADE_WORDS) | COUNT_NOUNS | YEAR_WORDS
        _KNOWN[catalog] = known
    return known


_KNOWN: weakref.WeakKeyDictionary[Catalog, set[str]] = weakref.WeakKeyDictionary()


def _new_is_recent(tokens: list[str], i: int, lexicon: dict) -> bool:
    """ "new movies", "new comedies": recent; "something new", "new search": not a year bound."""
    following = tokens[i + 1] if i + 1 < len(tokens) else ""
    return following in COUNT_NOUNS | {"stuff", "releases", "release"} or lexicon.get(following, ("",))[0] == "genre"


def _scope(tokens: list[str], phrases) -> tuple[list[bool], list[int], list[bool]]:
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
    while i < len(tokens):
        token = tokens[i]
        n, kind = at.get(i, (1, ""))
        if kind == "idle":
            state = False
        elif kind == "neg":
            state, gap, governed = True, 0, False
        elif token in {",", ";", ".", "!", "?", ":"} | CLAUSE_WORDS or (
            token in {"and", "or"} and not _continues(tokens, i, item_at)
        ):
            number, state, explains = number + 1, False, token in REASON_WORDS
        elif kind or _decade(token) or re.fullmatch(r"(?:18|19|20)\d\d", token):
            gap, governed = 0, governed or state
        elif state and governed and token in RESUME:
            state = False
        elif state and token not in TRANSPARENT and token not in YEAR_WORDS and token not in FILLERS:
            gap += 1
            state = gap <= MAX_NEGATION_GAP
        for k in range(i, i + n):
            negated[k], clause[k], reason[k] = state and kind != "neg", number, explains
        i += n
    return negated, clause, reason


def _continues(tokens: list[str], i: int, item_at: set[int]) -> bool:
    """True when the "and"/"or" at ``i`` joins two items of one list: "no horror or (any) thrillers"."""
    j = i + 1
    while j < len(tokens) and tokens[j] in LIST_GLUE:
        j += 1
    return j in item_at or (j < len(tokens) and bool(_decade(tokens[j]) or tokens[j].isdigit()))


def _count(tokens: list[str], used: list[bool]) -> int | None:
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
            and all(t in _ADJECTIVAL for t in ahead[:noun])
        ):
            used[i] = True
            if previous == "top":
                used[i - 1] = True
            return value
    return None


_ADJECTIVAL = {"sci", "fi", "good", "great", "funny", "scary", "different", "random", "romantic", "other", "classic"}


def _genre_plural(token: str) -> bool:
    return token.endswith("s") and (token in _GENRE_PLURALS)


_GENRE_PLURALS = {
    "comedies",
    "dramas",
    "thrillers",
    "westerns",
    "musicals",
    "horrors",
    "romances",
    "documentaries",
    "cartoons",
    "mysteries",
    "romcoms",
    "actions",
    "adventures",
    "classics",
    "noirs",
    "fantasies",
    "horror",
    "action",
    "comedy",
    "drama",
    "thriller",
    "western",
    "musical",
    "documentary",
    "war",
}
_GENRE_PLURALS |= {s + "s" for s in ("sci fi", "scifi")}


def _parse_rest(text: str, catalog: Catalog):
    """Genres (with negation scope), years, count, leftover query words and avoided words of the text outside
    titles: (genres, years, k, query, avoid, additive)."""
    lexicon = _lexicon(catalog)
    tokens = [t for t in _tokens(text) if t]
    used = [False] * len(tokens)
    phrases = _phrases(tokens, lexicon)
    negated, clause, reason = _scope(tokens, phrases)
    k = _count(tokens, used)
    valid = catalog.years[catalog.years > 0]
    years = _YearParser(int(valid.min()) if len(valid) else None, int(valid.max()) if len(valid) else None)
    genres: dict[str, list] = {"include": [], "exclude": []}  # (genre, soft) pairs for the exclusions
    for start, n, kind, names in phrases:
        if any(used[start : start + n]):
            continue
        if kind == "recent" and tokens[start] == "new" and n == 1 and not _new_is_recent(tokens, start, lexicon):
            continue
        phrase, neg = " ".join(tokens[start : start + n]), negated[start]
        for k_ in range(start, start + n):
            used[k_] = True
        if reason[start]:
            continue
        if kind == "genre":
            for name in names:
                own = fold(name) in {phrase, phrase.rstrip("s")} or phrase in MULTI_GENRE
                modified = (
                    start
                    and clause[start - 1] == clause[start]
                    and negated[start - 1]
                    and (tokens[start - 1] not in TRANSPARENT | FILLERS | NEGATOR_WORDS)
                )
                genres["exclude" if neg else "include"].append((name, phrase, own and not modified))
            if phrase in {"year old", "years old"}:
                used[start - 1] = True
        elif kind == "adult":
            genres["include" if neg else "exclude"].append((names[0], phrase, True))
        elif kind in {"recent", "old"} and years.newest:
            recent = kind == "recent"
            if recent != neg:
                years.bound(lower=years.newest - (RECENT_SPAN - 1 if recent else NOT_OLD_GAP))
            else:
                gap = NOT_RECENT_GAP if recent else BLACK_AND_WHITE_GAP if names else OLD_GAP
                years.bound(upper=years.newest - gap)
        elif kind in {"neg", "idle"}:
            continue
    _parse_years(tokens, used, years, lambda i: negated[i])
    query, avoid = [], []
    for i, token in enumerate(tokens):
        if used[i] or token in FILLERS or token in NEGATOR_WORDS or not token[0].isalnum() or token.isdigit():
            continue
        (avoid if negated[i] else query).append(token)
    additive = any(t in ADDITIVE for t in tokens)
    return genres, years, k, query, avoid, additive


def _resolve_genres(genres: dict[str, list]) -> tuple[tuple[str, ...], tuple[str, ...], list[str]]:
    """Wanted and excluded genres; a genre both wanted and excluded keeps the plain word's side.

    "scary but not gory horror", "a sad but not depressing film": a negated mood word or a modified genre
    refines what was asked for and becomes an avoided word; "no drama" by name excludes it."""
    include = _unique(name for name, _, _ in genres["include"])
    avoid = []
    exclude = []
    for name, phrase, firm in genres["exclude"]:
        if name in include and not firm:
            avoid.append(phrase)
        elif name not in exclude:
            exclude.append(name)
    firm_out = {name for name, _, firm in genres["exclude"] if firm}
    include = tuple(g for g in include if g not in firm_out)
    exclude = [g for g in exclude if g not in include]
    return include, tuple(exclude), avoid


def _unique(values) -> tuple:
    return tuple(dict.fromkeys(values))


def _strip_markup(text: str) -> str:
    """Tags, scripts and SQL fragments are no request: "<b>horror</b>" is "horror"."""
    return _SQL.sub(" ", _MARKUP.sub(" ", text))


def parse_message(text: object, catalog: Catalog) -> Refinement:
    """Parse one chat message into a ``Refinement``; never raises on what a person typed.

    Args:
        text: the message (anything; ``None`` and non-strings are read as text).
        catalog: the catalogue whose genres and titles the message may name.
    """
    cleaned, truncated = clean_message(text)
    notes: list[str] = []
    if truncated:
        notes.append(f"Your message was long, so I read only its first {MAX_MESSAGE_CHARS:,} characters.")
    cleaned = _strip_markup(cleaned).strip()
    cleaned = re.sub(r"(?<=\w)-(style|esque|like|type)\b", r" \1", cleaned, flags=re.I)  # "Alien-style"
    cleaned = _mend_slips(cleaned, catalog)
    folded = fold(cleaned)
    if not folded:
        return Refinement(truncated=truncated, notes=tuple(notes))
    reset = bool(_RESET.search(folded))
    show_more = bool(_SHOW_MORE.match(folded))
    matcher = TitleMatcher.for_catalog(catalog)
    lexicon = _lexicon(catalog)
    vocabulary = set(lexicon) | set(DECADE_WORDS) | {"from", "before", "after", "since", "the 90s", "for"}
    found, misses, consumed = _titles_after_cues(cleaned, matcher, vocabulary)
    rest = cleaned
    for start, end in sorted(consumed, reverse=True):
        rest = rest[:start] + " ; " + rest[end:]
    for start, end in sorted(_titles_leading_clauses(rest, matcher, found), reverse=True):
        rest = rest[:start] + " " + rest[end:]
    if reset:
        rest = _RESET.sub(" ", fold(rest))
    genres, years, k, query, avoid, additive = _parse_rest("" if show_more else rest, catalog)
    include, exclude, soft = _resolve_genres(genres)
    avoid = soft + avoid
    year_min, year_max, year_set = years.result()
    notes += years.notes
    if years.newest and year_min is not None and year_min > years.newest:
        notes.append(f"This catalogue ends in {years.newest}, so nothing is that recent.")
    if years.oldest and year_max is not None and year_max < years.oldest:
        notes.append(f"This catalogue starts in {years.oldest}, so nothing is that old.")
    if avoid:
        notes.append(f'I can\'t filter on "{" ".join(avoid[:5])}" exactly; I kept the genres you gave.')
    if k is not None and k > MAX_K:
        notes.append(f"I show at most {MAX_K} at a time; here are the first {MAX_K}.")
        k = MAX_K
    k = k if k and k > 0 else None
    if not found["like"] and _ANAPHORA.search(folded) and (found["liked"] or found["seen"]):
        found["like"] = found["liked"] + found["seen"]  # "I loved Fargo, something similar"
    if query and not any(found.values()) and not misses:
        words = list(re.finditer(r"\S+", cleaned))
        exact, used = _match_span(matcher, words, strict=True, fuzzy=False)
        if exact is not None and used == len(words):  # the whole message is a title: "more like <title>"
            found["like"].append(exact)
            query, include, exclude, year_min, year_max, year_set = [], (), (), None, None, False
    fragments = found.pop("fragment")
    notes += [f'I left out every film with "{_safe_typed(f.typed)}" in its title ({len(f.item_ids)}).'
              for f in fragments]  # fmt: skip
    for match in (m for matches in found.values() for m in matches):
        if match.score < 1.0:
            notes.append(f'I took "{_safe_typed(match.typed)}" to mean {match.title}.')
    ids = {name: _unique(i for match in matches for i in match.item_ids) for name, matches in found.items()}
    return Refinement(
        include_genres=include,
        exclude_genres=exclude,
        year_min=year_min,
        year_max=year_max,
        year_set=year_set,
        more_like=ids["like"],
        liked=ids["liked"],
        disliked=ids["dislike"],
        seen=ids["seen"],
        exclude_items=_unique([*ids["exclude"], *(i for f in fragments for i in f.item_ids)]),
        exclude_fragments=_unique(f.typed for f in fragments),
        titles=tuple(match for matches in found.values() for match in matches),
        unmatched=tuple(misses),
        query=" ".join(query),
        avoid_terms=_unique(avoid),
        show_more=show_more and not reset,
        reset=reset,
        additive=additive,
        truncated=truncated,
        notes=tuple(dict.fromkeys(notes)),
        k=k,
    )


def _safe_typed(typed: str) -> str:
    return " ".join(typed.split())[:60].strip(" ,.;")
