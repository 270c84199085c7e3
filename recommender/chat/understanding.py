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

from recommender.data import Catalog
from recommender.data.titles import FUZZY_CUTOFF, TitleMatch, TitleMatcher, TitleMiss, fold

MAX_MESSAGE_CHARS = 2000  # longer messages are cut here; the Refinement says so in ``notes``
MAX_TITLE_WORDS = 12  # a title cue looks at most this many words ahead
MAX_TITLE_CUES = 8  # at most this many "I liked X" phrases are matched per message

# Synonyms for genres people say in other words; only those the catalogue has are used.
GENRE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "Action": ("action", "action packed", "explosions", "shoot em up", "martial arts", "kung fu"),
    "Adventure": ("adventure", "adventures", "adventurous", "quest"),
    "Animation": ("animation", "animated", "cartoon", "cartoons", "anime"),
    "Children's": ("children", "childrens", "for kids", "kids", "kid", "kid friendly", "family", "family friendly",
                   "year old", "years old"),
    "Comedy": ("comedy", "comedies", "funny", "hilarious", "humor", "humour", "humorous", "laughs", "comedic",
               "lighthearted", "light hearted"),
    "Crime": ("crime", "criminal", "gangster", "gangsters", "mafia", "mob", "heist", "heists"),
    "Documentary": ("documentary", "documentaries", "doc", "docs", "nonfiction"),
    "Drama": ("drama", "dramas", "dramatic"),
    "Fantasy": ("fantasy", "magic", "magical", "wizards", "dragons", "fairy tale", "fairytale"),
    "Film-Noir": ("film noir", "noir"),
    "Horror": ("horror", "scary", "frightening", "terrifying", "creepy", "spooky", "slasher", "slashers", "gore",
               "gory", "zombie", "zombies"),
    "Musical": ("musical", "musicals", "singing", "song and dance"),
    "Mystery": ("mystery", "mysteries", "whodunit", "whodunnit", "detective", "detectives", "sleuth"),
    "Romance": ("romance", "romances", "romantic", "rom com", "romcom", "romcoms", "love story", "love stories"),
    "Sci-Fi": ("sci fi", "scifi", "science fiction", "space", "aliens", "robots", "futuristic"),
    "Thriller": ("thriller", "thrillers", "suspense", "suspenseful", "tense"),
    "War": ("war", "war movie", "war movies", "war film", "war films", "wartime", "military", "ww2", "wwii",
            "world war"),
    "Western": ("western", "westerns", "cowboy", "cowboys", "wild west"),
}  # fmt: skip
NEGATORS = {"no", "not", "dont", "doesnt", "without", "nothing", "none", "avoid", "except", "never", "neither", "nor",
            "hate", "skip", "exclude", "excluding", "minus", "instead"}  # fmt: skip
# Words that let a negation reach over them: "no horror or thrillers", "don't want anything scary".
TRANSPARENT = {"and", "or", "any", "anything", "more", "too", "very", "really", "so", "overly", "movie", "movies",
               "film", "films", "stuff", "things", "kind", "kinds", "of", "type", "types", "genre", "a", "an", "the",
               "want", "like", "please", "at", "all", "ones", "anymore", "much", "something", "that", "is", "are",
               "i", "im", "to", "watch", "see", "in", "thanks", "thank", "you", "particularly"}  # fmt: skip
