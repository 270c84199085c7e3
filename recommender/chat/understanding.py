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
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

from recommender.chat.card_refs import blank, card_references, point_at_cards
from recommender.chat.counts import MAX_COUNT_NOTE, MAX_K, asked_count
from recommender.chat.lexicon import (
    ADDITIVE,
    ADULT_PHRASES,
    AGE_PHRASES,
    AVOIDABLE_WORDS,
    BLACK_AND_WHITE_PHRASES,
    CHAT_SPEAK,
    COMPLAINT_WORDS,
    COUNT_NOUNS,
    DECADE_WORDS,
    EMOJI_WORDS,
    FILLERS,
    GENRE_SYNONYMS,
    IDLE_PHRASES,
    LIFT_GENRE_WORDS,
    LIFT_WORDS,
    LIFT_YEAR_WORDS,
    MULTI_GENRE,
    NEGATOR_PHRASES,
    NEGATOR_WORDS,
    NEW_THINGS,
    NOT_TITLE_AFTER_CUE,
    NUMBER_WORDS,
    OLD_PHRASES,
    RECENT_PHRASES,
    SCRIPT_GENRES,
    SHOW_MORE_OPENERS,
    SHOW_MORE_TAILS,
    TRANSPARENT,
)
from recommender.chat.mentions import listed_mentions, mention_verdicts, whole_message_titles
from recommender.chat.scope import negation_scope
from recommender.chat.slips import known_words, mend_slips, slip
from recommender.chat.stances import (
    allowed_again,
    complained_about,
    fed_up_after,
    lifted_tokens,
    merely_allowed,
    wants_less,
    waved_filter,
)
from recommender.chat.text import MAX_MESSAGE_CHARS, clean_message, strip_markup
from recommender.chat.title_cues import titles_after_cues, titles_leading_clauses
from recommender.chat.years import YearParser, era_bound, film_bounds, names_years, parse_years, war_eras
from recommender.data import Catalog
from recommender.data.titles import TitleMatch, TitleMatcher, TitleMiss, fold

MAX_PHRASE = 6  # longest lexicon phrase, in words ("on the edge of my seat")
_COMPARED = {"newer", "older", "more recent", "later", "earlier"}  # compared with the one film named, if any
_EMOJI = re.compile("|".join(sorted(EMOJI_WORDS, key=len, reverse=True)))
_NOT_QUERY = FILLERS | NEGATOR_WORDS | LIFT_WORDS  # never a free-text query word

_RESET = re.compile(r"\b(start (?:over|again|afresh|fresh|anew)|reset|"
                    r"clear (?:all (?:the )?filters|all|everything|(?:the )?filters)|forget (?:it|everything|all)|"
                    r"new search|from scratch|begin again|scrap (?:all )?(?:that|this|it|everything))\b")  # fmt: skip
_SHOW_MORE = re.compile(rf"^(?:(?:{'|'.join(SHOW_MORE_OPENERS)})\s+)*(?:none of (?:these|those|them)\s+)?"
                        r"(?:(?:show|give|find|suggest)\s+(?:me\s+)?)?"
                        r"(?:some\s+|any\s+|\d{1,2}\s+|a few\s+)?(?:more|more of the same|others|other ones|next|"
                        r"keep going|go on|continue|carry on|(?:next|another)\s+(?:\d{1,2}|few|batch|set|round)|"
                        r"next page|something else|"
                        r"different ones|"
                        r"anything else|wh?at else(?:\s+(?:have you got|do you have|you got|u got|is there|ya got))?|"
                        r"other (?:options|suggestions|ideas|picks|films|movies|titles)|"
                        r"(?:none of (?:these|those|them)\s+)?try (?:again|something else)|"
                        r"none of (?:these|those|them))"
                        rf"(?:\s+(?:{'|'.join(SHOW_MORE_TAILS)}))*$")  # fmt: skip


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
    lift_genres: tuple[str, ...] = ()  # "remove the romance filter": neither wanted nor excluded any more
    lift_all_genres: bool = False  # "any genre is fine": no wanted genre any more (exclusions stay)
    lift_years: bool = False  # "forget the year": no year bound any more
    allow_genres: tuple[str, ...] = ()  # "war is fine": an excluded genre is lifted, another one joins the wanted
    year_relative: str = ""  # "older" / "newer" with no year: before / after the years asked so far, if any

    @property
    def is_empty(self) -> bool:
        """True when the message asked for nothing we understood (the reply should help)."""
        return not (
            self.include_genres or self.exclude_genres or self.year_min is not None or self.year_max is not None
            or self.more_like or self.liked or self.disliked or self.seen or self.exclude_items or self.query
            or self.show_more or self.reset or self.k is not None or self.lift_genres or self.lift_all_genres
            or self.lift_years
        )  # fmt: skip


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
    lexicon.update({phrase: ("old", ("bw",)) for phrase in BLACK_AND_WHITE_PHRASES})
    lexicon.update({phrase: ("neg", ()) for phrase in NEGATOR_PHRASES})
    lexicon.update({phrase: ("idle", ()) for phrase in IDLE_PHRASES})
    _LEXICON[catalog] = lexicon
    return lexicon


