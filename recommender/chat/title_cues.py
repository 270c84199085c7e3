"""Titles in a message: after a cue ("more like X", "I liked X", "not X", "not another Star Trek")
and opening a clause ("Alien-style", "Titanic was boring"). Pure: the standard library; titles are
matched by ``TitleMatcher`` (typos, moved articles, years) and fragments by ``fragments``."""

from __future__ import annotations

import re

from recommender.chat.fragments import negated_fragment, series_fragment
from recommender.chat.lexicon import (
    ABBREVIATIONS,
    BAD_VERDICTS,
    BEFORE_LIKE,
    CLAUSE_OPENERS,
    COUNT_NOUNS,
    CUE_GLUE,
    EXCLUDE_CUES,
    FILLERS,
    GOOD_VERDICTS,
    NEGATIONS_BEFORE_LIKE,
    NEGATOR_WORDS,
    NOT_TITLE,
    NOT_VERDICTS,
    REQUEST_VERBS,
    SEED_AFTER_TITLE,
    TITLE_PRONOUNS,
)
from recommender.chat.years import decade
from recommender.data.titles import (
    ARTICLES,
    FUZZY_CUTOFF,
    SEQUEL_PLACES,
    TitleMatch,
    TitleMatcher,
    TitleMiss,
    fold,
)

CUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("dislike", re.compile(r"\b(?:i\s+)?(?:(?:didn'?t|did not|don'?t|do not|did\s+not|really\s+didn'?t)\s+"
                           r"(?:(?:really|rly|realy|much|particularly|quite|actually|exactly|totally|entirely)\s+)?"
                           r"(?:like|love|enjoy|care for)|hated|hate|disliked|dislike|can'?t stand|couldn'?t stand|"
                           r"(?:wasn'?t|was not|am not|i'?m not|not)\s+(?:really\s+)?(?:a\s+)?(?:big\s+|huge\s+)?"
                           r"fan of)\s+", re.I)),
    ("like", re.compile(r"\b(?:more|something|anything|films?|movies?|stuff|ones?|similar)\s+like\s+|"
                        r"\b(?:" + "|".join(BEFORE_LIKE) + r")\s+(?P<at>like)\s+|"  # the word before stays read
                        r"\bsimilar\s+to\s+|\bin the (?:vein|style|spirit) of\s+|\balong the lines of\s+|"
                        r"\breminds?\s+(?:me\s+)?of\s+|\b(?:same|similar)\s+(?:vibes?\s+)?as\s+|\bthe likes of\s+|"
                        r"\bsomething\s+(?:a\s+)?(?:bit\s+)?(?:like|similar to)\s+|"
                        r"\b(?:something|anything|a cross|cross)\s+between\s+", re.I)),
    # An example of what the sentence said: "loves westerns, especially Unforgiven", "hate musicals, such as Grease".
    ("example", re.compile(r"\b(?:especially|such as|in particular|for example|for instance|e\.g\.?)\s+", re.I)),
    # A bare "like" only at the start of a clause or after a hedge: "like Toy Story", "kinda like Heat".
    ("like_bare", re.compile(r"(?:^|(?<=[,;.!?:])\s*|\b(?:just|kinda|kind of|sort of|and|but|or|maybe)\s+)"
                             r"like\s+", re.I)),
    ("liked", re.compile(r"\b(?:i\s+)?(?:really\s+|also\s+)?(?:liked|loved|enjoyed|adored|(?<=i )(?:like|love))\s+|"
                         r"\bmy\s+(?:all\s+time\s+)?(?:fav|fave|favou?rite)\s+(?:film\s+|movie\s+)?(?:is|was)\s+",
                         re.I)),
    ("seen", re.compile(r"\b(?:i(?:'ve|\s+have)?\s+)?(?:already\s+|just\s+)?(?:seen|watched|saw|finished)\s+", re.I)),
    # Years compared with a film: "older than Fargo", "made before Star Wars", "the same era as Chinatown".
    ("before_film", re.compile(r"\b(?:older than|earlier than|made before|released before)\s+", re.I)),
    ("after_film", re.compile(r"\b(?:newer than|later than|more recent than|made after|released after)\s+", re.I)),
    ("era_film", re.compile(r"\b(?:(?:the\s+)?same (?:era|time|period|decade) as|around the (?:time|era) of|"
                            r"from the (?:era|time) of)\s+", re.I)),
    ("exclude", re.compile(r"\b(?:" + "|".join(re.escape(c).replace("dont", "don['’]?t")  # typed with or without
                                               for c in sorted(EXCLUDE_CUES, key=len, reverse=True))
                           + r")\s+", re.I)),
)  # fmt: skip
# After a title at the start of a clause: "Alien-style horror", "Star Wars vibes", "Titanic was boring".
_POSTFIX_SEED = re.compile(rf"^(?:{'|'.join(SEED_AFTER_TITLE)})\b")
ENGLISH_ARTICLES = ("the", "a", "an")  # "the crown" has one real word; ARTICLES holds other languages' too
_SEED_WORDS = r"(?:type|style|esque|vibes?|kind of|sort of)"  # "shawshank type", "apocalypse now or platoon vibes"
_PREFIX_SEED = re.compile(rf"^{_SEED_WORDS}\b")  # after the start of a title only
_POSTFIX_BAD = re.compile(
    rf"^(?:(?:was|is|were)\s+(?:so\s+|really\s+|too\s+|pretty\s+|kinda\s+)?(?:{'|'.join(BAD_VERDICTS)})|"
    r"(?:was|is|were)\s+(?:way\s+|far\s+|much\s+|just\s+)?too\s+\w+|"  # "was too violent"
    rf"(?:wasnt|was not|isnt|is not|werent|were not)\s+(?:really\s+)?(?:{'|'.join(NOT_VERDICTS)}))\b"
)
_POSTFIX_GOOD = re.compile(rf"^(?:one\s+)?(?:was|is|were|looks|sounds)\s+(?:so\s+|really\s+|pretty\s+)?"
                           rf"(?:{'|'.join(GOOD_VERDICTS)}|"
                           r"my (?:all time )?(?:fav|fave|favou?rite))\b")  # fmt: skip
