"""A simulated person who wants one film, for measuring conversations end to end (issue 28).

The person holds a target (the held-out item of a real user) and that user's real history (warm)
or none (cold). They open with a request built from TRUE facts about the target (one genre or a
mood word for it, its decade, "something like <a history film co-watched with the target>"), then
react to each list: the target in the top 10 ends the conversation; otherwise they correct a
misread ("no, I said no horror"), add one more true fact, leave out a series shown twice ("not
another Star Trek"), or reject shown films ("not X", "seen X already", "seen the 2nd one", a thumbs down).

Pure and deterministic per seed (stdlib + numpy; no model). The phrasing is this module's own,
with paraphrase, typos and case variation, written apart from tests/data/chat_messages.yaml so the
parser is not graded on its own table; the person never writes the target's title::

    cowatch = CoWatch.from_split(split, len(catalog))
    person = make_person(user, target, history, catalog, cowatch)
    talk = SimulatedPerson(person, catalog, seed=0)
    said = talk.opening()                       # Utterance: message, feedback clicks, facts
    said = talk.react(shown_ids)                # None once the target is in the top 10
    talk.broken(item_id)                        # what a shown card breaks of what was said
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recommender.data import Catalog, Item
from recommender.data.titles import fold, title_keys

SUCCESS_AT = 10  # the target in this many top cards is success
MIN_COWATCH = 3  # a "something like" seed was watched with the target by at least this many train users
MAX_SEEDS = 3  # the most recent history films co-watched with the target the person may name
ERAS = {  # era word -> (true of the target, clearly broken by a card): (year, catalogue's newest year)
    "recent": (lambda y, n: y >= n - 2, lambda y, n: y < n - 6),
    "old": (lambda y, n: y <= n - 30, lambda y, n: y > n - 15),
    "not_old": (lambda y, n: y >= n - 10, lambda y, n: y < n - 30),
}
# The person's own words. Genre nouns are firm requests; moods are looser (checked as no constraint).
NOUNS = {"Action": ["an action movie", "action films", "some action"],
         "Adventure": ["an adventure", "adventure movies"], "Animation": ["an animated movie", "animation"],
         "Children's": ["a kids film", "a family movie"],
         "Comedy": ["a comedy", "comedies", "a comedy film"], "Crime": ["a crime movie", "crime films"],
         "Documentary": ["a documentary", "documentaries"], "Drama": ["a drama", "dramas", "a drama film"],
         "Fantasy": ["fantasy", "a fantasy film"], "Film-Noir": ["film noir", "a noir"],
         "Horror": ["a horror film", "horror"], "Musical": ["a musical", "musicals"],
         "Mystery": ["a mystery", "a whodunnit"], "Romance": ["a romance", "a love story"],
         "Sci-Fi": ["sci-fi", "science fiction", "a scifi movie"], "Thriller": ["a thriller", "thrillers"],
         "War": ["a war movie", "a war film"], "Western": ["a western", "westerns"]}  # fmt: skip
MOODS = {"Comedy": ["something funny", "something to make me laugh", "a light hearted one"],
         "Horror": ["something scary", "something creepy"], "Thriller": ["something suspenseful", "a nail biter"],
         "Romance": ["something romantic"], "Drama": ["something moving", "something emotional"],
         "Children's": ["something for the kids"], "Action": ["something action packed", "something exciting"],
         "Fantasy": ["something magical"], "Mystery": ["something mysterious"], "Sci-Fi": ["something futuristic"],
         "Adventure": ["something adventurous"]}  # fmt: skip
NOT_GENRE = ["no {plural}", "no {plural} please", "nothing {plural}", "not {noun}", "i don't want {noun}",
             "skip the {plural}", "no more {plural}"]  # fmt: skip
PLURALS = {"Children's": "kids films", "Film-Noir": "noir", "Sci-Fi": "sci-fi", "Animation": "animated films",
           "Documentary": "documentaries", "Comedy": "comedies", "Mystery": "mysteries", "Fantasy": "fantasy films",
           "War": "war films", "Action": "action films"}  # fmt: skip
DECADES = ["from the {yy}s", "something from the {yyyy}s", "a {yy}s film", "made in the {yyyy}s", "{yy}s please",
           "from the {word}", "one from the {yy}'s"]  # fmt: skip
DECADE_WORDS = {1920: "twenties", 1930: "thirties", 1940: "forties", 1950: "fifties", 1960: "sixties",
                1970: "seventies", 1980: "eighties", 1990: "nineties"}  # fmt: skip
ERA_WORDS = {"recent": ["something recent", "a newer one", "one of the latest"],
             "old": ["an old classic", "something older", "a real oldie"],
             "not_old": ["nothing too old", "not an old film", "fairly modern please"]}  # fmt: skip
LIKES = ["something like {title}", "i loved {title}", "more like {title}", "similar to {title}",
         "i really enjoyed {title}", "in the vein of {title}"]  # fmt: skip
REJECT_TEXT = {"exclude": ["not {title}", "nah, not {title}", "anything but {title}"],
               "seen": ["seen {title} already", "i've already seen {title}", "watched {title} before"],
               "dislike": ["{title} was boring", "i didn't like {title}", "hated {title}"]}  # fmt: skip
# The same rejections said by pointing at the card ("the 2nd one"): as many phrases, so the draws match.
REJECT_POINTING = {
    "exclude": ["not the {nth} one", "skip #{n}", "anything but the {nth} one"],
    "seen": ["seen the {nth} one already", "i've already seen #{n}", "watched the {nth} one before"],
    "dislike": ["the {nth} one looks boring", "i didn't like the {nth} one", "not a fan of #{n}"],
}
NTH = ["first", "second", "third", "fourth", "fifth", "6th", "7th", "8th", "9th", "10th"]
AFTER_CLICKS = ["something else", "other ones please", "show me different ones", "more", "next please"]
FRANCHISE = ["not another {frag}", "no more {frag} please", "enough with {frag}", "no {frag} movies"]
CORRECT = ["no, i said {fact}", "i asked for {fact}", "{fact}, remember?", "again: {fact}"]
PREFIXES = ["hey", "hmm", "ok", "so", "well", "hi!", "um", "right,", "ok so"]
SUFFIXES = ["please", "thanks", "pls", "if you can", "?", "!", "thx"]
STOP = {"who", "and", "the", "for", "from", "with", "you", "your", "man", "men", "its", "all", "not", "our", "her",
        "his"}  # fmt: skip
KEEP_EXACT = {"not", "no", "nothing", "don't", "didn't", "anything", "but", "without", "never", "more", "another"}


@dataclass(frozen=True)
class Fact:
    """One true thing about the target the person may say."""

    kind: str  # "genre", "decade", "era", "not_genre", "like" or "not_fragment"
    value: str | int  # a genre, the decade's first year, an era word, an item id or a folded title fragment
    cowatched: int = 0  # "like": train users who watched both this film and the target

    def holds(self, item: Item, newest: int, lenient: bool = False) -> bool:
        """Whether the fact is true of ``item``; ``lenient`` reads vague eras generously (for cards)."""
        year = item.year
        if self.kind == "genre":
            return self.value in item.genres
        if self.kind == "not_genre":
            return self.value not in item.genres
        if self.kind == "decade":
            return year is not None and int(self.value) <= year <= int(self.value) + 9
        if self.kind == "era":
            true_of, broken_by = ERAS[str(self.value)]
            return year is not None and (not broken_by(year, newest) if lenient else true_of(year, newest))
        if self.kind == "not_fragment":
            return f" {self.value} " not in f" {fold(item.title)} "
        return True  # "like": a seed, no constraint on the cards


@dataclass(frozen=True)
class Person:
    """Who is talking: a real user's held-out target and history (empty when cold), and true facts."""

    user: str
    target: str
    history: tuple[str, ...]
    facts: tuple[Fact, ...]

    @property
    def warm(self) -> bool:
        return bool(self.history)