FILLERS = TRANSPARENT | NEGATORS | {
    "me", "my", "show", "give", "find", "recommend", "suggest", "some", "good", "great", "nice", "for", "with", "from",
    "about", "tonight", "today", "maybe", "perhaps", "would", "id", "could", "can", "get", "lot", "lots", "what",
    "whats", "how", "hi", "hello", "hey", "ok", "okay", "yes", "also", "as", "well", "it", "one", "this", "be", "we",
    "us", "our", "but", "else", "other", "others", "similar", "again", "now", "just", "only", "still", "have",
    "watched", "seen", "liked", "loved", "enjoyed", "was", "were", "had", "feel", "mood", "where", "set", "by", "than",
    "rather", "year", "years", "s", "between", "before", "after", "since", "until", "till", "havent", "didnt",
    "wasnt", "isnt", "sure", "any", "been", "m", "ve", "d", "ll", "re",
}  # fmt: skip
ADDITIVE = {"also", "plus", "additionally"}
DECADE_WORDS = {"twenties": 1920, "thirties": 1930, "forties": 1940, "fifties": 1950, "sixties": 1960,
                "seventies": 1970, "eighties": 1980, "nineties": 1990}  # fmt: skip
RECENT_WORDS = {"recent", "newer", "newest", "latest", "new releases", "modern"}
OLD_WORDS = {"old", "older", "classic", "classics", "oldies", "vintage", "golden age"}
RECENT_SPAN = 3  # "recent" = the catalogue's last three years
OLD_GAP = 25  # "old"/"classic" = at least this many years before the catalogue's newest year
ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "jr", "vs", "sr"}

YEAR_WORDS = {"before", "after", "from", "since", "until", "till", "pre", "post", "prior", "between", "early",
              "mid", "late", "the", "in", "up", "to", "on", "onwards", "onward", "older", "newer", "earlier",
              "later"}  # fmt: skip
_CONTROL = {"Cc", "Cf", "Cs", "Co", "Cn"}
_RESET = re.compile(r"\b(start (?:over|again|afresh)|reset|clear (?:all|everything|filters)|forget (?:it|everything)|"
                    r"new search|from scratch)\b")  # fmt: skip
_SHOW_MORE = re.compile(r"^(?:(?:please|ok|okay|and)\s+)?(?:(?:show|give|find|suggest)\s+(?:me\s+)?)?"
                        r"(?:some\s+|any\s+)?(?:more|others|other ones|next|next page|something else|different ones)"
                        r"(?:\s+(?:please|options|results|suggestions|films|movies|of these|like these|of those))*$"
                        )  # fmt: skip
_CUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("dislike", re.compile(r"\b(?:i\s+)?(?:(?:didn'?t|did not|don'?t|do not|did\s+not|really\s+didn'?t)\s+"
                           r"(?:like|love|enjoy|care for)|hated|hate|disliked|dislike|can'?t stand|couldn'?t stand|"
                           r"not a fan of)\s+", re.I)),
    ("like", re.compile(r"\b(?:more|something|anything|films?|movies?|stuff|ones?)\s+like\s+|\bsimilar\s+to\s+|"
                        r"\bin the (?:vein|style) of\s+|\balong the lines of\s+", re.I)),
    ("liked", re.compile(r"\b(?:i\s+)?(?:really\s+|also\s+)?(?:liked|loved|enjoyed|adored|(?<=i )(?:like|love))\s+",
                         re.I)),
    ("seen", re.compile(r"\b(?:i(?:'ve|\s+have)?\s+)?(?:already\s+)?(?:seen|watched|saw)\s+", re.I)),
    ("exclude", re.compile(r"\b(?:not|no more|nothing like|anything but|except|other than|no|without|skip|"
                           r"exclude)\s+", re.I)),
)  # fmt: skip
_NOT_TITLE = {"something", "anything", "movies", "films", "movie", "film", "stuff", "any", "ones", "the ones"}
_PRONOUNS = {"it", "that", "this", "them", "those", "these", "both", "all", "one", "some", "the first",
             "the last", "a lot", "you", "me", "him", "her", "so", "too", "to", "sure", "thanks", "way", "idea",
             "more"}  # fmt: skip
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
    exclude_items: tuple[str, ...] = ()  # "not Star Wars"
    titles: tuple[TitleMatch, ...] = ()  # every title recognised, for the reply
    unmatched: tuple[TitleMiss, ...] = ()  # titles that matched nothing, with the closest ones
    query: str = ""  # the free text left over, for the embedding retriever
    avoid_terms: tuple[str, ...] = ()  # negated words that are no genre or title ("without violence")
    show_more: bool = False
    reset: bool = False
    additive: bool = False  # "also comedies": add to the wanted genres instead of replacing them
    truncated: bool = False
    notes: tuple[str, ...] = field(default=())  # sentences for the reply: truncation, ranges outside the data

    @property
    def is_empty(self) -> bool:
        """True when the message asked for nothing we understood (the reply should help)."""
        return not (
            self.include_genres or self.exclude_genres or self.year_min is not None or self.year_max is not None
            or self.more_like or self.liked or self.disliked or self.seen or self.exclude_items or self.query
            or self.show_more or self.reset
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
    for n in range(limit, 0, -1) if fuzzy else ():
        year = _YEAR_TOKEN.match(texts[n].strip(".,;")) if n < len(texts) else None
        match = matcher.fuzzy(" ".join(texts[:n]), int(year.group(1)) if year else None, cutoff)
        if match and (best[0] is None or match.score > best[0].score):
            best = (match, n + (1 if year else 0))
    return best


def _titles_after_cues(text: str, matcher: TitleMatcher, vocabulary: set[str]):
    """Find "more like X", "I liked X", "not X" …; returns matches per cue, misses and consumed spans."""
    found: dict[str, list[TitleMatch]] = {name: [] for name, _ in _CUES}
    found["ignored"] = []  # "I haven't seen Heat": a title, but no fact about the person
    misses: list[TitleMiss] = []
    consumed: list[tuple[int, int]] = []
    cues = []
    for name, pattern in _CUES:
        for match in pattern.finditer(text):
            if not any(s <= match.start() < e for s, e in consumed) and not any(
                s <= match.start() < e for _, s, e in cues
            ):
                cues.append((name, match.start(), match.end()))
    for name, start, end in sorted(cues, key=lambda cue: cue[1])[:MAX_TITLE_CUES]:
        if any(s <= start < e for s, e in consumed):
            continue
        stop = _clause_end(text, end)
        words = list(re.finditer(r"\S+", text[end:stop]))
        folded = fold(text[end:stop]).split()
        if not folded or _starts_with_phrase(folded, vocabulary | _PRONOUNS | _NOT_TITLE) or folded[0].isdigit():
            continue  # "I like comedies", "not from the 90s", "no thanks": not a title
        denied = name in {"liked", "seen"} and re.search(r"(?:n'?t|\bnot|\bnever)\s+(?:\w+\s+)?$", text[:start])
        cue_matches, used_end = [], end
        while words:
            match, used = _match_span(matcher, words, strict=name == "exclude")
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
        if cue_matches:
            found["ignored" if denied else name].extend(cue_matches)
            consumed.append((start, used_end))
        elif name != "exclude":
            comma = text.find(",", end, stop)
            stop = comma if comma > 0 else stop  # "I liked Qwerty, westerns": the miss ends at the comma
            typed = " ".join(text[end:stop].split()[:MAX_TITLE_WORDS]).strip(" ,.")
            misses.append(TitleMiss(typed, matcher.closest(typed)))
            consumed.append((start, stop))
    return found, misses, consumed


# ---------------------------------------------------------------- genres, years, negation


def _genre_phrases(catalog: Catalog) -> dict[str, str]:
    """Folded phrase -> genre, for the genres this catalogue has (its own names, plurals, synonyms)."""
    phrases: dict[str, str] = {}
    for genre in catalog.genre_vocabulary:
        if genre.lower() == "unknown":
            continue
        for phrase in (*GENRE_SYNONYMS.get(genre, ()), fold(genre), fold(genre) + "s"):
            phrases.setdefault(phrase, genre)
    return phrases


_PHRASES: weakref.WeakKeyDictionary[Catalog, dict[str, str]] = weakref.WeakKeyDictionary()


def _decade(token: str) -> int | None:
    """1990 for "90s", "1990s", "nineties"; None otherwise."""
    if token in DECADE_WORDS:
        return DECADE_WORDS[token]
    match = re.fullmatch(r"((?:18|19|20)\d0|\d0)s", token)
    if not match:
        return None
    value = int(match.group(1))
    return value if value >= 100 else (2000 + value if value < 20 else 1900 + value)


class _YearParser:
    """Collects year bounds from tokens; decades and single years widen, before/after narrow."""

    def __init__(self, newest: int | None):
        self.newest = newest
        self.ranges: list[tuple[int, int]] = []
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
        return lo, hi, bool(self.ranges)


def _parse_years(tokens: list[str], used: list[bool], years: _YearParser, negated_at) -> None:
    """Mark the year tokens in ``tokens`` as used and record their bounds in ``years``."""
    for i, token in enumerate(tokens):
        if used[i]:
            continue
        previous = tokens[i - 1] if i else ""
        modifier = tokens[i - 1] if i and tokens[i - 1] in {"early", "mid", "late"} else ""
        decade = _decade(token)
        year = int(token) if re.fullmatch(r"(?:18|19|20)\d\d", token) else None
        span = (decade, decade + 9) if decade is not None else (year, year) if year is not None else None
        if span is None:
            if token in RECENT_WORDS and years.newest:
                years.bound(lower=years.newest - RECENT_SPAN + 1)
                used[i] = True
            elif token in OLD_WORDS and previous not in {"year", "years"} and years.newest:
                years.bound(upper=years.newest - OLD_GAP)
                used[i] = True
            continue
        lo, hi = span
        if decade is not None and modifier:
            lo, hi = {"early": (lo, lo + 3), "mid": (lo + 3, lo + 6), "late": (lo + 6, hi)}[modifier]
            used[i - 1] = True
        used[i] = True
        window = range(max(0, i - 3), i)
        look = [tokens[k] for k in window if tokens[k] not in {"the", "early", "mid", "late", "year"}]
        word = look[-1] if look else ""
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
            years.notes.append(f'I can\'t leave out a span of years in the middle; ignoring "not {token}".')
        else:
            years.ranges.append((lo, hi))


def _tokens(text: str) -> list[str]:
    text = re.sub(r"((?:18|19|20)\d\d)\s*[-–]\s*((?:18|19|20)\d\d)", r"\1 to \2", text)
    raw = re.findall(r"[^\W_]+(?:['’][^\W_]+)*|[,;.!?:]", text)
    return [fold(t) if t[0].isalnum() or t[0] == "_" or t not in ",;.!?:" else t for t in raw]


def _parse_rest(text: str, catalog: Catalog) -> tuple[dict[str, list[str]], _YearParser, list[str], list[str], bool]:
    """Genres (with negation), years, leftover query words and avoided words of the text outside titles."""
    phrases = _PHRASES.get(catalog)
    if phrases is None:
        phrases = _PHRASES[catalog] = _genre_phrases(catalog)
    tokens = [t for t in _tokens(text) if t]
    used = [False] * len(tokens)
    negation = [False] * len(tokens)  # negation in force at each token
    state = False
    for i, token in enumerate(tokens):
        if token in NEGATORS or (token == "but" and i and tokens[i - 1] in {"anything", "everything"}):
            state = negation[i] = True
            continue
        if token in {",", ";", ".", "!", "?", ":", "but", "though", "however"}:
            state = False
            continue
        negation[i] = state
        in_phrase = any(
            " ".join(tokens[j : j + n]) in phrases for j in range(max(0, i - 2), i + 1) for n in (1, 2, 3) if j + n > i
        )
        if not (in_phrase or token in TRANSPARENT or token in YEAR_WORDS or _decade(token) or token.isdigit()):
            state = False  # a negation reaches the first other word ("without violence") and stops there
    genres: dict[str, list[str]] = {"include": [], "exclude": []}
    i = 0
    while i < len(tokens):
        for n in (3, 2, 1):
            phrase = " ".join(tokens[i : i + n])
            if len(tokens[i : i + n]) == n and phrase in phrases and not any(used[i : i + n]):
                if phrase in {"year old", "years old"} and not (i and tokens[i - 1].isdigit()):
                    continue
                genres["exclude" if negation[i] else "include"].append(phrases[phrase])
                for k in range(i, i + n):
                    used[k] = True
                if phrase in {"year old", "years old"}:
                    used[i - 1] = True
                i += n - 1
                break
        i += 1
    newest = int(catalog.years.max()) if len(catalog) and catalog.years.max() > 0 else None
    years = _YearParser(newest)
    _parse_years(tokens, used, years, lambda k: negation[k])
    query, avoid = [], []
    for i, token in enumerate(tokens):
        if used[i] or token in FILLERS or not token[0].isalnum():
            continue
        (avoid if negation[i] else query).append(token)
    additive = any(t in ADDITIVE for t in tokens)
    return genres, years, query, avoid, additive


def _unique(values) -> tuple:
    return tuple(dict.fromkeys(values))


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
    folded = fold(cleaned)
    if not folded:
        return Refinement(truncated=truncated, notes=tuple(notes))
    reset = bool(_RESET.search(folded))
    show_more = bool(_SHOW_MORE.match(folded))
    matcher = TitleMatcher.for_catalog(catalog)
    phrases = _PHRASES.get(catalog) or _genre_phrases(catalog)
    vocabulary = set(phrases) | set(DECADE_WORDS) | RECENT_WORDS | OLD_WORDS | {"from", "before", "after", "since"}
    found, misses, consumed = _titles_after_cues(cleaned, matcher, vocabulary)
    rest = cleaned
    for start, end in sorted(consumed, reverse=True):
        rest = rest[:start] + " ; " + rest[end:]
    if reset:
        rest = _RESET.sub(" ", fold(rest))
    genres, years, query, avoid, additive = _parse_rest("" if show_more else rest, catalog)
    year_min, year_max, year_set = years.result()
    notes += years.notes
    newest = years.newest
    oldest = int(catalog.years[catalog.years > 0].min()) if (catalog.years > 0).any() else None
    if newest and year_min is not None and year_min > newest:
        notes.append(f"This catalogue ends in {newest}, so nothing is that recent.")
    if oldest and year_max is not None and year_max < oldest:
        notes.append(f"This catalogue starts in {oldest}, so nothing is that old.")
    if avoid:
        notes.append(f'I can\'t filter on "{" ".join(avoid[:5])}" exactly; I kept the genres you gave.')
    ids = {name: _unique(i for match in matches for i in match.item_ids) for name, matches in found.items()}
    include = _unique(genres["include"])
    exclude = _unique(genres["exclude"])
    if query and not any(found.values()) and not misses:
        words = list(re.finditer(r"\S+", cleaned))
        exact, used = _match_span(matcher, words, strict=True, fuzzy=False)
        if exact is not None and used == len(words):  # the whole message is a title: "more like <title>"
            found["like"].append(exact)
            ids["like"] = exact.item_ids
            query, include, exclude, year_min, year_max, year_set = [], (), (), None, None, False
    return Refinement(
        include_genres=tuple(g for g in include if g not in exclude),
        exclude_genres=exclude,
        year_min=year_min,
        year_max=year_max,
        year_set=year_set,
        more_like=ids["like"],
        liked=ids["liked"],
        disliked=ids["dislike"],
        seen=ids["seen"],
        exclude_items=ids["exclude"],
        titles=tuple(match for matches in found.values() for match in matches),
        unmatched=tuple(misses),
        query=" ".join(query),
        avoid_terms=_unique(avoid),
        show_more=show_more and not reset,
        reset=reset,
        additive=additive,
        truncated=truncated,
        notes=tuple(notes),
    )