_LEXICON: weakref.WeakKeyDictionary[Catalog, dict] = weakref.WeakKeyDictionary()


def _tokens(text: str) -> list[str]:
    text = re.sub(r"((?:18|19|20)\d\d)\s*[-–]\s*((?:18|19|20)\d\d)", r"\1 to \2", text)
    text = _SHORT_SPAN.sub(_short_span, text)  # "90-95 dramas"; not "30-40 year olds", "20-30 films"
    text = re.sub(r"\bw/o\b", "without", text, flags=re.I)  # "something w/o violence"
    raw = re.findall(r"[^\W_]+(?:['’][^\W_]+)*|[,;.!?:]", text)
    return [t for t in (fold(t) if t not in ",;.!?:" else t for t in raw) for t in t.split() or [""] if t]


_CHAT_SPEAK = re.compile(r"\b(?:" + "|".join(CHAT_SPEAK) + r")\b", re.I)
_SHORT_SPAN = re.compile(
    r"\b([3-9]\d)\s*[-–]\s*([3-9]\d)\b(?!\s*(?:min|hour|hr|year|yr|film|movie|flick|pick|%))", re.I
)


def _short_span(match: re.Match[str]) -> str:
    first, last = int(match.group(1)), int(match.group(2))
    return f"19{first} to 19{last}" if first < last else match.group()


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
            if phrase in AGE_PHRASES and not (i and (tokens[i - 1].isdigit() or tokens[i - 1] in NUMBER_WORDS)):
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
                best = process.extractOne(token, single, scorer=fuzz.ratio, score_cutoff=88) or slip(token, near)
                if best:  # "horor", "comedys", "thriler"; one slip: "drmaa", "wetsern", "modeern"
                    found.append((i, 1, *lexicon[best[0]]))
            i += 1
    return found


def _new_is_recent(tokens: list[str], i: int, lexicon: dict) -> bool:
    """ "new movies", "new comedies": recent; "something new", "new search": not a year bound."""
    following = tokens[i + 1] if i + 1 < len(tokens) else ""
    return following in COUNT_NOUNS | NEW_THINGS or lexicon.get(following, ("",))[0] == "genre"


@dataclass
class _Rest:
    """What the text outside titles says (``_parse_rest``)."""

    genres: dict[str, list]  # "include" / "exclude" -> (genre, phrase, firm) triples, for ``_resolve_genres``
    years: YearParser  # the year bounds collected
    k: int | None  # films asked for, not capped yet
    query: list[str]  # leftover words, for the free-text query
    avoid: list[str]  # negated words that are no genre ("without violence")
    additive: bool  # "also comedies"
    lift_genres: list[str]  # genres named after "remove", "drop", "forget" …
    lift_all_genres: bool  # "remove the genre filter"
    lift_years: bool  # "forget the year", "drop the 90s"
    allowed: list[str]  # "war is fine"
    relative: str  # "older" / "newer" said with no year: compared with what was asked before


