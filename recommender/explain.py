"""Why this item? Drop-one influence of history items on an LLM score, and grounded explanations.

    positions, effect = drop_one_influence(score, history_rows, window=10)   # [W], [W, K]
    explanation = explain_item(generator, catalog, history, item, values)
    explanation.text, explanation.path        # "generated" or "fallback", with explanation.reason

The score of a candidate for a history is its log-probability among the candidates of the SERVED
ranking prompt (``Recommender.llm_scores``: the pipeline's prompt, evidence and adapter), so the
chat cards, ``Recommender.explain`` and ``recommender explain`` measure one quantity.
``influence(h) = score(H) - score(H without h)`` with the candidates fixed; without h the
next-older item enters the prompt, as it would for a person who never watched h. Only the last
``window`` items are ablated; the others get NaN.

Explanations render the ``explain`` template with the strongest positive influencers and catalogue
facts (shared genres, year, co-watched evidence), generate greedily, then check every film title in
the text (``TitleChecker``): only the history and the recommended item may be named. Anything else,
an empty answer or a generator error falls back to a sentence built from the same evidence.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from recommender.chat.replies import repeats_itself
from recommender.data import Catalog, Item
from recommender.data.titles import ARTICLES, TitleMatcher, fold
from recommender.llm.prompting import render_explain

DEFAULT_WINDOW = 10  # history items ablated by default (the most recent ones)
DEFAULT_TOP_K = 3  # positive influencers handed to the explanation
DEFAULT_MAX_NEW_TOKENS = 60
EXPLAIN_HISTORY = 5  # history lines shown in the explain prompt (the top influencers first)
MIN_DISTINCT_WORDS = 4  # fewer distinct words than this is no explanation
CARD_INFLUENCERS = 3  # influencers shown on a recommendation card


class Generator(Protocol):
    def generate(self, messages: list[dict[str, str]], max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> str:
        """Greedy reply to chat messages."""
        ...


# ---------------------------------------------------------------- influence

ScoreHistories = Callable[[list[np.ndarray]], list[np.ndarray]]


def drop_one_influence(
    score: ScoreHistories, history: np.ndarray, window: int | None, base: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Drop-one ablation of the last ``window`` history items (all when None).

    Args:
        score: histories -> per history, [K] log-probabilities of one fixed candidate list (the
            served prompt; a history shorter by one lets the next-older item into the prompt).
        history: [H] catalogue rows, oldest first.
        base: [K] scores of the whole history when already computed (saves one prompt).

    Returns:
        [W] ablated positions in ``history`` and [W, K] influences ``base - ablated``: positive
        where the item pushed the candidate up. All variants go to ``score`` in one call.
    """
    history = np.asarray(history, dtype=np.int64)
    if window is not None and window < 0:
        raise ValueError(f"window must be >= 0 or None, got {window}")
    start = 0 if window is None else max(0, len(history) - window)
    positions = np.arange(start, len(history), dtype=np.int64)
    variants = [np.delete(history, p) for p in positions]
    if base is None:
        scored = score([history, *variants])
        base, ablated = scored[0], scored[1:]
    else:
        ablated = score(variants) if variants else []
    if not len(positions):
        return positions, np.zeros((0, len(base)))
    return positions, np.asarray(base, dtype=np.float64)[None, :] - np.array(ablated)  # [W, K]


def positive_influencers(
    values: np.ndarray, ids: Sequence[str], k: int = CARD_INFLUENCERS
) -> tuple[tuple[str, float], ...]:
    """The ``k`` (id, influence) pairs with the largest positive influence, strongest first
    (ties: the more recent item)."""
    return tuple((ids[i], float(values[i])) for i in top_influencers(values, k))


def top_influencers(values: np.ndarray, k: int = DEFAULT_TOP_K, positive_only: bool = True) -> list[int]:
    """Positions of the ``k`` largest measured influences, strongest first (ties: the more recent item)."""
    values = np.asarray(values, dtype=np.float64)
    order = sorted(np.flatnonzero(np.isfinite(values)), key=lambda i: (-values[i], -i))
    return [int(i) for i in order if not positive_only or values[i] > 0][:k]