# Right after a series: "star wars movies are overrated", "Star Wars movies? no thanks"; not "are not bad", "not too
# long please", "that aren't boring", "no skip" ("long" and "slow" are no refusal of a series).
_REFUSED = re.compile(
    rf"^\W*(?:(?:are|is|were|r)\s+(?:so\s+|really\s+|totally\s+|just\s+|way\s+|all\s+)?"
    rf"(?:{'|'.join(v for v in BAD_VERDICTS if v not in ('long', 'slow'))}|overrated|crap)\b|"
    r"(?:no thanks|not for me|nah|meh|pass|skip(?: it| them| those)?)\s*(?:[.!?,;]|$))",
    re.I,
)
_YEAR_TOKEN = re.compile(r"^\(?((?:18|19|20)\d\d)\)?$")


FILM_YEAR_CUES = {
    "before_film",
    "after_film",
    "era_film",
    "from_film",
    "until_film",
}  # a film that dates the request, no fact about it
_LIST_JOINS = {"and", "or", "", "meets", "plus"}  # "like Blade Runner meets The Big Sleep"
MAX_TITLE_CUES = 8  # at most this many "I liked X" phrases are matched per message
MAX_TITLE_WORDS = 12  # a title cue looks at most this many words ahead


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


def match_span(
    matcher: TitleMatcher, words: list[re.Match[str]], strict: bool, fuzzy: bool = True
) -> tuple[TitleMatch | None, int]:
    """Best title at the start of ``words``: (match, number of words it used)."""
    limit = min(len(words), MAX_TITLE_WORDS, matcher.max_words + 1)
    texts = [w.group() for w in words[:limit]]
    best: tuple[TitleMatch | None, int] = (None, 0)
    for n in range(limit, 0, -1):  # exact matches first, longest wins
        year = _YEAR_TOKEN.match(texts[n].strip(".,;")) if n < len(texts) else None
        if n < len(texts) and fold(texts[n]) in _TIMES and fold(texts[n - 1]) in _COUNTED:
            continue  # "watched batman 2 times": a count, not Batman Returns
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