@dataclass(frozen=True)
class Utterance:
    """What the person does in one turn: feedback clicks on cards, then a message."""

    message: str
    feedback: tuple[tuple[str, str], ...] = ()  # (item id, "like" / "dislike" / "seen") clicked before it
    facts: tuple[Fact, ...] = ()  # true facts the message states
    kind: str = "opening"  # "opening", "fact", "correct", "franchise", "reject" or "more"


class CoWatch:
    """Which train users watched each item: for "something like" seeds that go with the target."""

    def __init__(self, indptr: np.ndarray, items: np.ndarray, n_items: int):
        users = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))  # [T] user code of each train event
        order = np.lexsort((users, items))
        self.starts = np.searchsorted(items[order], np.arange(n_items + 1))  # [N + 1]
        self.users = users[order]  # [T] user codes, grouped by item

    @classmethod
    def from_split(cls, split, n_items: int) -> CoWatch:
        """From a ``LeaveOneOutSplit``'s training events (never a validation or test event)."""
        indptr, items = split.train_csr()
        return cls(np.asarray(indptr), np.asarray(items), n_items)

    def watchers(self, row: int) -> np.ndarray:
        return self.users[self.starts[row] : self.starts[row + 1]]

    def count(self, row_a: int, row_b: int) -> int:
        """Train users who watched both items."""
        return len(np.intersect1d(self.watchers(row_a), self.watchers(row_b), assume_unique=False))


