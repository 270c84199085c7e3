"""What an explanation may say, and the sentence that says it. Pure: numpy and the catalogue.

    sources = EvidenceSources(catalog, cowatch=CowatchCounts.from_split(split), knowledge=None)
    evidence = build_evidence(sources, history, item, influences=[(3, 0.041)], no_effect=[(4, 0.002)], floor=0.012)
    because_sentence(evidence)
    # "Because you watched Fargo (1996), you may like Pulp Fiction (1994): both are crime films from
    #  the 1990s, and 120 of the 280 people who watched Fargo (1996) also watched it."

Evidence names the MEASURED influences (history items whose drop-one effect on the served score
is above the noise floor, ``recommender.explain``) and, for each of them, the links that connect it
to the recommended item. Every link is checkable: genres and years against the catalogue, co-watching
counts against the interaction logs the retriever was fitted on (the train split), knowledge-graph
relations (sequel, director, writer, cast) against the dataset's knowledge graph. A link kind is one
function ``(sources, past, item) -> list[dict]`` in ``LINK_FINDERS``; the graph's kind reads
``Dataset.knowledge.relations_between(row_a, row_b)`` and adds nothing for a dataset without one.

``because_sentence`` is the one sentence builder: the fallback of ``explain_item`` at serving time and
the target of the ``explain`` task in fine-tuning (``finetune/examples.py``) are both written by it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recommender.data import Catalog, Item

MAX_NAMED = 2  # influences a sentence names ("Because you watched A and B, ...")
MAX_INFLUENCES = 3  # influences handed to the explanation prompt and the evidence
# How a genre reads inside a sentence ("crime and thriller films"); others are lower-cased.
GENRE_WORDS = {"Sci-Fi": "sci-fi", "Film-Noir": "film noir", "Animation": "animated", "Children's": "children's"}
# Knowledge-graph relation words (``recommender.data.knowledge.relations_between``) a person cares
# about, and how the sentence says them about the recommended film ("it" / "both"); others (studio,
# language, country, ...) say little and are left out.
RELATION_TEXT = {
    "sequel": "it is a sequel to {title}",
    "prequel": "it is a prequel to {title}",
    "series": "it is in the same series as {title}",
    "director": "it has the same director as {title}",
    "writer": "it has the same writer as {title}",
    "cast": "it shares {cast} with {title}",
}


class CowatchCounts:
    """How many users watched both of two items, from a user -> items log (the train split).

    Args:
        indptr: [U + 1] offsets into ``items`` per user.
        items: [T] catalogue rows the users watched.
        n_items: catalogue size.
        source: where the counts come from, recorded in the evidence ("train split of ml-100k").
    """

    def __init__(self, indptr: np.ndarray, items: np.ndarray, n_items: int, source: str = "interaction logs"):
        indptr = np.asarray(indptr, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        users = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))  # [T] user code of each event
        order = np.lexsort((users, items))
        self._users = users[order]  # [T] users grouped by item, sorted within an item
        self._starts = np.searchsorted(items[order], np.arange(n_items + 1))  # [N + 1]
        self.source = source

    @classmethod
    def from_split(cls, split: Any, n_items: int, name: str = "") -> CowatchCounts:
        """From a ``LeaveOneOutSplit``'s train events (what the co-occurrence retriever is fitted on)."""
        indptr, items = split.train_csr()
        return cls(indptr, items, n_items, f"train split of {name}".strip() if name else "train split")

    def users_of(self, row: int) -> np.ndarray:
        """Sorted user codes who watched ``row``."""
        return self._users[self._starts[row] : self._starts[row + 1]]

    def watched(self, row: int) -> int:
        """Users who watched ``row``."""
        return int(self._starts[row + 1] - self._starts[row])

    def both(self, row_a: int, row_b: int) -> int:
        """Users who watched both ``row_a`` and ``row_b``."""
        return int(len(np.intersect1d(self.users_of(row_a), self.users_of(row_b), assume_unique=True)))


@dataclass(frozen=True)
class EvidenceSources:
    """Where links come from: the catalogue, co-watching counts, and a knowledge graph (optional)."""

    catalog: Catalog
    cowatch: Any = None  # ``CowatchCounts`` or any object with ``both(a, b)`` and ``watched(a)`` on rows
    knowledge: Any = None  # ``Dataset.knowledge``: ``relations_between(row_a, row_b) -> [(word, count)]``


def decade(year: int | None) -> str:
    """ "1990s" for 1996; "" without a year."""
    return f"{year // 10 * 10}s" if year else ""