_TIMES = {"times", "x"}
_COUNTED = {typed for typed, place in SEQUEL_PLACES.items() if 2 <= place <= 6}  # "batman 2 times"

_AGAINST_IT = re.compile(
    r"\b(?:hate|hates|hated|can'?t stand|cannot stand|dislike|dislikes|disliked|tired of|"
    r"sick of|bored of|bores? me|avoid|anything but|not (?:a |really a )?(?:big )?fan|"
    r"(?:don|didn|doesn)['’]?t (?:really )?(?:like|love|enjoy|want)|not my thing|isn['’]?t my thing|"
    r"too much for me|no more|not keen on|never (?:liked|loved|enjoyed)|not (?:really )?into|nothing with|"
    r"(?:keep|stay) (?:it |me )?away from|^\s*(?:no|nothing|not))\b",
    re.I,
)
_NOT_AGAINST = re.compile(r"\bnever get (?:tired|sick|bored)|\b(?:don|doesn)['’]?t mind\b", re.I)
_ANY_NEGATION = re.compile(r"\b(?:no|not|never|nothing|without|cannot|dont|didnt|doesnt|isnt|wasnt|cant|wont)\b|"
                           r"\wn['’]t\b", re.I)  # fmt: skip


_LAST_CLAUSE = re.compile(r",|;|(?<!anything )(?<!all )\bbut\b|\bnow\b|\bthough\b|\byet\b", re.I)


def example_role(before: str) -> str:
    """What a film given as an example ("especially X", "such as X") is, from the clause before it ("I hated
    horror as a kid but now I love it, especially Scream": "I love it"): disliked after "hate", "can't stand",
    "tired of", "no" …; only named after another negation ("I don't mind horror, especially Scream"); else a
    seed ("loves westerns, especially Unforgiven", "give me sci-fi, for example Alien")."""
    clause = _LAST_CLAUSE.split(before.rstrip(" ,;:-"))[-1]
    if _AGAINST_IT.search(clause) and not _NOT_AGAINST.search(clause):
        return "dislike"
    return "ignored" if _ANY_NEGATION.search(clause) else "like"


_NEGATION_BEFORE = re.compile(rf"\b(?:{'|'.join(NEGATIONS_BEFORE_LIKE)})\b", re.I)


def _clause_start(text: str, start: int) -> int:
    """Start of the clause that holds ``start``: after the last , ; . ! ? newline or "but" before it."""
    last = 0
    for match in re.finditer(r"[,;.!?\n]|\bbut\b|\bthough\b", text[:start], re.I):
        last = match.end()
    return last


def cue_skips(after: str, matcher: TitleMatcher, vocabulary: set[str]) -> bool:
    """True when the words after a cue are no title: a genre, a decade, a pronoun, a number. A capitalised
    exact title wins over a genre word ("like Aliens"); "like aliens" stays a genre."""
    folded = fold(after).split()
    if not folded:
        return True
    capital = after[:1].isupper() and not after.isupper()  # SHOUTING capitalises nothing
    match, used = match_span(matcher, list(re.finditer(r"\S+", after)), strict=True, fuzzy=False)
    if folded[0].isdigit():  # a card or a count ("like 5"), unless a longer title starts with it ("2001: A ...")
        return match is None or used < 2  # "like 187", "after 1995": a number
    if match is not None and (folded[used] if used < len(folded) else "") not in COUNT_NOUNS:
        # A capitalised title ("like Aliens"); in lower case one with its own article ("seen the magic hour")
        # or of three words or more ("seen something to talk about"); "a war movie" stays a genre.
        if capital or used >= 3 or used >= 2 and folded[0] in ARTICLES and fold(match.typed) in matcher.keys:
            return False
    words = folded
    while len(words) > 1 and words[0] in CUE_GLUE:
        words = words[1:]
    if decade(words[0]) or words[0].isdigit():
        return True
    return _starts_with_phrase(folded, vocabulary | TITLE_PRONOUNS | NOT_TITLE) or _starts_with_phrase(
        words, vocabulary | TITLE_PRONOUNS
    )