def _parse_rest(text: str, catalog: Catalog, anchor: int | None = None) -> _Rest:
    """Genres (with negation scope), years, count, leftover query words and avoided words of the text outside
    titles."""
    lexicon = _lexicon(catalog)
    tokens = [t for t in _tokens(text) if t]
    used = [False] * len(tokens)
    phrases = _phrases(tokens, lexicon)
    negated, clause, reason = negation_scope(tokens, phrases)
    k = asked_count(tokens, used)
    valid = catalog.years[catalog.years > 0]
    years = YearParser(int(valid.min()) if len(valid) else None, int(valid.max()) if len(valid) else None)
    genres: dict[str, list] = {"include": [], "exclude": []}  # (genre, soft) pairs for the exclusions
    war_eras(tokens, used, years, lambda i: negated[i])  # "pre-war films": years, not the War genre
    lifted = lifted_tokens(tokens, clause, negated)
    lift_genres, lift_all_genres, lift_years, allowed, relative = [], False, False, [], ""
    allowed_clauses = {clause[s] for s, n, kind, _ in phrases if kind == "genre" and allowed_again(tokens, s + n)}
    for i, token in enumerate(tokens):
        if lifted[i] and (token in LIFT_YEAR_WORDS or names_years(token)):
            lift_years, used[i] = True, True  # "forget the year", "drop the 90s"
        elif lifted[i] and token in LIFT_GENRE_WORDS:
            lift_all_genres, used[i] = True, True
    for start, n, kind, names in phrases:
        if any(used[start : start + n]):
            continue
        if kind in {"recent", "old"} and not _time_word(tokens, start, n, lexicon):
            continue
        phrase, neg = " ".join(tokens[start : start + n]), negated[start]
        for k_ in range(start, start + n):
            used[k_] = True
        if reason[start]:
            continue
        if kind in {"genre", "recent", "old"} and merely_allowed(tokens, start):
            continue  # "doesn't need to be all action" / "recent": neither asked for nor ruled out
        if kind == "genre" and lifted[start]:
            lift_genres += names  # "remove the romance filter"
        elif kind == "genre":
            if clause[start] in allowed_clauses:
                allowed += names  # "war is fine", "war and horror are fine": no longer excluded, else wanted
            complained = complained_about(tokens, start + n, clause) or fed_up_after(tokens, start + n)
            less = wants_less(tokens, start)  # "too scary": less of it, a refinement
            for name in names:
                own = fold(name) in {phrase, phrase.rstrip("s"), re.sub(r"ies$", "y", phrase)} or phrase in MULTI_GENRE
                modified = (
                    start
                    and clause[start - 1] == clause[start]
                    and negated[start - 1]
                    and (tokens[start - 1] not in TRANSPARENT | FILLERS | NEGATOR_WORDS)
                )
                if complained:
                    genres["exclude"].append((name, phrase, own))
                    continue
                genres["exclude" if neg or less else "include"].append(
                    (name, phrase, own and not modified and not less)
                )
            if phrase in AGE_PHRASES:
                used[start - 1] = True
        elif kind == "adult" and not set(tokens[start + n : start + n + 3]) & {"also", "too", "enjoy", "both"}:
            genres["include" if neg else "exclude"].append((names[0], phrase, True))  # not "adults will also enjoy"
        elif kind in {"recent", "old"} and years.newest:
            if anchor and phrase in _COMPARED and not neg:  # "like The Shining but newer": newer than it
                years.bound(**{"lower" if kind == "recent" else "upper": anchor + (1 if kind == "recent" else -1)})
            elif (phrase in _COMPARED or phrase == "recent" and tokens[start - 1 : start] == ["more"]) and not neg:
                relative = "newer" if kind == "recent" else "older"  # than what was asked: the state knows
            else:
                era_bound(years, kind == "recent", bool(names), neg or wants_less(tokens, start))  # "too old": newer
    parse_years(tokens, used, years, lambda i: negated[i])
    if years.ranges or years.lower is not None or years.upper is not None:
        relative = ""  # "older, like the 80s", "1970 or older", "older but not before 1980": the years say it
    elif relative:
        era_bound(years, relative == "newer", False, False)
    query, avoid = [], []
    for i, token in enumerate(tokens):
        if used[i] or token in _NOT_QUERY or not token[0].isalnum() or token.isdigit():
            continue
        (avoid if negated[i] or wants_less(tokens, i) or token in COMPLAINT_WORDS else query).append(token)
    return _Rest(genres, years, k, query, avoid, _adds(tokens), lift_genres, lift_all_genres, lift_years, allowed,
                 relative)  # fmt: skip


