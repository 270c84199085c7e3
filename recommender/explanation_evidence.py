"""What an explanation may say, and the sentence that says it. Pure: numpy and the catalogue.

    sources = EvidenceSources(catalog, cowatch=CowatchCounts.from_split(split), knowledge=None)
    evidence = build_evidence(sources, history, item, influences=[(3, 0.041)], no_effect=[(4, 0.002)], threshold=0.012)
    because_sentence(evidence)
    # "Because you watched Fargo (1996), you may like Pulp Fiction (1994): both are crime films from
    #  the 1990s, and 120 of the 280 people who watched Fargo (1996) also watched it."

Evidence names the MEASURED influences (history items whose drop-one effect on the served score
is above its threshold, ``recommender.influence``) and, for each of them, the links that connect it
to the recommended item. Every link is checkable: genres and years against the catalogue, co-watching
counts against the interaction logs the retriever was fitted on (the train split), knowledge-graph
relations (sequel, director, writer, cast) against the dataset's knowledge graph. A link kind is one
function ``(sources, past, item) -> list[dict]`` in ``LINK_FINDERS``; the graph's kind reads
``Dataset.knowledge.relations_between(row_a, row_b)`` and adds nothing for a dataset without one.

``because_sentence`` is the one sentence builder: the fallback of ``explain_item`` at serving time and
the target of the ``explain`` task in fine-tuning (``finetune/examples.py``) are both written by it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recommender.data import Catalog, Item
from recommender.data.titles import readable_title

MAX_NAMED = 2  # influences a sentence names ("Because you watched A and B, ...")
MAX_INFLUENCES = 3  # influences handed to the explanation prompt and the evidence
GROUP_SIZES = (2, 3)  # films a group influence may hold: named together, so a sentence can still say them
# Link groups tested per request when no single film passes its floor: each test is one more chance of a
# lucky pass (p <= GROUP_TESTS / 10 with 5 shown films). 1, the co-watched pair: on 36 validation users it
# was measured for 3 of the 18 without a single influence (3 of 8 in one sample, 0 of 10 in the other); a
# second group (genre, decade) added none.
GROUP_TESTS = 1
GROUP_NULL_SETS = 9  # other same-size sets of shown films removed: the permutation null (p <= 1/10)
GROUP_NULL_MIN = 4  # a group with fewer null sets than this is never called an influence
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


def link_groups(
    sources: EvidenceSources, history: Sequence[Item], positions: Sequence[int], item: Item
) -> list[dict[str, Any]]:
    """Groups of shown history films that share one checkable link with ``item``, in a fixed order
    that reads no measured effect (so testing the first is no pick of the luckiest): the 2 shown films
    whose viewers most often also watched ``item`` (co-watching share, the logs), each genre of
    ``item`` (catalogue order), its decade, then each graph relation. A group holds 2 or 3 films (the
    most recent when more share the link) and never every shown film (no other group of its size
    would be left to compare with); the same films are listed once. Co-watching comes first: on 16
    validation users its pair was the top drop among the 10 pairs of shown films for 38% (the first
    genre group 18%, decade 25%; 10% by chance); the ranking prompt shows co-watching counts.

    Returns:
        ``{"positions": [...], "link": {...}}`` per group, ``link`` as ``LINK_FINDERS`` write it.
    """
    positions = [int(p) for p in positions]
    keyed: dict[str, tuple[dict[str, Any], list[int]]] = {}
    for position in sorted(positions, reverse=True):  # most recent first
        past = history[position]
        links = genre_links(sources, past, item) + era_links(sources, past, item) + knowledge_links(sources, past, item)
        for link in links:
            parts = [{**link, "genres": [g]} for g in link["genres"]] if link["kind"] == "genre" else [link]
            for part in parts:
                key = f"{part['kind']}:{part.get('genres', part.get('decade', part.get('relation')))}"
                keyed.setdefault(key, ({k: v for k, v in part.items() if k != "count"}, []))[1].append(position)
    order = [f"genre:{[g]}" for g in item.genres] + [f"era:{decade(item.year)}"]
    keys = [k for k in order if k in keyed] + sorted(k for k in keyed if k not in order)
    groups, seen = [], set()
    cowatched = _most_cowatched(sources, history, positions, item)
    if len(cowatched) == min(GROUP_SIZES) and len(positions) > len(cowatched):
        source = getattr(sources.cowatch, "source", "interaction logs")
        groups.append({"positions": cowatched, "link": {"kind": "cowatch", "source": source}})
        seen.add(tuple(cowatched))
    for key in keys:
        link, members = keyed[key]
        members = sorted(members[: max(GROUP_SIZES)])
        if len(members) < min(GROUP_SIZES) or len(members) >= len(positions) or tuple(members) in seen:
            continue
        seen.add(tuple(members))
        groups.append({"positions": members, "link": link})
    return groups


@dataclass(frozen=True)
class GroupInfluence:
    """The joint effect of removing shown films that share one link with the item, against removing
    every other set of as many shown films (the null) and the swap floor (``threshold``)."""

    positions: tuple[int, ...]  # history positions of the group, oldest first
    link: dict[str, Any]  # what they share with the item (``explanation_evidence.link_groups``)
    effect: float  # score(H) - score(H without the group)
    null: tuple[float, ...]  # the same change for the other sets of len(positions) shown films
    floor: float  # the item's swap floor (``InfluenceTable.floor``)

    @property
    def threshold(self) -> float:
        """The group's own floor: the largest drop of the null and the swap floor. A permutation test:
        removing the group must lower the score more than removing any other set of as many shown
        films (p <= 1 / (len(null) + 1) when no film matters), and by more than reordering does."""
        return max([self.floor, *self.null])

    @property
    def measured(self) -> bool:
        """Raised the score beyond its floor, with at least ``GROUP_NULL_MIN`` null sets to compare."""
        return len(self.null) >= GROUP_NULL_MIN and self.effect > self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {"positions": list(self.positions), "link": self.link, "effect": self.effect,
                "null": list(self.null), "floor": self.floor, "threshold": self.threshold,
                "measured": self.measured}  # fmt: skip


def group_influence(
    score: Callable[[list[np.ndarray]], list[float]],
    history: np.ndarray,
    positions: Sequence[int],
    groups: Sequence[dict[str, Any]],
    base: float,
    floor: float,
    tests: int = GROUP_TESTS,
    null_sets: int = GROUP_NULL_SETS,
) -> GroupInfluence | None:
    """Test the first ``tests`` link groups (``explanation_evidence.link_groups``: a fixed order that
    reads no effect) in one ``score`` call: the first measured one, else the first tested (None when
    none was: check ``measured``).

    Args:
        score: histories -> the item's score under each (the served prompt, candidates fixed).
        history: [H] catalogue rows, oldest first.
        positions: the shown (ablated) positions; null sets are drawn among them.
        groups: candidate groups, ``{"positions": [...], "link": {...}}``.
        base: the item's score with the whole history.
        floor: the item's swap floor.
        tests: groups tested at most (each one more chance of a lucky pass).
        null_sets: other same-size sets removed per size: all of them when there are no more
            (5 shown films: 9 for 2 or 3), else the first ``null_sets`` in a fixed order.
    """
    history = np.asarray(history, dtype=np.int64)
    chosen = [tuple(int(p) for p in g["positions"]) for g in groups[:tests]]
    if not chosen or not np.isfinite(floor):
        return None
    nulls = {
        size: [c for c in itertools.combinations(sorted(int(p) for p in positions), size)][: null_sets + tests]
        for size in {len(c) for c in chosen}
    }
    sets = list(dict.fromkeys(chosen + [c for size in nulls for c in nulls[size]]))
    drops = dict(zip(sets, base - np.asarray(score([np.delete(history, list(c)) for c in sets]), dtype=np.float64)))
    found = []
    for group, candidate in zip(chosen, groups):
        null = tuple(float(drops[c]) for c in nulls[len(group)] if c != group)[:null_sets]
        found.append(GroupInfluence(group, dict(candidate["link"]), float(drops[group]), null, float(floor)))
    return next((g for g in found if g.measured), found[0])


def _most_cowatched(sources: EvidenceSources, history: Sequence[Item], positions: list[int], item: Item) -> list[int]:
    """The (at most 2) shown positions whose viewers most often also watched ``item``, oldest first;
    only films with co-watching in the logs (ties: the more recent)."""
    if sources.cowatch is None:
        return []
    row = sources.catalog.index[item.id]
    share = {}
    for p in positions:
        past = sources.catalog.index[history[p].id]
        both = sources.cowatch.both(past, row)
        if both > 0:
            share[p] = both / max(1, sources.cowatch.watched(past))
    return sorted(sorted(share, key=lambda p: (-share[p], -p))[: min(GROUP_SIZES)])


def _film(item: Item) -> dict[str, Any]:
    return {"id": item.id, "title": readable_title(item), "year": item.year, "genres": list(item.genres)}


def build_evidence(
    sources: EvidenceSources,
    history: Sequence[Item],
    item: Item,
    influences: Sequence[tuple[int, float]],
    no_effect: Sequence[tuple[int, float]] = (),
    threshold: float | np.ndarray | None = None,
    lowered: Sequence[tuple[int, float]] = (),
    group: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Facts an explanation may use, as plain data (JSON-able).

    Args:
        sources: catalogue, co-watching counts, knowledge graph.
        history: the user's history, oldest first.
        item: the recommended item.
        influences: (history position, effect) of the measured influences that RAISED the item's
            score, strongest first (``explain.split_measured``); at most ``MAX_INFLUENCES`` are kept.
        no_effect: (position, effect) of measured items within their threshold.
        threshold: what each effect was compared with: one for all or [H] per history position.
        lowered: (position, effect) of measured items that lowered the score beyond their threshold.
        group: a measured group influence (``explain.GroupInfluence.to_dict()``); then ``influences``
            are its members with their own (unmeasurable) effects, named together or not at all.
    """
    bar = np.broadcast_to(np.asarray(np.nan if threshold is None else threshold, dtype=np.float64), (len(history),))

    def measured(position: int, value: float) -> dict[str, Any]:
        limit = float(bar[position])
        return {"influence": float(value), "threshold": limit if np.isfinite(limit) else None}

    entries = []
    for position, value in list(influences)[:MAX_INFLUENCES]:
        past = history[position]
        links = [link for find in LINK_FINDERS for link in find(sources, past, item)]
        entry = {**_film(past), **measured(position, value), "links": links}
        entries.append(entry | ({"group": True} if group else {}))
    if group is not None:
        group = {**group, "ids": [e["id"] for e in entries], "titles": [e["title"] for e in entries]}
    return {
        "item": _film(item),
        "influences": entries,
        "group": group,
        "lowered": [{**_film(history[p]), **measured(p, v)} for p, v in lowered],
        "no_effect": [
            {"id": history[p].id, "title": history[p].display_title(), **measured(p, v)} for p, v in no_effect
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
    names = _join([e["title"] for e in entries])
    lines = [f"Films you watched that raised the score of {title}: {names}."]
    if entries[0].get("group"):
        lines = [f"Together, {names} raised the score of {title}; none did measurably on its own."]
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
    named = [entry["title"] for entry in named_influences(evidence)]
    return f"Because you watched {_join(named)}, you may like {evidence['item']['title']}" if named else ""


def named_influences(evidence: dict[str, Any]) -> list[dict[str, Any]]:
    """The influences a sentence names: the strongest ``MAX_NAMED``, or every member of a group."""
    entries = evidence["influences"]
    return list(entries) if evidence.get("group") else list(entries[:MAX_NAMED])


def _common(entries: Sequence[dict[str, Any]], item: dict[str, Any]) -> tuple[list[str], str]:
    """Genres and the decade that the item and every named influence share."""
    genres = [g for g in item["genres"] if all(g in e["genres"] for e in entries) and g.lower() != "unknown"]
    era = decade(item["year"])
    same_era = era and all(decade(e["year"]) == era for e in entries)
    return genres, era if same_era else ""


def item_sentence(evidence: dict[str, Any]) -> str:
    """ "You may like Heat (1995), an action, crime and thriller film from the 1990s": the item's own
    facts, nothing about the history (no full stop)."""
    item = evidence["item"]
    described, era = [g for g in item["genres"] if g.lower() != "unknown"], decade(item["year"])
    about = ", " + genre_phrase(described) if described else ""
    about += f" from the {era}" if era and about else (f", from the {era}" if era else "")
    return f"You may like {item['title']}{about}"


def because_sentence(evidence: dict[str, Any]) -> str:
    """One true second-person sentence from ``evidence`` alone: the measured influences it names,
    the genres and decade they share with the item, co-watching counts and graph relations. It never
    says the person saw the recommended film and names no film outside the history and the item."""
    named = named_influences(evidence)
    if not named:
        return (
            f"{item_sentence(evidence)}; none of your recent films moved its score measurably "
            "on its own, so it reflects your history as a whole."
        )
    item = evidence["item"]
    clauses = []
    genres, era = _common(named, item)
    if genres or era:
        subject = {1: "both are", 2: "all three are"}.get(len(named), "all four are")
        what = genre_phrase(genres, plural=True) if genres else "films"
        clauses.append(f"{subject} {what}" + (f" from the {era}" if era else ""))
    else:
        for entry in named:
            shared = next((link["genres"] for link in entry["links"] if link["kind"] == "genre"), None)
            if shared:
                clauses.append(f"it is {genre_phrase(shared)} like {entry['title']}")
    every = (evidence.get("group") or {}).get("link", {}).get("kind") == "cowatch"  # the group's link: say it all
    for entry in named:
        cowatch = next((link for link in entry["links"] if link["kind"] == "cowatch"), None)
        if cowatch:
            clauses.append(link_text(cowatch, entry["title"]))
            if not every:
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
    "GROUP_NULL_MIN",
    "GROUP_NULL_SETS",
    "GROUP_SIZES",
    "GROUP_TESTS",
    "GroupInfluence",
    "CowatchCounts",
    "EvidenceSources",
    "because_prefix",
    "because_sentence",
    "item_sentence",
    "build_evidence",
    "cowatch_links",
    "decade",
    "era_links",
    "evidence_lines",
    "genre_links",
    "genre_phrase",
    "group_influence",
    "knowledge_links",
    "link_groups",
    "named_influences",
    "readable_title",
]