def genre_links(sources: EvidenceSources, past: Item, item: Item) -> list[dict[str, Any]]:
    """The genres ``past`` shares with ``item`` (catalogue)."""
    shared = [g for g in item.genres if g in past.genres and g.lower() != "unknown"]
    return [{"kind": "genre", "genres": shared, "source": "catalogue"}] if shared else []


def era_links(sources: EvidenceSources, past: Item, item: Item) -> list[dict[str, Any]]:
    """The decade both films came out in (catalogue years)."""
    if past.year and item.year and decade(past.year) == decade(item.year):
        return [{"kind": "era", "decade": decade(item.year), "source": "catalogue"}]
    return []


def cowatch_links(sources: EvidenceSources, past: Item, item: Item) -> list[dict[str, Any]]:
    """How many of the people who watched ``past`` also watched ``item`` (logs)."""
    if sources.cowatch is None:
        return []
    row_past, row_item = sources.catalog.index[past.id], sources.catalog.index[item.id]
    both, watched = sources.cowatch.both(row_past, row_item), sources.cowatch.watched(row_past)
    if both <= 0:
        return []
    source = getattr(sources.cowatch, "source", "interaction logs")
    return [{"kind": "cowatch", "both": both, "watched": watched, "source": source}]


def knowledge_links(sources: EvidenceSources, past: Item, item: Item) -> list[dict[str, Any]]:
    """Sequel, same director, writer or cast, from ``sources.knowledge.relations_between(row_past,
    row_item)`` (``recommender.data.knowledge.KnowledgeGraph``: (word, shared count) pairs, most
    telling first); nothing when the dataset has no graph."""
    relations_between = getattr(sources.knowledge, "relations_between", None)
    if relations_between is None:
        return []
    pairs = relations_between(sources.catalog.index[past.id], sources.catalog.index[item.id]) or ()
    return [
        {"kind": "relation", "relation": str(word), "count": int(count), "source": "knowledge graph"}
        for word, count in pairs
        if word in RELATION_TEXT
    ]


LinkFinder = Callable[[EvidenceSources, Item, Item], list[dict[str, Any]]]
LINK_FINDERS: tuple[LinkFinder, ...] = (genre_links, era_links, cowatch_links, knowledge_links)


_MOVED_ARTICLE = re.compile(r"^(.+), (The|A|An|Il|La|Le|Les|L'|El|Los|Las|Das|Der|Die|Den|Lo)$")


def readable_title(item: Item) -> str:
    """The title as a sentence writes it, with its year: "The Usual Suspects (1995)" for the
    catalogue's "Usual Suspects, The" (``TitleChecker`` reads both)."""
    moved = _MOVED_ARTICLE.match(item.title.strip())
    title = f"{moved.group(2)} {moved.group(1)}" if moved else item.title
    return f"{title} ({item.year})" if item.year else title


def _film(item: Item) -> dict[str, Any]:
    return {"id": item.id, "title": readable_title(item), "year": item.year, "genres": list(item.genres)}


def build_evidence(
    sources: EvidenceSources,
    history: Sequence[Item],
    item: Item,
    influences: Sequence[tuple[int, float]],
    no_effect: Sequence[tuple[int, float]] = (),
    floor: float | None = None,
    lowered: Sequence[tuple[int, float]] = (),
) -> dict[str, Any]:
    """Facts an explanation may use, as plain data (JSON-able).

    Args:
        sources: catalogue, co-watching counts, knowledge graph.
        history: the user's history, oldest first.
        item: the recommended item.
        influences: (history position, effect) of the measured influences that RAISED the item's
            score, strongest first (``explain.split_measured``); at most ``MAX_INFLUENCES`` are kept.
        no_effect: (position, effect) of measured items within the noise floor.
        floor: the noise floor the effects were compared with.
        lowered: (position, effect) of measured items that lowered the score beyond the floor.
    """
    entries = []
    for position, value in list(influences)[:MAX_INFLUENCES]:
        past = history[position]
        links = [link for find in LINK_FINDERS for link in find(sources, past, item)]
        entries.append({**_film(past), "influence": float(value), "links": links})
    return {
        "item": _film(item),
        "floor": None if floor is None else float(floor),
        "influences": entries,
        "lowered": [{**_film(history[p]), "influence": float(v)} for p, v in lowered],
        "no_effect": [
            {"id": history[p].id, "title": history[p].display_title(), "influence": float(v)} for p, v in no_effect
        ],  # fmt: skip
        "lines": evidence_lines(entries, item),
    }


