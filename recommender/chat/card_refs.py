"""Films on screen pointed at instead of named: "more like the first one", "I've seen #2 and #4",
"the second one looks good", "seen all of those", "not the last one", "seen it" (one card only).

A reference is read with what the clause says about it, before ("I've seen", "more like", "not") or after
("looks boring", "I've already seen"): the same roles as a title (``title_cues``). ``card_references`` finds
them in the text; ``resolve`` turns positions into the item ids on screen and says, in a sentence, what
could not be resolved (no cards yet, "the sixth" of five, "that one" among several). Pure: the standard
library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from recommender.chat.lexicon import (
    BAD_VERDICTS,
    COUNT_ADJECTIVES,
    COUNT_NOUNS,
    GENRE_MASS_NOUNS,
    GENRE_PLURALS,
    GOOD_VERDICTS,
)
from recommender.chat.text import spoken_number
from recommender.data import Catalog
from recommender.data.titles import TitleMatch, readable_title

MIDDLE = 1000  # "the middle one": the card in the middle of those on screen
_ORDINALS = {"first": 0, "1st": 0, "fist": 0, "top": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3,
             "4th": 3,
             "fifth": 4, "5th": 4, "sixth": 5, "6th": 5, "seventh": 6, "7th": 6, "eighth": 7, "8th": 7, "ninth": 8,
             "9th": 8, "tenth": 9, "10th": 9, "last": -1, "bottom": -1, "final": -1, "penultimate": -2,
             "second to last": -2, "second last": -2, "next to last": -2, "middle": MIDDLE}  # fmt: skip
_NUMBERS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")  # values: spoken_number
_CARD_NOUN = r"(?:one|pick|suggestion|option|result|card|recommendation)"  # not "film": "the last film I saw"
_CARD = _CARD_NOUN + "s?"
_ORD = "|".join(re.escape(o).replace(r"\ ", r"\s+") for o in sorted(_ORDINALS, key=len, reverse=True))
_NUM = r"(?:\d{1,2}|" + "|".join(_NUMBERS) + r")\b"
_AND = r"\s*(?:,|&|\band\b|\bor\b|\bnor\b)\s*"
# "the first one", "the second and the fourth ones", "#2 and #4", "number 3", "the first two", "all of those".
_REFERENCE = re.compile(
    rf"(?P<plural>\bthe\s+(?P<side>first|last|top|bottom)\s+(?P<count>two|three|four|five|[2-5])\b(?:\s+{_CARD})?)|"
    rf"(?P<ords>(?:\bthe\s+)?\b(?:{_ORD})\b(?:{_AND}(?:the\s+)?(?:{_ORD})\b)*(?:\s+{_CARD}\b)?)|"
    rf"(?P<nums>(?:#\s*|\bnumbers?\s+|\bno\.\s*|\bnr\.?\s*|\boptions?\s+){_NUM}(?:{_AND}(?:#\s*|number\s+)?{_NUM})*)|"
    rf"(?P<allbut>\b(?:all(?:\s+of\s+(?:them|these|those))?|everything|every one|any)\s+"
    rf"(?:but|except(?:\s+for)?|apart from|other than|besides)\s+"
    rf"(?P<but>(?:the\s+)?(?:{_ORD})\b(?:{_AND}(?:the\s+)?(?:{_ORD})\b)*(?:\s+{_CARD}\b)?|"
    rf"(?:#\s*|number\s+|no\.\s*)?{_NUM}(?:{_AND}(?:#\s*|number\s+)?{_NUM})*))|"
    r"(?P<all>\ball\s+(?:of\s+)?(?:those|these|them|the above)\b|\b(?:those|these|them)\s+all\b|"
    r"\ball\s+(?:those|these|(?:\d+|three|four|five|six|seven|eight|nine|ten))(?:\s+(?:films|movies|ones|picks))?\b|"
    r"\bboth\s+(?:of\s+)?(?:those|these|them)\b|\bevery\s+(?:one|single one)\b|"
    r"\b(?:everything|all)\s+(?:(?:you|u)\s+(?:just\s+)?(?:showed|have shown|ve shown|suggested|recommended|picked)|"
    r"on (?:the |this )?(?:screen|list|page)|(?:here|so far)\b))|"
    r"(?P<rest>\bthe\s+(?:rest|others|other (?:ones|films|movies)|remaining ones)\b|\ball\s+the\s+others\b)|"
    r"(?P<those>\b(?:any\s+of\s+)?(?:those|these|them|em|both)\b|(?<=\s)'em\b)|"  # with "seen" or a verdict only
    rf"(?P<bare>(?<![#\w])[1-9](?:{_AND}[1-9])*\b)|"
    r"(?P<pronoun>\b(?:that|this)\s+one\b|\b(?:it|that|this)\b(?=\s*(?:already|before|too|again|[,.!?]|$)))",
    re.I,
)
_ROLES_BEFORE = (  # the clause's words just before the reference, folded, in this order
    ("ignored", r"(?:havent|have not|hasnt|never|not yet|didnt|did not|not)\s+(?:\w+\s+)?"
                r"(?:seen|watched|saw|see|watch)"),
    ("seen", r"(?:seen|watched|saw)(?:\s+(?:both|already|before))?"),
    ("ignored", r"(?:dont|didnt|do not|did not)\s+(?:really\s+)?(?:hate|dislike|mind)"),  # "I don't hate #1"
    ("dislike", r"(?:(?:didnt|dont|do not|did not)\s+(?:really\s+|much\s+)?(?:like|love|enjoy|want)|hated?|disliked?|"
                r"not (?:really\s+)?(?:a\s+)?(?:big\s+)?fan of|cant stand|not into|not feeling|not keen on)"),
    ("dislike", r"(?:meh|nah|nope|pass)(?:\s+(?:on|to|for))?|no to|thumbs down(?:\s+(?:on|to|for))?"),
    ("dislike", r"(?:not|never|dont|didnt|do not|did not|wasnt|am not|im not)\s+(?:really\s+|that\s+)?"
                r"(?:interested in|into|keen on|liked?|loved?|enjoyed|a fan of)"),
    ("exclude", r"(?:nothing|no more|not|less|anything but|everything but)\s+(?:\w+\s+)?like|anything but|"
                r"everything but|except(?: for)?|other than|apart from"),
    ("liked", r"\bi\s+(?:really\s+|do\s+|also\s+)?(?:like|love)"),
    ("like", r"(?:more|something|anything|films?|movies?|stuff|ones?|similar)\s+like|similar to|like|"
             r"in the (?:vein|style|spirit) of|along the lines of|closer to|based on"),
    ("exclude", r"(?:not|no|skip|drop|remove|hide|lose|without|except|other than|anything but|nothing like|"
                r"no more of|get rid of|take out|ditch)"),
    ("liked", r"(?:liked?|loved?|enjoyed|adored?|want|pick|choose|take|go with|going with|interested in|"
              r"curious about|excited about|prefer|into)"),
)  # fmt: skip
_BEFORE = [(role, re.compile(rf"(?:^|\b)(?:{cue})\s*$")) for role, cue in _ROLES_BEFORE]
_POLITE = r"(?:please|pls|plz|thanks|thank you|then|already|before|too|\s)*"
_OPENERS = r"(?:(?:ok|okay|hmm|um|so|well|yeah|yes|yep|yup|oh|ah|nice|great|cool|ooh|i think|maybe|then|just)\s+)*"
_LOOK = r"(?:looks?|sounds?|seems?|is|was|are|were|s)\s+(?:so\s+|really\s+|pretty\s+|kinda\s+|very\s+|quite\s+|too\s+)?"
_AFTER = (
    ("seen", re.compile(r"^(?:(?:i|ive|i have|we|weve)\s+)?(?:already\s+|seen\s+already|)(?:seen|watched|saw)\b|"
                        r"^(?:i|ive|i have)\s+(?:already\s+)?(?:seen|watched|saw)\b")),
    ("dislike", re.compile(rf"^(?:{_LOOK})?(?:{'|'.join(BAD_VERDICTS)}|lame|stupid|dumb|silly|cheesy|weird|bleh|bleak|"
                           r"nope|nah|pass|no)\b|^(?:looks?|sounds?|seems?|is|was|s)\s+(?:way\s+)?too\s+(?:long|slow|"
                           r"violent|scary|dark|bleak|sad|depressing|old|weird|boring|silly|cheesy|gory|intense|heavy|"
                           r"much|serious|childish|dated)\b|"
                           r"^(?:isnt|is not|arent|are not|doesnt|does not|dont|wasnt|werent)\s+(?:really\s+)?"
                           r"(?:my thing|for me|look good|sound good|appeal|interest me|do it for me)\b")),
    ("liked", re.compile(rf"^(?:{_LOOK})?(?:{'|'.join(GOOD_VERDICTS)}|interesting|cool|nice|fun|promising|up my alley|"
                         r"decent|solid|watchable|good enough|yes|yep|"
                         r"my thing|exactly what|what i want|it|my (?:all time )?(?:fav|fave|favou?rite))\b")),
)  # fmt: skip
# Where a reference's clause ends; a list of cards ("seen the first, the third and #5") shares its role by
# ``joined`` instead. "anything but the 2nd one" is one clause.
_CLAUSE_BREAK = re.compile(r"[,;.!?\n]|(?<!anything )(?<!everything )(?<!all )\bbut\b|\bthough\b", re.I)
_NEAR = 80  # characters of a clause read before and after a reference (a long message stays linear)
MAX_REFERENCES = 12  # references read per message
_WORD = re.compile(r"\W*[\w'’]+")
_JOINER = re.compile(r"\s*(?:,\s*)?and\b", re.I)  # "seen #3 and I want a comedy"


@dataclass(frozen=True)
class CardRef:
    """Cards pointed at in one clause: what the message says of them and where they are on screen."""

    role: str  # "like" (a seed), "liked", "dislike", "seen", "exclude", or "" (no fact: "what about #2")
    positions: tuple[int, ...] | None  # 0-based, -1 the last; None = every card on screen
    typed: str  # the words that pointed ("the second one"), for a sentence
    start: int  # span in the text, cue words included, to hide from the rest of the parser
    end: int
    pronoun: bool = False  # "seen it", "that one": clear only when one card is on screen
    rest: bool = False  # "the rest": every card the message does not point at otherwise
    but: tuple[int, ...] = ()  # "all but the first": every card on screen except these


def card_references(text: str) -> list[CardRef]:
    """The card references in ``text`` (the cleaned message), in order; [] when it points at none."""
    refs: list[CardRef] = []
    joined_from = 0  # end of the last reference: "the first one and the third one" share its role
    pointed = None  # the positions last pointed at, with a role or not: what a later "it" or "them" means
    for match in _REFERENCE.finditer(text):
        if len(refs) >= MAX_REFERENCES:
            break
        if any(r.start <= match.start() < r.end for r in refs):
            continue
        positions, pronoun = _positions(match), bool(match.group("pronoun"))
        if positions == ():
            continue
        carried = (pronoun or bool(match.group("those"))) and pointed is not None
        if carried:  # "not #3, seen it", "3rd and 4th, seen em", "number one and number four, seen both"
            positions, pronoun = pointed, False
        low = max(0, match.start() - _NEAR)
        clause_start = max((m.end() for m in _CLAUSE_BREAK.finditer(text, low, match.start())), default=low)
        clause_end = next((m.start() for m in _CLAUSE_BREAK.finditer(text, match.end(), match.end() + _NEAR)),
                          min(len(text), match.end() + _NEAR))  # fmt: skip
        before = _fold(text[clause_start : match.start()])
        after = _fold(text[match.end() : clause_end])
        role, cue_start = _role_before(before)
        verdict, verdict_words = _role_after(after)
        joined = refs and re.fullmatch(_AND + r"(?:the\s+)?", text[joined_from : match.start()] or " ", re.I)
        ditto = refs and after in {"too", "as well", "also"}  # "#2 was great, #5 too"
        role = role or verdict or (refs[-1].role if joined or ditto else "")
        if not (role if carried else _plausible(match, role, before, after, verdict)):
            continue
        if match.group("ords") or match.group("nums") or match.group("plural") or match.group("bare"):
            pointed = positions
        later = text[clause_end:]  # "3rd and 4th, seen em": a later clause says what they are
        alone = re.fullmatch(_POLITE, after) and not re.search(
            r"\b(?:it|them|em|those|these|both|that one)\b", later, re.I
        )
        if not role and alone and (not before or re.fullmatch(_OPENERS, before + " ")):
            role = "like"  # the whole message is "the second one": more like it
        if not role and not (match.group("nums") or re.search(rf"\s{_CARD}\b|\s(?:and|&)\s", match.group(), re.I)):
            continue  # "from the last 5 years": no card, and the words are read as years
        # No role ("tell me about #2"): no fact to record, but the words are no query either.
        start = clause_start + _cue_offset(text[clause_start : match.start()], cue_start) if role else match.start()
        end = _span_end(text, match.end(), verdict_words)
        but = _positions(match, "but") if match.group("allbut") else ()
        refs.append(
            CardRef(role, positions, match.group().strip(), start, end, pronoun, bool(match.group("rest")), but)
        )
        joined_from = match.end()
    return [r for r in refs if r.role != "ignored"]


def _plausible(match: re.Match[str], role: str, before: str, after: str, verdict: str) -> bool:
    """False for words that only look like a reference: "the first time", "top 5 comedies", "watched it
    with Fargo" (a pronoun or "those" need a verdict that is theirs), "not that" (pronouns say "seen").
    ``verdict``: the role the words after it give (``_role_after``)."""
    ordinals = re.findall(rf"\b(?:{_ORD})\b", match.group("ords") or "", re.I)
    if len(ordinals) == 1 and re.search(rf"\s{_CARD_NOUN}s\b", match.group(), re.I):
        return False  # "the last ones were too scary": the last list, not one card
    if match.group("ords") and not re.search(rf"\s{_CARD}\b", match.group(), re.I):
        named = match.group().lower().startswith(("the", "that")) or len(ordinals) > 1  # "3rd and 4th"
        listed = after.split()[:1] in (["and"], ["or"])  # "seen the first, the third and #5"
        return named and (not after or listed or bool(verdict))
    if (match.group("plural") or match.group("all") and re.search(r"\d", match.group())) and after:
        return bool(verdict)  # "seen the first two godfathers", "all 3 godfather films": no cards
    if match.group("rest"):
        return bool(role)  # "the first two are good, the rest meh"
    if match.group("those") and match.group().lower().strip() == "both":
        return False  # "seen both Fargo and Heat": two films, not the cards (unless just named: ``pointed``)
    if match.group("those"):
        return role in {"seen", "dislike"}  # "I've seen those", "these look boring", "I don't like any of these"
    if match.group("bare"):  # "seen 1 and 3 already", "something like 5"; not "seen 2 westerns", "I'd like 5"
        opens = not before or re.fullmatch(_OPENERS, before + " ")  # "2 and 4 look decent", not "star trek 3 was"
        said = re.fullmatch(_POLITE, after) or opens and verdict
        if _counted(after):
            return False  # "3 good horror films": a count
        return bool(role and said and not re.search(r"\b(?:id|would|wd|i)\s+like$", before))
    if match.group("pronoun") and not match.group().lower().endswith("one"):
        return role in {"seen", "liked", "dislike"}  # "loved it!"; "more like that" / "not that" say no card
    return True


def _counted(after: str) -> bool:
    """The words after a bare number name what is counted: "3 good horror films", not "2 was a good movie"."""
    for word in re.findall(r"[a-z]+", after.lower())[:4]:
        if word in COUNT_NOUNS or word in GENRE_PLURALS or word in GENRE_MASS_NOUNS:
            return True
        if word not in COUNT_ADJECTIVES:
            return False
    return False


def _positions(match: re.Match[str], group: str = "") -> tuple[int, ...] | None:
    """The positions a reference names (0-based, -1 the last, ``MIDDLE``); None for every card.
    ``group``: read only that group ("but": the cards "all but" leaves out)."""
    ordinals = match.group(group or "ords")
    if ordinals and re.match(rf"\s*(?:the\s+)?(?:{_ORD})\b", ordinals, re.I):
        words = re.findall(rf"\b(?:{_ORD})\b", ordinals, re.I)
        found = [_ORDINALS.get(" ".join(w.lower().split())) for w in words]  # "fırst": re.I matches, .lower() not
        return tuple(dict.fromkeys(p for p in found if p is not None))
    numbered = match.group(group) if group else match.group("nums") or match.group("bare")
    if numbered:
        numbers = re.findall(_NUM, numbered, re.I)
        values = [spoken_number(n.lower(), 2) or 0 for n in numbers]
        return tuple(dict.fromkeys(v - 1 for v in values if 1 <= v <= 50))
    if match.group("plural"):
        count = spoken_number(match.group("count").lower(), 1) or 0
        side = match.group("side").lower()
        return tuple(range(count)) if side in {"first", "top"} else tuple(range(-count, 0))
    if group:
        return ()
    return None if match.group("all") or match.group("those") or match.group("rest") or match.group("allbut") else (0,)


def _role_before(before: str) -> tuple[str, int]:
    """The role the words just before a reference give it, and where its cue starts in ``before``."""
    for role, pattern in _BEFORE:
        found = pattern.search(before)
        if found:
            return role, found.start()
    return "", len(before)


def _role_after(after: str) -> tuple[str, int]:
    """The role the words just after a reference give it ("looks boring"), and how many words say it."""
    for role, pattern in _AFTER:
        found = pattern.search(after)
        if found:
            return role, len(found.group().split())
    return "", 0


def _span_end(text: str, end: int, words: int) -> int:
    """Where a reference's span ends: after its ``words`` verdict words ("#2 looks boring"), and over an
    "and" that joined it to the rest ("seen #3 and I want a comedy" leaves "I want a comedy")."""
    for _ in range(words):
        word = _WORD.match(text, end)
        end = word.end() if word else end
    joiner = _JOINER.match(text, end)
    return joiner.end() if joiner else end


def _cue_offset(raw: str, folded_offset: int) -> int:
    """The offset in ``raw`` of the word that starts at ``folded_offset`` in its folded form."""
    words = list(re.finditer(r"[^\W_]+(?:['’][^\W_]+)*", raw))
    count = len(_fold(raw)[:folded_offset].split())
    return words[count].start() if count < len(words) else len(raw)


def _fold(text: str) -> str:
    return " ".join(re.sub(r"[^\w#]+", " ", re.sub(r"['’`]", "", text.lower())).split())


def resolve(refs: list[CardRef], shown: tuple[str, ...]) -> tuple[dict[str, list[tuple[str, str]]], list[str]]:
    """Item ids per role, each with the words that pointed at it, and sentences for what could not be
    resolved. ``shown``: the item ids on screen, best first."""
    roles: dict[str, list[tuple[str, str]]] = {}
    notes = []
    for ref in refs:
        if not ref.role:
            continue
        if not shown:
            notes.append(f'There are no films on screen yet for "{ref.typed}" to point at; name a title instead.')
            continue
        if ref.pronoun and len(shown) > 1:
            notes.append(f'Which one did you mean by "{ref.typed}"? Say "the second one", or use the buttons '
                         "under each film.")  # fmt: skip
            continue
        positions = range(len(shown)) if ref.positions is None else [_on_screen(p, shown) for p in ref.positions]
        if ref.rest or ref.but:
            others = ref.but or [p for r in refs if r.role and not r.rest for p in (r.positions or ())]
            at = [_on_screen(p, shown) for p in others]
            named = {q % len(shown) for q in at if -len(shown) <= q < len(shown)}
            positions = [p for p in range(len(shown)) if p not in named]
        for position in positions:
            if -len(shown) <= position < len(shown):
                roles.setdefault(ref.role, []).append((shown[position], ref.typed))
            else:
                notes.append(f'There are only {len(shown)} films on screen, so I skipped "{ref.typed}".')
    return roles, list(dict.fromkeys(notes))


def _on_screen(position: int, shown: tuple[str, ...]) -> int:
    """``MIDDLE`` as the middle card of those on screen; any other position as it is."""
    return len(shown) // 2 if position == MIDDLE else position


_SAID = {
    "like": "More like {titles}.",
    "liked": "Noted: you like {titles}.",
    "dislike": "Noted: {titles} {is_are} not for you.",
    "seen": "Noted: you have seen {titles}, so {it_they} will not come up again.",
    "exclude": "I left out {titles}.",
}


def acknowledgement(role: str, titles: list[str]) -> str:
    """One sentence saying what a reference did, so a person sees which card "the second one" was."""
    named = titles if len(titles) <= 3 else [*titles[:3], f"{len(titles) - 3} more"]
    listed = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
    one = len(titles) == 1
    return _SAID[role].format(titles=listed, is_are="is" if one else "are", it_they="it" if one else "they")


def blank(text: str, refs: list[CardRef]) -> str:
    """``text`` with the card references' spans blanked (same length: later spans keep their offsets)."""
    for ref in refs:
        text = text[: ref.start] + " " * (ref.end - ref.start) + text[ref.end :]
    return text


def point_at_cards(refs: list[CardRef], shown: tuple[str, ...], catalog: Catalog, found: dict[str, list]) -> list[str]:
    """Add the films on screen that ``refs`` point at to ``found`` (as titles said exactly); the notes
    for references that point at nothing."""
    cards, notes = resolve(refs, shown)
    for role, pairs in cards.items():
        matches = [TitleMatch(typed, (item,), catalog[item].title, 1.0) for item, typed in pairs if item in catalog]
        found[role].extend(matches)
        if matches:
            titles = dict.fromkeys(readable_title(catalog[m.item_ids[0]]) for m in matches)
            notes.append(acknowledgement(role, list(titles)))
    return notes