def titles_after_cues(text: str, matcher: TitleMatcher, vocabulary: set[str]):
    """Find "more like X", "I liked X", "not X" …; returns matches per cue, misses and consumed spans."""
    found: dict[str, list[TitleMatch]] = {name: [] for name, _ in CUES}
    found["ignored"] = []  # "I haven't seen Heat": a title, but no fact about the person
    found["from_film"], found["until_film"] = [], []  # "nothing older than Fargo", "nothing newer than Heat"
    found["fragment"] = []  # "not another Star Trek": every film whose title holds the words
    misses: list[TitleMiss] = []
    consumed: list[tuple[int, int]] = []
    cues = []
    for name, pattern in CUES:
        for match in pattern.finditer(text):
            start = match.start("at") if match.groupdict().get("at") else match.start()  # "a comedy like X"
            if not any(s <= start < e for _, s, e in cues) and match.end() > start:
                cues.append((name, start, match.end()))
    for name, start, end in sorted(cues, key=lambda cue: cue[1])[:MAX_TITLE_CUES]:
        if any(s <= start < e for s, e in consumed):
            continue
        stop = _clause_end(text, end)
        both = re.match(r"both\s+(?=\S)", text[end:stop], re.I)  # "seen both Fargo and Heat"
        end = end + both.end() if both and name in {"seen", "liked", "dislike"} else end
        words = list(re.finditer(r"\S+", text[end:stop]))
        if cue_skips(text[end:stop].strip(), matcher, vocabulary):
            continue  # "I like comedies", "not from the 90s", "no thanks", "not another musical": not a title
        denied = name in {"liked", "seen"} and re.search(r"(?:n'?t|\bnot|\bnever)\s+(?:\w+\s+)?$", text[:start])
        negated = _NEGATION_BEFORE.search(text[_clause_start(text, start) : start])
        example = name == "example"
        if example:  # "I hate musicals, especially Grease": the film takes the sentence's stance, if it has one
            name = example_role(text[max(text.rfind(p, 0, start) for p in ".!?;\n") + 1 : start])
        elif name in {"like", "like_bare"} and negated:
            name = "exclude"  # "I don't want anything like Scream": no seed
        elif name in {"before_film", "after_film"} and negated:
            name = "from_film" if name == "before_film" else "until_film"  # "nothing older than Fargo": 1996 on
        bracketed = _bracketed_titles(text, (end, stop), words, matcher, vocabulary)
        if bracketed is not None:  # "seen every Hitchcock film (Psycho, Vertigo)", "like my favourites (Heat, Speed)"
            found["ignored" if denied else name].extend(bracketed[0])
            consumed.append((start, bracketed[1]))
            continue
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
                article = re.fullmatch(
                    r"(?:a|an)\s+[a-z]+\W*", text[end + offset : stop].strip()
                )  # "a caper": no Casper
                strict = name in {"exclude", "like_bare"} | FILM_YEAR_CUES or bool(article) or example
                match, used = match_span(matcher, words, strict=strict, fuzzy=not (article or example))
                if match is None or name == "exclude" and _word_in_a_phrase(match, words, used):
                    break
                cue_matches.append(match)
            used_end = end + words[used - 1].end()
            comma = words[used - 1].group().endswith(",")
            words = words[used:]
            if not comma and not (words and fold(words[0].group()) in _LIST_JOINS):
                break  # another title must follow a list separator: "Fargo, Heat and Babe"
            while words and fold(words[0].group()) in _LIST_JOINS:
                words = words[1:]
            if words and fold(words[0].group()) in NEGATOR_WORDS | NOT_TITLE | TITLE_PRONOUNS | REQUEST_VERBS:
                break  # "like Fargo, not Pulp Fiction": the next title has its own cue
            if words and cue_skips(text[end + words[0].start() : stop], matcher, vocabulary):
                break  # "I loved Contact and a family movie": a genre, no second title
        if cue_matches or fragments:
            found["ignored" if denied else name].extend(cue_matches)
            consumed.append((start, used_end))
        elif name not in {"exclude", "like_bare"} | FILM_YEAR_CUES and not example:  # "especially the ending"
            comma = text.find(",", end, stop)
            stop = comma if comma > 0 else stop  # "I liked Qwerty, westerns": the miss ends at the comma
            typed = " ".join(text[end:stop].split()[:MAX_TITLE_WORDS]).strip(" ,.")
            misses.append(TitleMiss(typed, matcher.closest(typed)))
            consumed.append((start, stop))
    found["like"] += found.pop("like_bare")
    found.pop("example")  # each example took its sentence's stance (``example_role``)
    return found, misses, consumed


