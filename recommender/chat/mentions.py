"""Titles named without a cue: written with capitals mid-sentence ("he stayed awake for Speed and The Rock"),
listed ("terminator 2 and aliens"), or the whole message ("Blade Runner, Brazil, Twelve Monkeys"); what a
pronoun then says about them ("more like those", "didn't like them"). Pure: the standard library."""

from __future__ import annotations

import re

from recommender.chat.stances import pronoun_verdicts
from recommender.chat.title_cues import ENGLISH_ARTICLES, match_span, title_list
from recommender.data.titles import TitleMatch, TitleMatcher, fold


def capitalised_mentions(text: str, matcher: TitleMatcher) -> list[TitleMatch]:
    """Titles written with capitals in the middle of a sentence, with no cue: "he did stay awake for Speed and
    The Rock". Exact matches only, every word of four letters or more capitalised, never a sentence's first
    word alone; what they mean is left to the rest of the message ("give me five more like those")."""
    words = list(re.finditer(r"\S+", text))
    found, i = [], 0
    while i < len(words):
        first = i == 0 or re.search(r"[.!?]$", words[i - 1].group())
        if not words[i].group()[:1].isupper():
            i += 1
            continue
        match, used = match_span(matcher, words[i:], strict=True, fuzzy=False)
        span = [w.group().strip(",.;:!?") for w in words[i : i + used]]
        capitals = all(w[:1].isupper() for w in span if len(w) >= 4)
        if match is None or not capitals or first and used == 1 or span[0].isupper() and len(span[0]) > 1:
            i += 1
            continue
        found.append(match)
        i += used
    single = len(found) == 1 and len(found[0].typed.split()) == 1  # "watching with Michael tonight": a name
    return [] if single else found


def listed_mentions(text: str, matcher: TitleMatcher, vocabulary: set[str]) -> list[TitleMatch]:
    """``title_list`` of each sentence, else of each comma-separated part of it: the titles "more like those"
    may point at ("terminator 2 and aliens, more like those")."""
    found = []
    for sentence in re.split(r"[;.!?\n]", text):
        found += title_list(sentence, matcher, vocabulary) or [
            match for part in sentence.split(",") for match in title_list(part, matcher, vocabulary)
        ]
    if not found:  # "fargo, anything similar?", "Clueless. More like that": one title as a part of its own
        found = _lone_title(text, matcher, vocabulary)
    return found


# What may follow titles typed as parts of their own for a pronoun to be about them: the person's own plain
# verdict or a plain "anything similar" (at least one part), beside parts with no pronoun at all ("the rest look
# good", "more period dramas"). Anything else with a pronoun says otherwise or may: "Fargo, I've never actually
# seen it", "Fargo, my wife loved it but I didn't".
_LONE_TITLE_REST = re.compile(
    r"(?:(?:ok|so|well|oh|and|hmm|yeah)\s+)?(?:(?:i|ive|i have|i ve|we|weve)\s+)?"
    r"(?:(?:really|totally|absolutely|already|just|truly|so)\s+)*"
    r"(?:(?:(?:didnt|did not|dont|do not)\s+(?:really\s+)?(?:like|love|enjoy)|loved|liked|enjoyed|adored|hated|"
    r"disliked|seen|watched|saw)\s+(?:it|that|this|them|those|these|both)(?:\s+one)?"
    r"(?:\s+(?:already|before|too|twice|a lot|so much|please))*"
    r"|(?:it was|its|it is|it s)\s+(?!not\b|never\b)(?:\w+\s+){0,2}\w+"
    r"|(?:(?:got|do you have|have you got)\s+)?(?:anything|something|any|more|films?|movies?)\s+(?:else\s+)?"
    r"(?:similar|like (?:it|that|this|those|them|both))(?:\s+(?:please|but .+))?"
    r"|more (?:like|of) (?:it|that|this|those|them|both|the same)(?:\s+(?:one|please|but .+))*)"
)
_PRONOUNS = {"it", "its", "that", "this", "them", "those", "these", "they", "both", "one"}


