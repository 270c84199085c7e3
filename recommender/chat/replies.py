"""The gate an LLM-written chat reply passes before anyone reads it. Pure: stdlib only.

A small model writes fluent text that often answers nothing ("I'm not a movie or a movie-like
character, but I can provide a more specific answer ...") or loops ("I'm not a nerf, but I'm not a
nerf, I'm not a nerf, I'm"). A reply is shown only when it answers::

    draft = tidy_reply(streamed_text)                    # whole sentences only, whitespace folded
    problem = reply_problem(draft, shown=recs, allowed=allowed_titles(recs, state, catalog),
                            state=state, catalog=catalog)
    reply = draft if not problem else templated_reply(recs, refinement, state)

``reply_problem`` returns "" for a reply that may be shown, else one short reason (logged, and
counted by ``bench/chat_replies.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from recommender.chat.lexicon import ABBREVIATIONS, GENRE_CLAIMS
from recommender.chat.state import ConversationState
from recommender.data import Catalog
from recommender.data.titles import TitleMatcher, fold, title_keys
from recommender.text_checks import names_title, ordinary_words, repeats_itself

MAX_SENTENCES = 4  # "a few sentences"; a longer reply buries the cards
MAX_WORDS = 90
MIN_WORDS = 4
# Words that say a genre out loud; a reply using one the person excluded contradicts them.
GENRE_WORDS = {
    "Action": r"action",
    "Adventure": r"adventures?",
    "Animation": r"animated|animation|cartoons?",
    "Children's": r"children'?s?|kids?|family film|family movie",
    "Comedy": r"comed(?:y|ies)|funny|hilarious",
    "Crime": r"crime|criminals?|gangsters?",
    "Documentary": r"documentar(?:y|ies)",
    "Drama": r"dramas?",
    "Fantasy": r"fantasy",
    "Film-Noir": r"noir",
    "Horror": r"horror|scary|terrifying",
    "Musical": r"musicals?",
    "Mystery": r"myster(?:y|ies)",
    "Romance": r"romance|romantic|love stor(?:y|ies)",
    "Sci-Fi": r"sci-?fi|science[- ]fiction",
    "Thriller": r"thrillers?",
    "War": r"war (?:film|movie|drama|story)s?",
    "Western": r"westerns?",
}
NEGATION = re.compile(r"\b(?:no|not|nothing|without|non|never|avoid\w*|skip\w*|free of)\b\W+(?:\w+\W+){0,2}$", re.I)
# The model talking about itself or the prompt instead of the films.
OFF_TASK = re.compile(
    r"\b(?:as an ai|language model|i(?:'| a)?m not an?\b|i am not an?\b|i can(?:not|'t) (?:help|provide|recommend)"
    r"|i don'?t have|you may recommend|best first|the user asked|items? listed below|system prompt)",
    re.I,
)


def tidy_reply(text: str) -> str:
    """The streamed text cut to whole sentences: a reply stopped by the token limit mid-sentence
    loses its unfinished tail ("Try Fargo. It is a" -> "Try Fargo."), or ends with "…" when it is one
    unfinished sentence; whitespace folded per line."""
    lines = [" ".join(line.split()) for line in (text or "").strip().splitlines()]
    text = "\n".join(line for line in lines if line)
    if not text or text[-1] in ".!?)\"'”’*":
        return text
    ends = [m.end() for m in re.finditer(r"[.!?](?:[\"'”’)*]*)(?=\s|$)", text)]
    return text[: ends[-1]].rstrip() if ends else text.rstrip(" ,;:-") + "…"  # one long sentence: say it was cut


# Words before a full stop that do not end a sentence ("Dr. Strangelove", "Mr. Holland's Opus").
TITLE_ABBREVIATIONS = ABBREVIATIONS | {"vol", "mt", "ft", "pt"}


def complete_sentences(text: str) -> int:
    """How many sentences of ``text`` are finished: a . ! or ? followed by a space or a line break,
    not after an abbreviation or a single letter ("L.A. Confidential", "Dr. Strangelove")."""
    count = 0
    for match in re.finditer(r"([\w']*)[.!?][\"'”’)*]*(?=\s)", text):
        word = match.group(1).lower()
        if match.group().endswith(".") and (word in TITLE_ABBREVIATIONS or len(word) == 1):
            continue
        count += 1
    return count


def sentences(text: str) -> list[str]:
    """``text`` split at sentence ends and line breaks ("Fargo (1996)." is one sentence)."""
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'“*])|\n+", text.strip())
    return [p for p in parts if re.search(r"\w", p)]


def _mention_keys(title: str) -> set[str]:
    return title_keys(re.sub(r"\s*\((?:18|19|20)\d\d\)\s*$", "", title))


def mentioned_titles(reply: str, catalog: Catalog) -> list[tuple[str, tuple[str, ...]]]:
    """Catalogue titles named in ``reply``: (text as written, item ids), left to right, longest first.

    A title counts where ``text_checks.names_title`` says it is written as one (the rule explanations
    follow too): a one-word title ("Heat", "Mother") only capitalised away from a sentence's start, in
    quotes or bold, or followed by its year, so ordinary words do not count as titles.
    """
    matcher = TitleMatcher.for_catalog(catalog)
    ordinary = ordinary_words(catalog)
    words = list(re.finditer(r"[^\W_]+(?:['’.][^\W_]+)*\.?", reply or ""))
    folded = [fold(w.group()) for w in words]
    found, i = [], 0
    while i < len(words):
        for n in range(min(matcher.max_words, len(words) - i), 0, -1):
            key = " ".join(k for k in folded[i : i + n] if k)
            items = matcher.keys.get(key)
            if not items or not names_title(reply, words[i].start(), words[i + n - 1].end(), ordinary):
                continue
            found.append((reply[words[i].start() : words[i + n - 1].end()], tuple(item.id for item in items)))
            i += n - 1
            if re.match(r"\s*\((?:18|19|20)\d\d\)", reply[words[i].end() :]):
                i += 1  # the title's "(1995)" is no title of its own
            break
        i += 1
    return found


def check_reply_names_only(reply: str, allowed: Iterable[str], catalog: Catalog) -> bool:
    """True when every catalogue title ``reply`` names is one of ``allowed`` (titles, "(year)" optional).

    An LLM-written reply must name only the ranked items and the person's history; when this
    returns False, fall back on ``chat.writing.templated_reply``.
    """
    allowed_keys = {key for title in allowed for key in _mention_keys(str(title))}
    for written, _ in mentioned_titles(reply, catalog):
        keys = _mention_keys(written)
        if not keys & allowed_keys:
            return False
    return True


def named_shown_items(text: str, shown: Sequence[Any], catalog: Catalog) -> list[str]:
    """Ids of the ``shown`` items (recommendations or items with ``item_id``/``id``) that ``text`` names."""
    ids = [str(getattr(rec, "item_id", getattr(rec, "id", rec))) for rec in shown]
    found = {i for _, item_ids in mentioned_titles(text, catalog) for i in item_ids}
    folded = f" {fold(text)} "
    for item_id in ids:
        if item_id not in catalog or item_id in found:
            continue
        for key in title_keys(re.sub(r"\s*\((?:18|19|20)\d\d\)\s*$", "", catalog[item_id].title)):
            if len(key.split()) >= 2 and f" {key} " in folded:
                found.add(item_id)  # a multi-word title written at a sentence's start, which mentioned_titles skips
    return [i for i in ids if i in found]


def names_a_shown_item(text: str, shown: Sequence[Any], catalog: Catalog) -> bool:
    """True when ``text`` names at least one of ``shown`` (recommendations or items with ``item_id``/``id``)."""
    return bool(named_shown_items(text, shown, catalog))


def unsupported_genre(text: str, shown: Sequence[Any], catalog: Catalog) -> str:
    """A genre the reply gives a film its card does not show ("" when none): each sentence's genre
    words must belong to a film that sentence names, or else to the last film named before it."""
    subject: list[str] = []
    for sentence in sentences(text):
        subject = named_shown_items(sentence, shown, catalog) or subject
        genres = {genre for item_id in subject for genre in catalog[item_id].genres}
        for genre, pattern in GENRE_CLAIMS.items():
            if genre in genres or not subject:
                continue
            for match in re.finditer(rf"\b(?:{pattern})\b", sentence, re.I):
                if not NEGATION.search(sentence[: match.start()]):
                    return f"calls a film {genre}"
    return ""


def contradicts(text: str, state: ConversationState) -> str:
    """What in ``text`` goes against the person's constraints ("" when nothing): an excluded genre
    named without a negation before it, or a year outside the asked-for range."""
    for genre in state.exclude_genres:
        pattern = GENRE_WORDS.get(genre, re.escape(genre))
        for match in re.finditer(rf"\b(?:{pattern})\b", text, re.I):
            if not NEGATION.search(text[: match.start()]):
                return f"names excluded {genre}"
    if state.year_min is not None or state.year_max is not None:
        bare = re.sub(r"\((?:18|19|20)\d\d\)", " ", text)  # "(1996)" after a title is the title's own year
        for match in re.finditer(r"\b(1[89]\d\d|20\d\d)s?\b", bare):
            year = int(match.group(1))
            low = state.year_min if state.year_min is not None else -1
            high = state.year_max if state.year_max is not None else 10_000
            if not low <= year <= high and not (match.group().endswith("s") and low <= year + 9 and year <= high):
                return f"year {year} outside the asked range"
    return ""


def reply_problem(
    reply: str,
    shown: Sequence[Any],
    allowed: Iterable[str],
    state: ConversationState,
    catalog: Catalog,
) -> str:
    """Why an LLM reply must not be shown, or "" when it may.

    Args:
        reply: the written reply (after ``tidy_reply``).
        shown: the recommendations on the cards, best first.
        allowed: titles the reply may name (``state.allowed_titles``: the list and the history).
        state: the conversation state after the turn (its constraints).
    """
    words = reply.split()
    if len(words) < MIN_WORDS:
        return "too short"
    if len(words) > MAX_WORDS or len(sentences(reply)) > MAX_SENTENCES:
        return "too long"
    if repeats_itself(reply):
        return "repeats itself"
    if OFF_TASK.search(reply):
        return "off task"
    if not names_a_shown_item(reply, shown, catalog):
        return "names no shown item"
    if not check_reply_names_only(reply, allowed, catalog):
        return "names a film outside the list"
    return contradicts(reply, state) or unsupported_genre(reply, shown, catalog)


def finished_text(text: str) -> str:
    """The part of streamed ``text`` made of finished sentences (the rule of ``complete_sentences``),
    whitespace folded per line; "" while the first sentence is still being written."""
    end = 0
    for match in re.finditer(r"([\w']*)[.!?][\"'”’)*]*(?=\s)", text):
        word = match.group(1).lower()
        if match.group().endswith(".") and (word in TITLE_ABBREVIATIONS or len(word) == 1):
            continue
        end = match.end()
    return tidy_reply(text[:end]) if end else ""