def _time_word(tokens: list[str], start: int, n: int, lexicon: dict) -> bool:
    """False for a time word that sets no era: "something new" ("new comedies" and "too new" do), "older
    than 1990" (``parse_years`` bounds that year; "older than that" is "older")."""
    if tokens[start] == "new" and n == 1 and not _new_is_recent(tokens, start, lexicon):
        return wants_less(tokens, start)  # "too new" is a year bound
    after = tokens[start + n : start + n + 2]
    return after[:1] not in (["than"], ["then"]) or after[1:] in (["that"], ["this"], ["these"], ["those"], ["them"])


def _adds(tokens: list[str]) -> bool:
    """True when the message adds to the wanted genres: "also thrillers", "or dramas", "dramas too"."""
    content = [t for t in tokens if t[0].isalnum() and t not in {"please", "pls", "plz", "thanks"}]
    return (
        any(t in ADDITIVE for t in tokens)
        or bool(content)
        and (content[0] in {"or", "and", "plus"} or content[-1] == "too" or content[-2:] == ["as", "well"])
    )


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
    own = {name for name, _, firm in genres["include"] if firm}  # "comedies that aren't romcoms": comedy stays
    firm_out = {
        name for name, phrase, firm in genres["exclude"] if firm and not (phrase in MULTI_GENRE and name in own)
    }
    include = tuple(g for g in include if g not in firm_out)
    exclude = [g for g in exclude if g not in include]
    return include, tuple(exclude), avoid


def _unique(values) -> tuple:
    return tuple(dict.fromkeys(values))


def parse_message(text: object, catalog: Catalog, shown: Sequence[str] = ()) -> Refinement:
    """Parse one chat message into a ``Refinement``; never raises on what a person typed.

    Args:
        text: the message (anything; ``None`` and non-strings are read as text).
        catalog: the catalogue whose genres and titles the message may name.
        shown: item ids of the films on screen, best first, for "more like the first one", "seen #2".
    """
    cleaned, truncated = _cleaned(text, catalog)
    message = cleaned  # as typed: "Fargo and Heat, didn't like them" is no list of titles to seed
    notes = [f"Your message was long, so I read only its first {MAX_MESSAGE_CHARS:,} characters."] if truncated else []
    folded = fold(cleaned)
    if not folded:
        return Refinement(truncated=truncated, notes=tuple(notes))
    reset = bool(_RESET.search(folded))
    any_filter = waved_filter(folded)
    show_more = bool(_SHOW_MORE.match(folded))
    matcher = TitleMatcher.for_catalog(catalog)
    lexicon = _lexicon(catalog)
    vocabulary = set(lexicon) | set(DECADE_WORDS) | NOT_TITLE_AFTER_CUE
    cleaned, rest, found, misses, consumed = _titles_and_cards(cleaned, shown, matcher, vocabulary, notes)
    rest = _without(rest, consumed)
    series: list[str] = []  # "star wars movies": a search for the name, not a war film
    for start, end in sorted(titles_leading_clauses(rest, matcher, found, vocabulary, series), reverse=True):
        rest = rest[:start] + " " + rest[end:]
    if reset:
        rest = _RESET.sub(" ", fold(rest))
    seeds = [catalog[i] for m in found["like"] + found["liked"] for i in m.item_ids[:1] if catalog[i].year]
    read = _parse_rest("" if show_more else rest, catalog, seeds[0].year if len(seeds) == 1 else None)
    years, k, query = read.years, read.k, [*(w for name in series for w in fold(name).split()), *read.query]
    include, exclude, soft = _resolve_genres(read.genres)
    avoid = soft + read.avoid
    year_min, year_max, year_set = film_bounds(years.result(), found, catalog)  # "older than Fargo"
    notes += _limit_notes(years, year_min, year_max, avoid, k)
    if show_more and k is None:  # "show me 10 more"
        k = next((int(t) for t in folded.split() if t.isascii() and t.isdigit() and len(t) <= 2), None)
    k = min(k, MAX_K) if k and k > 0 else None
    query = mention_verdicts(found, (cleaned, message), folded, matcher, query, vocabulary)
    if (query or len(cleaned.split()) > 1) and not any(found.values()) and not misses and folded not in IDLE_PHRASES:
        asks = bool(include or exclude or year_min or year_max or k)
        listed = whole_message_titles(message, matcher, vocabulary, asks)
        if listed:  # the whole message is a title or a list of them: "more like <title>"
            found["like"] += listed
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
        additive=read.additive,
        lift_genres=_unique(read.lift_genres),
        lift_all_genres=read.lift_all_genres or any_filter in {"genre"},
        lift_years=read.lift_years or any_filter in {"year", "decade", "era"},
        allow_genres=_unique(g for g in read.allowed if g in include),
        year_relative=read.relative,
        truncated=truncated,
        notes=tuple(dict.fromkeys(notes)),
        k=k,
    )