# ---------------------------------------------------------------- title checking

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|&")
_YEAR_AFTER = re.compile(r"\s*\(?((?:18|19|20)\d\d)\)?")
_QUOTED = re.compile(r"\"([^\"\n]{1,100})\"|“([^”\n]{1,100})”|(?<!\w)'([^'\n]{1,100})'(?!\w)")
_CONNECTORS = {"of", "the", "a", "an", "and", "in", "on", "to", "for", "with", "from", "at", "by", "&", "or", "de"}
# Capitalised words that start sentences or name genres, never a title by themselves.
_NOT_TITLE_WORDS = {
    "if", "you", "your", "this", "these", "that", "the", "based", "as", "since", "because", "like", "with", "it", "its",
    "we", "i", "they", "both", "also", "fans", "recommended", "recommendation", "item", "items", "user", "users",
    "film", "films", "movie", "movies", "people", "who", "and", "but", "so", "in", "a", "an", "for", "here", "there",
    "why", "what", "when", "given", "just", "then", "plus", "enjoy", "enjoyed", "liked", "watched", "try", "check",
    "similar", "candidate", "candidates", "answer", "explanation", "yes", "no", "mr", "mrs", "dr", "st",
}  # fmt: skip


@dataclass(frozen=True)
class TitleCheck:
    """Film titles found in a text: the allowed ones it names and the ones it must not."""

    mentioned: tuple[str, ...]  # allowed item ids named in the text
    invented: tuple[tuple[str, str], ...]  # (phrase, kind): "catalogue", "quoted", "year" or "title-cased"

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
        self.genre_words = {word for genre in catalog.genre_vocabulary for word in fold(genre).split()}
        self.genre_words |= {word + "s" for word in self.genre_words}

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
        words = list(_WORD.finditer(text))
        used = [False] * len(words)

        def accept(items: list[Item], phrase: str, kind: str) -> None:
            ids = [item.id for item in items if item.id in allowed]
            if ids:
                mentioned.extend(i for i in ids if i not in mentioned)
            else:
                invented.append((phrase, kind))

        # 1. Quoted phrases: must be an allowed title (an optional year or " - genres" tail aside).
        for match in _QUOTED.finditer(text):
            inner = next(g for g in match.groups() if g is not None)
            core = re.sub(r"\s*\(?(?:18|19|20)\d\d\)?\s*$", "", inner.split(" - ")[0]).strip(" .,;:!?")
            items = self._items_of(core)
            accept(items, inner, "catalogue" if items else "quoted")
            year = _YEAR_AFTER.match(text, match.end())
            stop = year.end() if year and text[match.end() :].lstrip().startswith("(") else match.end()
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
                if items and self._counts_as_title(text, words, i, n):
                    end = self._title_tail(text, words[i + n - 1].end(), items)
                    accept(items, phrase, "catalogue")
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
                accept(items, phrase, "catalogue")
            else:
                invented.append((phrase, "title-cased"))
        return TitleCheck(tuple(mentioned), tuple(invented))

    def _title_tail(self, text: str, end: int, items: list[Item]) -> int:
        """End of a title mention past its "(alias)" ("Seven (Se7en)") and "(1995)" that follow it."""
        end += len(re.match(r"[.!?…'’]*", text[end:]).group())  # "Mars Attacks!", "Sunset Blvd."
        alias = re.match(r"\s*\(([^()]{1,80})\)", text[end:])
        if alias and not re.fullmatch(r"\s*(?:18|19|20)\d\d\s*", alias.group(1)):
            if {item.id for item in self._items_of(alias.group(1))} & {item.id for item in items}:
                end += alias.end()
        year = re.match(r"\s*\(?(?:18|19|20)\d\d\)?", text[end:])
        return end + year.end() if year else end

    def _counts_as_title(self, text: str, words: list[re.Match[str]], i: int, n: int) -> bool:
        core = [w.group() for w in words[i : i + n]]
        significant = [w for w in core if w.lower() not in ARTICLES] or core
        year = re.match(r"[.!?…'’]*\s*\((?:18|19|20)\d\d\)", text[words[i + n - 1].end() :])
        if year:
            return True  # "Heat (1995)", "187 (1997)"
        if all(w.isdigit() for w in core):
            return False  # a bare number ("1995") is a year or a count, not a film
        capitalised = significant[0][:1].isupper() or significant[0][:1].isdigit()
        if len(significant) >= 2 and not all(w.lower() in _NOT_TITLE_WORDS | _CONNECTORS for w in significant):
            return True  # a multi-word title, in any case
        return (
            capitalised
            and not _sentence_start(text, words[i].start())
            and significant[0].lower() not in (_NOT_TITLE_WORDS | self.genre_words)
        )

    def _capitalised_runs(self, text: str, words: list[re.Match[str]], used: list[bool]) -> list[tuple[int, int]]:
        def capital(k: int) -> bool:
            word = words[k].group()
            low = word.lower()
            return (
                not used[k]
                and word[:1].isupper()
                and low not in self.genre_words
                and low not in _NOT_TITLE_WORDS
                and low not in _CONNECTORS
            )

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
                elif words[j].group().lower() not in _CONNECTORS:
                    break
                j += 1
            if capitals >= 2:
                runs.append((k, end))
            k = max(end, k + 1)
        return runs