def link_text(link: dict[str, Any], past_title: str) -> str:
    """One link as a clause about the recommended item ("it" / "both")."""
    if link["kind"] == "genre":
        return f"both are {genre_phrase(link['genres'], plural=True)}"
    if link["kind"] == "era":
        return f"both are from the {link['decade']}"
    if link["kind"] == "cowatch":
        return f"{link['both']} of the {link['watched']} people who watched {past_title} also watched it"
    if link["kind"] == "relation":
        count = int(link.get("count", 1))
        cast = "a cast member" if count <= 1 else f"{count} cast members"
        return RELATION_TEXT[link["relation"]].format(title=past_title, cast=cast)
    raise ValueError(f"unknown link kind {link['kind']!r}")


def evidence_lines(entries: Sequence[dict[str, Any]], item: Item) -> list[str]:
    """Second-person facts for the explanation prompt, one per influence and link."""
    title = readable_title(item)
    if not entries:
        return [f"None of your recent films changed the score of {title} measurably on its own."]
    lines = [f"Films you watched that raised the score of {title}: {_join([e['title'] for e in entries])}."]
    for entry in entries:
        for link in entry["links"]:
            lines.append(f"{entry['title']} and {title}: {link_text(link, entry['title'])}.")
    return lines


def genre_phrase(genres: Sequence[str], plural: bool = False) -> str:
    """ "crime and thriller films" / "an action and sci-fi film"."""
    words = _join([GENRE_WORDS.get(g, g.lower()) for g in genres])
    if plural:
        return f"{words} films"
    return f"{'an' if words[:1] in 'aeiou' else 'a'} {words} film"


def _join(names: Sequence[str]) -> str:
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def because_prefix(evidence: dict[str, Any]) -> str:
    """The sentence's opening, "Because you watched A and B, you may like T" (empty without a
    measured influence): the built sentence starts with it, and generation is prefilled with it so
    the model writes the link."""
    named = [entry["title"] for entry in evidence["influences"][:MAX_NAMED]]
    return f"Because you watched {_join(named)}, you may like {evidence['item']['title']}" if named else ""


def _common(entries: Sequence[dict[str, Any]], item: dict[str, Any]) -> tuple[list[str], str]:
    """Genres and the decade that the item and every named influence share."""
    genres = [g for g in item["genres"] if all(g in e["genres"] for e in entries) and g.lower() != "unknown"]
    era = decade(item["year"])
    same_era = era and all(decade(e["year"]) == era for e in entries)
    return genres, era if same_era else ""


def because_sentence(evidence: dict[str, Any]) -> str:
    """One true second-person sentence from ``evidence`` alone: the measured influences it names,
    the genres and decade they share with the item, co-watching counts and graph relations. It never
    says the person saw the recommended film and names no film outside the history and the item."""
    item = evidence["item"]
    named = evidence["influences"][:MAX_NAMED]
    if not named:
        genres, era = item["genres"], decade(item["year"])
        described = [g for g in genres if g.lower() != "unknown"]
        about = ", " + genre_phrase(described) if described else ""
        about += f" from the {era}" if era and about else (f", from the {era}" if era else "")
        return (
            f"You may like {item['title']}{about}; none of your recent films moved its score measurably "
            "on its own, so it reflects your history as a whole."
        )
    clauses = []
    genres, era = _common(named, item)
    if genres or era:
        subject = "both are" if len(named) == 1 else "all three are"
        what = genre_phrase(genres, plural=True) if genres else "films"
        clauses.append(f"{subject} {what}" + (f" from the {era}" if era else ""))
    else:
        for entry in named:
            shared = next((link["genres"] for link in entry["links"] if link["kind"] == "genre"), None)
            if shared:
                clauses.append(f"it is {genre_phrase(shared)} like {entry['title']}")
    for entry in named:
        cowatch = next((link for link in entry["links"] if link["kind"] == "cowatch"), None)
        if cowatch:
            clauses.append(link_text(cowatch, entry["title"]))
            break
    for entry in named:
        relation = next((link for link in entry["links"] if link["kind"] == "relation"), None)
        if relation:  # the most telling one (the graph lists them so)
            clauses.append(link_text(relation, entry["title"]))
            break
    text = because_prefix(evidence)
    if len(clauses) > 1:
        clauses = [", ".join(clauses[:-1]) + ", and " + clauses[-1]]
    return text + (": " + clauses[0] if clauses else "") + "."


__all__ = [
    "LINK_FINDERS",
    "CowatchCounts",
    "EvidenceSources",
    "because_prefix",
    "because_sentence",
    "build_evidence",
    "cowatch_links",
    "decade",
    "era_links",
    "evidence_lines",
    "genre_links",
    "genre_phrase",
    "knowledge_links",
    "readable_title",
]