def _word_in_a_phrase(match: TitleMatch, words: list[re.Match[str]], used: int) -> bool:
    """A one-word title in lower case with more words after it: "I don't want ghost stories", "a crash course"."""
    last = words[used - 1].group()
    return (
        len([w for w in fold(match.typed).split() if w not in ENGLISH_ARTICLES]) == 1
        and not match.typed[:1].isupper() and used < len(words) and not re.search(r"[,;.!?]$", last)
        and fold(words[used].group()) not in _LIST_JOINS | FILLERS | {"i", "im", "ive", "id"}  # "no heat please"
    )  # fmt: skip


def _bracketed_titles(text: str, span: tuple[int, int], words: list, matcher: TitleMatcher, vocabulary: set[str]):
    """(titles, where the bracket closes) of a bracket opening between a cue's end and its clause's end
    (``span``) that holds only titles: "I've seen every Hitchcock film (Psycho, Vertigo, Rear Window)"; None
    when a title follows the cue itself ("I liked Heat (Casino)": Heat) or no bracket holds titles."""
    end, stop = span
    bracket = re.compile(r"\(([^()]{2,200})\)").search(text, end)
    if bracket is None or bracket.start() >= stop or words and match_span(matcher, words, True, False)[0] is not None:
        return None
    inside = bracket.group(1)
    if re.fullmatch(r"[\d\s,.'-]+", inside):  # "Usual Suspects, The (1995)": a year, no title
        return None
    words = list(re.finditer(r"\S+", inside))
    single, used = match_span(matcher, words, strict=True, fuzzy=False)
    titles = [single] if single is not None and used == len(words) else title_list(inside, matcher, vocabulary, True)
    return (titles, bracket.end()) if titles else None


def _prefix_seed(matcher: TitleMatcher, clause: str, words: list[re.Match[str]]) -> tuple[TitleMatch | None, int]:
    """The start of exactly one title, then "type", "vibes", "-style" …: "shawshank type movies"."""
    for n in range(min(2, len(words) - 1), 0, -1):
        typed = " ".join(w.group() for w in words[:n])
        if _PREFIX_SEED.match(fold(clause[words[n - 1].end() :])) and not set(fold(typed).split()) & FILLERS:
            match = matcher.prefix(typed)
            if match is not None:
                return match, n
    return None, 0