def _lone_title(text: str, matcher: TitleMatcher, vocabulary: set[str]) -> list[TitleMatch]:
    """Titles as parts of their own ("fargo, anything similar?", "Heat, Speed, loved them"), the other parts
    only what ``_LONE_TITLE_REST`` allows."""
    parts = [part for part in re.split(r"[,;.!?\n]|\s[-–—]\s", text) if part.strip(" \"'()[]")]
    titles = [_part_title(part, matcher, vocabulary) for part in parts]
    found = [match for match in titles if match is not None]
    rest = [fold(part) for part, match in zip(parts, titles) if match is None]
    plain = [bool(_LONE_TITLE_REST.fullmatch(words)) for words in rest]
    other = [not ok and not _PRONOUNS & set(words.split()) for ok, words in zip(plain, rest)]
    return found if found and any(plain) and all(ok or free for ok, free in zip(plain, other)) else []


def _part_title(part: str, matcher: TitleMatcher, vocabulary: set[str]) -> TitleMatch | None:
    """The whole ``part`` as one exact title, unless it is one word the chat reads otherwise ("kids")."""
    words = list(re.finditer(r"\S+", part.strip(" \"'()[]")))
    if not words:
        return None
    match, used = match_span(matcher, words, strict=True, fuzzy=False)
    if match is None or used < len(words) or len(words) == 1 and fold(words[0].group()) in vocabulary:
        return None
    return match


def mention_verdicts(
    found: dict[str, list],
    texts: tuple[str, str],
    folded: str,
    matcher: TitleMatcher,
    query: list[str],
    vocabulary: set[str],
) -> list[str]:
    """Verdicts said with a pronoun (``pronoun_verdicts``) on the titles before them, named with a cue or
    without one ("stay awake for Speed and The Rock, five more like those", "Blade Runner and Brazil, seen
    them"); the query without the words of the titles so read. ``texts``: the message with the cards it
    points at blanked, and as typed (a list of titles is read only where nothing was blanked from it)."""
    cleaned, message = texts
    if not any(found.values()):
        found["listed"] = listed_mentions(message, matcher, vocabulary)  # what a plural pronoun's verdict is about
        found["mention"] = max(capitalised_mentions(cleaned, matcher), found["listed"], key=len)
    pronoun_verdicts(found, folded)
    mention, _ = found.pop("mention", None), found.pop("listed", None)
    if mention and any(found[k] for k in ("like", "liked", "seen", "dislike")):  # read as films: no search words
        named = {w for match in mention for w in f"{fold(match.title)} {fold(match.typed)}".split()}  # "2nd"
        query = [w for w in query if w not in named]
    return query


def whole_message_titles(
    message: str, matcher: TitleMatcher, vocabulary: set[str], asks_filters: bool
) -> list[TitleMatch]:
    """The whole message as a title ("fargo"), a list of titles ("Blade Runner, Brazil, Twelve Monkeys") or,
    when it asks for no genre, year or count, one title typed with a slip ("jurrasic park")."""
    words = list(re.finditer(r"\S+", message))
    exact, used = match_span(matcher, words, strict=True, fuzzy=False)
    listed = [exact] if exact is not None and used == len(words) else title_list(message, matcher, vocabulary)
    return listed or ([] if asks_filters else _misspelt_title(matcher, words, vocabulary))


def _misspelt_title(matcher: TitleMatcher, words: list[re.Match[str]], vocabulary: set[str]) -> list[TitleMatch]:
    """The whole message as one title of two words or more typed with a slip, no genre word in it."""
    content = [w.group().lower() for w in words if fold(w.group()) not in ENGLISH_ARTICLES]
    if len(content) < 2 or not any(w.isalpha() and len(w) >= 4 for w in content):
        return []  # "the crown" is no The Crow
    if any(not w.isalnum() or w in vocabulary for w in content):
        return []  # "seen :)" is no Se7en
    match, used = match_span(matcher, words, strict=True)
    return [match] if match is not None and used == len(words) else []