def _without(rest: str, consumed: list[tuple[int, int]]) -> str:
    """``rest`` with the titles read blanked; a count's noun stays ("5 films like Fargo", "3 more like X")."""
    for start, end in sorted(consumed, reverse=True):
        counted = re.match(r"\s*(?:more|films?|movies?|ones?)\b", rest[start:end], re.I)
        rest = rest[:start] + (counted.group() if counted else "") + " ; " + rest[end:]
    return rest


def _cleaned(text: object, catalog: Catalog) -> tuple[str, bool]:
    """The message as the parser reads it (and whether it was cut): markup stripped, emoji and chat-speak as
    words, "Alien-style" as "Alien style", one-slip typos of cue words mended."""
    cleaned, truncated = clean_message(text)
    cleaned = strip_markup(cleaned).strip()
    cleaned = _EMOJI.sub(lambda m: f" {EMOJI_WORDS[m.group()]} ", cleaned)  # "🤠 movies": westerns
    cleaned = _CHAT_SPEAK.sub(lambda m: CHAT_SPEAK[m.group().lower()], cleaned)  # "from b4 1985", "moar"
    cleaned = re.sub(r"(?<=\w)-(style|esque|like|type)\b", r" \1", cleaned, flags=re.I)  # "Alien-style"
    return mend_slips(cleaned, known_words(catalog, _lexicon(catalog))), truncated


def _titles_and_cards(cleaned: str, shown: Sequence[str], matcher: TitleMatcher, vocabulary: set[str], notes: list):
    """Titles after cues, and the films on screen the message points at, joined in one ``found``; the text
    with the card references blanked (for titles) and with pronoun references blanked too (for the rest)."""
    refs, typed = card_references(cleaned), cleaned
    cleaned = blank(cleaned, [r for r in refs if not r.pronoun])
    found, misses, consumed = titles_after_cues(cleaned, matcher, vocabulary)
    if any(found.values()) or misses or listed_mentions(typed, matcher, vocabulary):  # as typed: nothing blanked
        refs = [r for r in refs if not r.pronoun and r.positions is not None]  # "loved Heat, seen them": the titles
    notes += point_at_cards(refs, tuple(str(i) for i in shown), matcher.catalog, found)
    return cleaned, blank(cleaned, refs), found, misses, consumed


def _limit_notes(years: YearParser, year_min: int | None, year_max: int | None, avoid: list[str], k: int | None):
    """Sentences for what the message asked beyond what can be done: years outside the catalogue, a
    span in the middle (``years.notes``), words no filter reads, more films than ``MAX_K``."""
    notes = list(years.notes)
    if years.newest and year_min is not None and year_min > years.newest:
        notes.append(f"This catalogue ends in {years.newest}, so nothing is that recent.")
    if years.oldest and year_max is not None and year_max < years.oldest:
        notes.append(f"This catalogue starts in {years.oldest}, so nothing is that old.")
    avoidable = [word for word in avoid if word in AVOIDABLE_WORDS]
    if avoidable:
        notes.append(f'Films close to "{" ".join(avoidable[:5])}" move down the list; none is left out for it.')
    if len(avoidable) < len(avoid):
        rest = [word for word in avoid if word not in AVOIDABLE_WORDS]
        notes.append(f'I can\'t filter on "{" ".join(rest[:5])}" exactly; I kept the genres you gave.')
    if k is not None and k > MAX_K:
        notes.append(MAX_COUNT_NOTE.format(cap=MAX_K))
    return notes


def _safe_typed(typed: str) -> str:
    return " ".join(typed.split())[:60].strip(" ,.;")