def _misspelt_seed(matcher: TitleMatcher, clause: str, words: list[re.Match[str]]) -> tuple[TitleMatch | None, int]:
    """A title of two words or more typed with a slip, then "type", "vibes", "-style": "shawshank redemtion vibes"."""
    seed = _LISTED_SEED.match(clause[words[0].start() :]) if words else None
    head = [w for w in words if w.end() <= words[0].start() + seed.end("head")] if seed else []
    if len(head) < 2:
        return None, 0
    match, used = match_span(matcher, head, strict=True)
    return (match, used) if match is not None and used == len(head) else (None, 0)


_LISTED_SEED = re.compile(rf"^(?P<head>.+?)\s+{_SEED_WORDS}\b", re.I)


def title_list(text: str, matcher: TitleMatcher, vocabulary: set[str], bracketed: bool = False) -> list[TitleMatch]:
    """Two or more exact titles and nothing else, joined by commas, "and", "or", "&": "Blade Runner, Brazil,
    Twelve Monkeys", "terminator 2 and aliens"; [] when any part is no title."""
    words = list(re.finditer(r"[^\s,]+", text.strip(" .!?;:()[]\"'")))
    found, i = [], 0
    while i < len(words):
        if fold(words[i].group()) in _LIST_JOINS:  # "&" folds to ""
            i += 1
            continue
        match, used = match_span(matcher, words[i:], strict=True, fuzzy=False)
        if match is None:
            return []
        found.append(match)
        i += used
    # "Blade Runner, Brazil", "scream, psycho, carrie", "Heat and Speed" (written as names), or any list in a
    # bracket after a cue; never with an everyday word ("wife and kids"), nor only one-word titles that are also
    # genre words or written in lower case ("women and war", "twisted and heavy")
    long = any(len([w for w in fold(m.typed).split() if w not in ENGLISH_ARTICLES]) >= 2 for m in found)
    named = all(m.typed[:1].isupper() for m in found) and not text.isupper()
    everyday = any(fold(m.typed) in FILLERS or not long and fold(m.typed) in vocabulary for m in found)
    listed = long or bracketed or len(found) >= 3 or named
    return found if len(found) >= 2 and listed and not everyday else []


def listed_seeds(clause: str, matcher: TitleMatcher, vocabulary: set[str]) -> list[TitleMatch]:
    """Titles listed before "type", "style", "vibes": "apocalypse now or full metal jacket type stuff"."""
    head = _LISTED_SEED.match(clause.strip())
    return title_list(head.group("head"), matcher, vocabulary) if head else []


def titles_leading_clauses(
    text: str, matcher: TitleMatcher, found: dict[str, list[TitleMatch]], vocabulary: set[str], series: list[str]
):
    """A title opening a clause, then "-style", "vibes", "but …" or "was boring": a seed, a like or a dislike;
    a series asked for by name ("star wars movies", "more Batman"): its name a search, in ``series``, so that
    its films are found and its words name no genre ("Star Wars" is no war film)."""
    consumed = []
    for clause in re.finditer(r"[^,;.!?\n]+", text):
        named = series_fragment(clause.group(), matcher.catalog, vocabulary)
        if named is not None:
            if _REFUSED.match(text[clause.start() + named.end :]):
                found["fragment"].append(TitleMatch(named.typed, named.item_ids, named.typed, 1.0))  # "are overrated"
            else:
                series.append(named.typed)
            consumed.append((clause.start(), clause.start() + named.end))
            continue
        listed = listed_seeds(clause.group(), matcher, vocabulary)
        if listed:
            found["like"] += listed
            consumed.append(clause.span())
            continue
        words = list(re.finditer(r"\S+", clause.group()))
        while len(words) > 1 and fold(words[0].group()) in CLAUSE_OPENERS:
            words = words[1:]  # "hmm Cemetery Man was boring"
        if not words:
            continue
        match, used = match_span(matcher, words, strict=True, fuzzy=False)
        if match is None:
            match, used = _prefix_seed(matcher, clause.group(), words)  # "shawshank type movies"
        if match is None:
            match, used = _misspelt_seed(matcher, clause.group(), words)  # "shawshank redemtion vibes"
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