def _names_target(text: str, target: Item) -> bool:
    """True when ``text`` holds a form of the target's title (two words or more, or one of 4+ letters)."""
    folded = f" {fold(text)} "
    keys = title_keys(re.sub(r"\s*\((?:18|19|20)\d\d\)\s*$", "", target.title))
    return any(f" {key} " in folded for key in keys if len(key.split()) > 1 or len(key) >= 4)


def make_person(
    user: str, target: str, history: Sequence[str], catalog: Catalog, cowatch: CoWatch | None, warm: bool = True
) -> Person:
    """The person for ``user``: every true fact about ``target`` the templates can say.

    Args:
        history: the user's items before the target, oldest first (dropped when ``warm`` is False).
        cowatch: train co-watching, for "something like" seeds (None: no seeds).
    """
    item = catalog[target]
    facts = [Fact("genre", g) for g in item.genres if g in NOUNS]
    newest = int(catalog.years.max())
    if item.year:
        facts.append(Fact("decade", item.year // 10 * 10))
        facts += [Fact("era", era) for era, (true_of, _) in ERAS.items() if true_of(item.year, newest)]
    history = tuple(history) if warm else ()
    if history and cowatch is not None:
        row = catalog.row(target)
        for h in dict.fromkeys(reversed(history)):  # the most recent first, as a person remembers them
            count = cowatch.count(row, catalog.row(h)) if h in catalog else 0
            if count >= MIN_COWATCH and not _names_target(catalog[h].title, item):
                facts.append(Fact("like", h, count))
            if sum(fact.kind == "like" for fact in facts) == MAX_SEEDS:
                break
    return Person(str(user), target, history, tuple(facts))


class SimulatedPerson:
    """One person's side of a conversation; seeded, so the same seed says the same things."""

    def __init__(self, person: Person, catalog: Catalog, seed: int = 0):
        self.person, self.catalog = person, catalog
        self.target = catalog[person.target]
        self.newest = int(catalog.years.max())
        self.rng = random.Random(f"{seed}:{person.user}:{person.target}")
        self.unsaid = list(person.facts)
        self.rng.shuffle(self.unsaid)
        self.firm: list[Fact] = []  # stated as constraints: decades, exclusions
        self.genre: Fact | None = None  # the genre named last, when named as a genre (not a mood)
        self.rejected: set[str] = set()  # cards the person turned down
        self.corrected: dict[Fact, int] = {}  # how often each fact was restated
        self.spoken: list[str] = []  # titles written in the message being composed (no typos there)
        self.series_titles = {fold(title) for title in catalog.titles}

    # -- what the person says ------------------------------------------------------------------

    def opening(self) -> Utterance:
        """The first request: a genre (or mood), plus a decade or a co-watched seed."""
        kinds = [k for k in ("like", "genre") if self._has(k)] if self.person.warm else ["genre"]
        kinds = kinds[:1] if self.person.warm and self.rng.random() < 0.4 else kinds
        if not self.person.warm and self.rng.random() < 0.6:
            kinds.append("decade")
        facts = [self._take(kind) for kind in kinds]
        facts = [f for f in facts if f is not None] or [f for f in [self._take_any()] if f is not None]
        return Utterance(self._compose([self._say(fact) for fact in facts]), (), tuple(facts), "opening")

    def react(self, shown: Sequence[str]) -> Utterance | None:
        """The next turn after the list ``shown`` (item ids, best first); None when it holds the target."""
        if self.person.target in list(shown)[:SUCCESS_AT]:
            return None
        for item_id in shown:  # a misread first: restate what a card broke (twice at most per fact)
            broken = [f for f in self.broken(item_id) if f.kind != "rejected" and self.corrected.get(f, 0) < 2]
            if broken:
                fact = broken[0]
                self.corrected[fact] = self.corrected.get(fact, 0) + 1
                phrase = self.rng.choice(CORRECT).format(fact=self._say(fact, firm_only=True))
                return Utterance(self._compose([phrase]), (), (fact,), "correct")
        fragment = self._series(shown)
        roll = self.rng.random()
        if fragment and roll < 0.5:
            fact = Fact("not_fragment", fragment)
            self.firm.append(fact)
            phrase = self.rng.choice(FRANCHISE).format(frag=fragment)
            self.spoken.append(fragment)
            return Utterance(self._compose([phrase]), (), (fact,), "franchise")
        if self.unsaid and roll < 0.75:
            fact = self._take_any()
            assert fact is not None
            return Utterance(self._compose([self._say(fact)]), (), (fact,), "fact")
        return self._reject(shown)

    def broken(self, item_id: str) -> list[Fact]:
        """What a shown card breaks of what the person firmly said (a rejected card shown again too)."""
        item = self.catalog[item_id]
        out = [fact for fact in self.firm if not fact.holds(item, self.newest, True)]
        if self.genre is not None and not self.genre.holds(item, self.newest):
            out.append(self.genre)  # the genre named last, as a genre (a mood or a later genre replaces it)
        if item_id in self.rejected:
            out.append(Fact("rejected", item_id))
        return out

    # -- helpers ---------------------------------------------------------------------------------

    def _has(self, kind: str) -> bool:
        return any(fact.kind == kind for fact in self.unsaid)

    def _take(self, kind: str) -> Fact | None:
        for fact in self.unsaid:
            if fact.kind == kind:
                self.unsaid.remove(fact)
                return fact
        return None

    def _take_any(self) -> Fact | None:
        if self.target.genres and self.rng.random() < 0.3:  # now and then a genre the target lacks
            lacks = sorted(g for g in NOUNS if g not in self.target.genres)
            if lacks:
                return Fact("not_genre", self.rng.choice(lacks))
        return self.unsaid.pop(0) if self.unsaid else None

    def _say(self, fact: Fact, firm_only: bool = False) -> str:
        """The fact in the person's words; a firm statement is recorded as a constraint to check."""
        rng, value = self.rng, fact.value
        if fact.kind == "genre":
            mood = str(value) in MOODS and not firm_only and rng.random() < 0.4
            self.genre = None if mood else fact
            return rng.choice(MOODS[str(value)] if mood else NOUNS[str(value)])
        if fact.kind != "like" and fact.kind != "era" and fact not in self.firm:
            self.firm.append(fact)
        if fact.kind == "not_genre":
            plural = PLURALS.get(str(value), str(value).lower() + "s")
            return rng.choice(NOT_GENRE).format(plural=plural, noun=rng.choice(NOUNS[str(value)]))
        if fact.kind == "decade":
            year = int(value)
            word = DECADE_WORDS.get(year, f"{year}s")
            template = rng.choice(DECADES if year in DECADE_WORDS else DECADES[:5])
            return template.format(yy=f"{year % 100:02d}", yyyy=year, word=word)
        if fact.kind == "era":
            return rng.choice(ERA_WORDS[str(value)])
        if fact.kind == "not_fragment":
            self.spoken.append(str(value))
            return f"no {value}"
        return rng.choice(LIKES).format(title=self._title(str(value)))

    def _title(self, item_id: str) -> str:
        """A title as people type it: no year, the article in front, often lower case."""
        title = re.sub(r"\s*\((?:18|19|20)\d\d\)\s*$", "", self.catalog[item_id].title)
        title = re.sub(r"\s*\([^()]*\)\s*$", "", title)  # "Seven (Se7en)" -> "Seven"
        moved = re.match(r"^(.*), (The|A|An)$", title)
        title = f"{moved.group(2)} {moved.group(1)}" if moved else title
        title = title.lower() if self.rng.random() < 0.4 else title
        self.spoken.append(title)
        return title

    def _series(self, shown: Sequence[str]) -> str:
        """A title fragment two or more shown cards share and the target's title lacks ("star trek")."""
        starts: dict[str, int] = {}
        for item_id in shown:
            words = fold(self.catalog[item_id].title).split()
            for n in (2, 1):  # two name-like words ("star trek"), or one that is a film's whole title ("batman")
                start = " ".join(words[:n])
                named = all(len(w) >= 3 and w not in STOP for w in words[:n])
                if len(words) > n and named and (n == 2 or start in self.series_titles):
                    starts[start] = starts.get(start, 0) + 1
        said = {fact.value for fact in self.firm if fact.kind == "not_fragment"}
        for start, count in sorted(starts.items(), key=lambda pair: (-len(pair[0]), pair[0])):
            if count >= 2 and start not in said and Fact("not_fragment", start).holds(self.target, self.newest):
                if not _names_target(start, self.target) and start.split()[0] not in {"the", "a", "an"}:
                    return start
        return ""

    def _reject(self, shown: Sequence[str]) -> Utterance:
        """Turn down one or two shown films, by text or by a click on the card."""
        candidates = [i for i in list(shown)[:SUCCESS_AT] if not _names_target(self.catalog[i].title, self.target)]
        if not candidates:
            return Utterance(self._compose([self.rng.choice(AFTER_CLICKS)]), (), (), "more")
        picks = self.rng.sample(candidates, k=min(len(candidates), self.rng.choice((1, 1, 2))))
        action = self.rng.choice(("exclude", "seen", "dislike"))
        way = self.rng.random()
        if way < 0.5:  # clicks: the buttons on the cards, then "something else"
            self.rejected.update(picks)
            clicks = tuple((item_id, "dislike" if action == "exclude" else action) for item_id in picks)
            return Utterance(self._compose([self.rng.choice(AFTER_CLICKS)]), clicks, (), "reject")
        self.rejected.add(picks[0])  # in words: one film, by its title or by where its card is
        at = list(shown).index(picks[0])
        if way < 0.75 or at >= len(NTH):
            phrase = self.rng.choice(REJECT_TEXT[action]).format(title=self._title(picks[0]))
        else:
            phrase = self.rng.choice(REJECT_POINTING[action]).format(nth=NTH[at], n=at + 1)
        return Utterance(self._compose([phrase]), (), (), "reject")

    def _compose(self, parts: list[str]) -> str:
        """Join the parts as a person types: fillers, one typo now and then, varied case. A part that
        would name the target (a template word that is its title: "a kids film" for "Kids") is dropped."""
        rng = self.rng
        parts = [self._typo(part) if rng.random() < 0.2 else part for part in parts]
        parts = [part for part in parts if not _names_target(part, self.target)] or ["something else"]
        self.spoken = []
        text = (", " if rng.random() < 0.6 else " and ").join(parts)
        if rng.random() < 0.25:
            text = f"{rng.choice(PREFIXES)} {text}"
        if rng.random() < 0.25:
            suffix = rng.choice(SUFFIXES)
            text = text + suffix if suffix in "?!" else f"{text} {suffix}"
        case = rng.random()
        text = text.upper() if case < 0.04 else text[:1].upper() + text[1:] if case < 0.4 else text
        return text if not _names_target(text, self.target) else "something else"

    def _typo(self, part: str) -> str:
        """One slip in one longer template word (never in a title the part names, nor a negation)."""
        spans = [(m.start(), m.end()) for t in self.spoken for m in re.finditer(re.escape(t), part)]
        words = [
            m
            for m in re.finditer(r"[a-z]{5,}", part)
            if m.group() not in KEEP_EXACT and not any(a < m.end() and m.start() < b for a, b in spans)
        ]
        if not words:
            return part
        word = self.rng.choice(words)
        w, i = word.group(), self.rng.randrange(1, len(word.group()) - 1)
        slip = self.rng.choice((w[:i] + w[i + 1] + w[i] + w[i + 2 :], w[:i] + w[i + 1 :], w[:i] + w[i] + w[i:]))
        return part[: word.start()] + slip + part[word.end() :]