def _sentence_start(text: str, position: int) -> bool:
    before = text[:position].rstrip(" \t\"'“(")
    return not before or before[-1] in ".!?:\n-*•"


# ---------------------------------------------------------------- evidence and explanations


@dataclass(frozen=True)
class Explanation:
    """A grounded explanation of one recommendation."""

    text: str
    path: str  # "generated" or "fallback"
    influences: list[tuple[str, str, float]]  # (item id, title, influence), measured items, strongest first
    evidence: dict[str, Any]
    raw_generation: str | None  # what the model wrote (None when it raised or was not asked)
    reason: str = ""  # why the fallback was taken; empty on the generated path
    invented: tuple[tuple[str, str], ...] = field(default=())  # invented titles found in raw_generation

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _join(names: Sequence[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def co_watched(
    cooccurrence: Any, catalog: Catalog, history_ids: Sequence[str], item_id: str
) -> list[tuple[str, float]]:
    """(history id, co-occurrence similarity with ``item_id``) for co-watched pairs, strongest first.

    ``cooccurrence`` is a ``retrieval.CooccurrenceRetriever`` (its sparse [N, N] ``similarity``).
    """
    if cooccurrence is None or not history_ids:
        return []
    rows = [catalog.row(i) for i in history_ids]
    column = cooccurrence.similarity[:, catalog.row(item_id)]
    values = np.asarray(column[rows].todense()).ravel() if hasattr(column, "todense") else np.asarray(column)[rows]
    pairs = [(str(h), float(v)) for h, v in zip(history_ids, values) if v > 0]
    return sorted(pairs, key=lambda pair: -pair[1])


def build_evidence(
    catalog: Catalog,
    history: Sequence[Item],
    item: Item,
    values: np.ndarray,
    *,
    top_k: int = DEFAULT_TOP_K,
    cooccurrence: Any = None,
) -> dict[str, Any]:
    """Facts an explanation may use: top positive influencers (each with the genres it shares
    with the item), the item's year, co-watched items."""
    top = top_influencers(values, top_k)
    influencers = []
    for i in top:
        shared = [g for g in item.genres if g in history[i].genres and g != "unknown"]
        influencers.append(
            {"id": history[i].id, "title": history[i].display_title(), "influence": float(values[i]), "shared": shared}
        )
    measured = [history[i] for i in np.flatnonzero(np.isfinite(values))]
    pool = [entry["id"] for entry in influencers] or [h.id for h in measured]
    co = co_watched(cooccurrence, catalog, pool, item.id)[:2]
    lines = []
    if influencers:
        names = _join([entry["title"] for entry in influencers])
        lines.append(f"The user's history items that raised this recommendation most: {names}.")
    for entry in influencers:
        if entry["shared"]:
            lines.append(f"{entry['title']} and {item.title} are both {_join(entry['shared'])}.")
    if item.year:
        lines.append(f"{item.title} was released in {item.year}.")
    for history_id, _ in co:
        lines.append(f"People who watched {catalog[history_id].display_title()} often also watched {item.title}.")
    return {
        "item": {"id": item.id, "title": item.display_title(), "year": item.year, "genres": list(item.genres)},
        "top_influencers": influencers,
        "year": item.year,
        "co_watched": [{"id": i, "title": catalog[i].display_title(), "similarity": s} for i, s in co],
        "lines": lines,
    }


def fallback_text(evidence: dict[str, Any]) -> str:
    """A sentence built only from ``evidence``: it names only the history and the item, and says
    which genres each named film shares with the item (never a union none of them has)."""
    item = evidence["item"]["title"]
    influencers = evidence["top_influencers"]
    if influencers:
        text = f"We suggest {item} because you watched {_join([entry['title'] for entry in influencers])}."
        sharing = [f"{entry['title']} ({', '.join(entry['shared'])})" for entry in influencers if entry["shared"]]
        if sharing:
            text += f" Genres it shares with them: {'; '.join(sharing)}."
    elif evidence["item"]["genres"]:
        text = (
            f"We suggest {item}, a {'/'.join(evidence['item']['genres'])} film, from the pattern of your recent films."
        )
    else:
        text = f"We suggest {item} from the pattern of your recent films."
    if evidence["co_watched"]:
        text += f" People who watched {evidence['co_watched'][0]['title']} often watched it too."
    return text


def _tidy(text: str) -> str:
    """One paragraph; a sentence cut by the token cap is dropped when a full one precedes it."""
    text = " ".join(str(text).split()).strip()
    if text and text[-1] not in '.!?"”' and re.search(r"[.!?]\s", text):
        text = text[: max(text.rfind(". "), text.rfind("! "), text.rfind("? ")) + 1]
    return text


def generate_checked(
    generate: Callable[[list[dict[str, str]]], str],
    messages: list[dict[str, str]],
    checker: TitleChecker,
    allowed_ids: Sequence[str],
) -> tuple[str | None, str | None, str, tuple[tuple[str, str], ...]]:
    """(raw generation, accepted text or None, reason for refusing, invented titles)."""
    try:
        raw = generate(messages)
    except Exception as error:  # any model failure ends in the fallback, never in the caller
        return None, None, f"generation raised {type(error).__name__}: {error}", ()
    if not isinstance(raw, str):
        return None, None, f"generation returned {type(raw).__name__}, not text", ()
    text = _tidy(raw)
    check = checker.check(raw, allowed_ids)
    if check.invented:
        names = "; ".join(f"{phrase!r} ({kind})" for phrase, kind in check.invented)
        return raw, None, f"generation names films outside the history: {names}", check.invented
    # Distinct words: a line-scoring adapter's free text can be "F F F F" (four words, one distinct).
    if len(set(re.findall(r"[\w']+", text.lower()))) < MIN_DISTINCT_WORDS:
        return raw, None, "generation was empty or too short", ()
    if repeats_itself(text):
        return raw, None, "generation repeats itself", ()
    return raw, text, "", ()


def explain_messages(history: Sequence[Item], item: Item, evidence: dict[str, Any]) -> list[dict[str, str]]:
    """The ``explain`` prompt: the top influencers as the history (else the last few items) + evidence lines."""
    top_ids = {entry["id"] for entry in evidence["top_influencers"]}
    shown = [h for h in history if h.id in top_ids] or list(history)[-EXPLAIN_HISTORY:]
    return render_explain(shown, item, evidence["lines"], max_history=EXPLAIN_HISTORY).messages


def explain_item(
    generator: Generator | Callable[..., str] | None,
    catalog: Catalog,
    history_items: Sequence[Item],
    item: Item,
    values: np.ndarray,
    *,
    top_k: int = DEFAULT_TOP_K,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    cooccurrence: Any = None,
    checker: TitleChecker | None = None,
) -> Explanation:
    """Build evidence from measured influences, generate an explanation and verify it (or fall back).

    Args:
        generator: an object with ``generate(messages, max_new_tokens)`` (``LLMScorer``), a
            callable ``(messages) -> str``, or None to always use the fallback sentence.
        catalog: the catalogue (titles to check against).
        history_items: the user's history, oldest first.
        item: the recommended item.
        values: [H] influence of each history item on the item's score (NaN: not measured), as
            ``Recommender.explain`` measures them on the served prompt.
        top_k: positive influencers given to the explanation.
        max_new_tokens: generation cap.
        cooccurrence: a ``CooccurrenceRetriever`` for co-watched evidence (optional).
        checker: a ``TitleChecker`` to reuse across calls.
    """
    history = list(history_items)
    values = np.asarray(values, dtype=np.float64)
    if len(values) != len(history):
        raise ValueError(f"{len(values)} influence values for {len(history)} history items")
    checker = checker or TitleChecker(catalog)
    evidence = build_evidence(catalog, history, item, values, top_k=top_k, cooccurrence=cooccurrence)
    evidence["score_kind"] = "logprob"
    order = sorted(np.flatnonzero(np.isfinite(values)), key=lambda i: -values[i])
    influences = [(history[i].id, history[i].display_title(), float(values[i])) for i in order]
    allowed = [h.id for h in history] + [item.id]
    fallback = fallback_text(evidence)
    if generator is None:
        return Explanation(fallback, "fallback", influences, evidence, None, "no generator given")
    messages = explain_messages(history, item, evidence)
    call = generator.generate if hasattr(generator, "generate") else generator

    def generate(msgs: list[dict[str, str]]) -> str:
        return call(msgs, max_new_tokens=max_new_tokens)

    raw, text, reason, invented = generate_checked(generate, messages, checker, allowed)
    if text is None:
        return Explanation(fallback, "fallback", influences, evidence, raw, reason, invented)
    return Explanation(text, "generated", influences, evidence, raw)


__all__ = [
    "DEFAULT_WINDOW",
    "Explanation",
    "Generator",
    "TitleCheck",
    "TitleChecker",
    "build_evidence",
    "co_watched",
    "drop_one_influence",
    "explain_item",
    "explain_messages",
    "fallback_text",
    "positive_influencers",
    "top_influencers",
]
