"""How a message leans on what it names: a complaint about a genre, wanting less of a word, lifting a
filter, a verdict said with a pronoun about a film named earlier. Pure: the standard library."""

from __future__ import annotations

import re

from recommender.chat.lexicon import (
    ALLOWED_WORDS,
    BAD_VERDICTS,
    COMPLAINT_GLUE,
    COMPLAINT_WORDS,
    COPULAS,
    GOOD_VERDICTS,
    LESS_OF,
    LIFT_GENRE_WORDS,
    LIFT_WORDS,
    LIFT_YEAR_WORDS,
    NOT_FOR_ME,
)
from recommender.chat.years import names_years

# A filter waved away as a whole: "any genre is fine", "I don't care about the year", "the decade doesn't matter".
_ANY_FILTER = re.compile(
    r"\b(?:any|whatever|whichever)\s+(?P<any>genre|year|decade|era)s?\s+(?:is\s+|would be\s+|will\s+)?"
    r"(?:fine|ok|okay|good|great|works|do|goes)\b|"
    r"\b(?:(?:dont|do not|doesnt)\s+(?:really\s+)?(?:care|mind)|idc)\s+(?:about\s+|what\s+|which\s+)?(?:the\s+)?"
    r"(?P<care>genre|year|decade|era)s?\b|"
    r"\b(?P<matter>genre|year|decade|era)s?\s+(?:doesnt|does not|dont|do not)\s+matter\b"
)

# A verdict on a film named earlier in the message: "I watched Titanic and didn't like it", "seen Fargo, loved it".
_DISLIKED_IT = re.compile(
    r"\b(?:(?:didnt|did not|dont|do not)\s+(?:really\s+|much\s+|particularly\s+)?(?:like|love|enjoy)|hated|disliked|"
    r"(?:wasnt|was not)\s+(?:really\s+)?a\s+fan\s+of)\s+(?:it|that|them|those|these|either)\b|"
    rf"\b(?:it|that|they)\s+(?:was|were)\s+(?:so\s+|really\s+|pretty\s+|too\s+|kinda\s+)?(?:{'|'.join(BAD_VERDICTS)})\b"
)
_LIKED_IT = re.compile(
    r"\b(?:really\s+)?(?:liked|loved|enjoyed|adored)\s+(?:it|that|them|those|these|both)\b|"
    rf"\b(?:it|that|they)\s+(?:was|were)\s+(?:so\s+|really\s+|pretty\s+)?(?:{'|'.join(GOOD_VERDICTS)})\b"
)
_PLURAL = {"them", "those", "these", "both", "either"}
_SEEN_IT = re.compile(
    r"(?<!not )(?<!never )(?<!havent )(?<!hasnt )(?<!didnt )\b(?:seen|watched|saw)\s+"
    r"(?:it|that|them|those)\b"
)
# "something similar" after a film the message liked or saw: that film is the seed.
_ANAPHORA = re.compile(
    r"\b(?:something|anything|films?|movies?)(?:\s+else)?\s+(?:similar|like (?:it|that|this|those|them|both))\b|"
    r"\blike (?:those|these|them|both)\b|\bmore \w+ like (?:it|that|this)\b|"
    r"\bsimilar (?:to (?:it|that|this|those|them|both)|ones?|films?|movies?)\b|"
    r"\bmore like (?:it|that|this|those|them|both)\b|\bmore of (?:it|that|this|those|them|the same)\b"
)


def waved_filter(folded: str) -> str:
    """ "genre", "year", "decade" or "era" when the message waves that filter away as a whole, else ""."""
    waved = _ANY_FILTER.search(folded)
    return next(v for v in waved.groupdict().values() if v) if waved else ""


def complained_about(tokens: list[str], end: int, clause: list[int]) -> bool:
    """True when the words after a genre phrase ending at ``end`` complain about it, in its clause:
    "westerns are boring", "horror is so overrated", "comedies are not my thing"."""
    j, said_is = end, False
    while j < len(tokens) and clause[j] == clause[end - 1]:
        if tokens[j] in COMPLAINT_WORDS or tokens[j] in {"no", "nope", "nah"} and said_is:  # "horror is a (hard) no"
            return True
        said_is = said_is or tokens[j] in COPULAS
        if tokens[j] in {"not", "arent", "isnt"}:
            return " ".join(tokens[j + 1 : j + 3]) in NOT_FOR_ME
        if tokens[j] not in COMPLAINT_GLUE:
            return False
        j += 1
    return False


_FED_UP = re.compile(
    r"\b(?:done with|sick of|tired of|bored of|bored with|fed up with|had enough of) (?:it|them|those|that)$|"
    r"\bhad enough$"
)


def fed_up_after(tokens: list[str], end: int) -> bool:
    """True when the rest of the sentence after a genre phrase ending at ``end`` says the person has had enough
    of it: "my roommate keeps picking depressing dramas and I'm done with it"."""
    stop = next((j for j in range(end, len(tokens)) if tokens[j] in {".", "!", "?", ";", ","}), len(tokens))
    rest = " ".join(tokens[end:stop])  # "I want a western, tired of those rom coms": another clause, another genre
    return "and" in tokens[end:stop] and bool(_FED_UP.search(rest))


_NEED_NOT = re.compile(
    r"\b(?:doesnt|does not|dont|do not|neednt)\s+(?:need|have)\s+to\s+be(?:\s+\w+)?$|"
    r"\bneednt\s+be(?:\s+\w+)?$"
)


def merely_allowed(tokens: list[str], start: int) -> bool:
    """True for a genre that need not be: "doesn't need to be all action", "it doesn't have to be a comedy"."""
    return bool(_NEED_NOT.search(" ".join(tokens[max(0, start - 6) : start])))


def wants_less(tokens: list[str], i: int) -> bool:
    """True when the token at ``i`` follows "too", "overly" or "less" ("too violent", "way too much violence")."""
    j = i - 1
    while j >= 0 and tokens[j] in {"much", "many"}:
        j -= 1
    return j >= 0 and tokens[j] in LESS_OF


def lifted_tokens(tokens: list[str], clause: list[int], negated: list[bool]) -> list[bool]:
    """Which tokens a lifting verb governs: those after "remove", "drop", "forget", "never mind" … in its
    clause, and in the next one after an "and" ("forget the year and the genre")."""
    lifted, at = [False] * len(tokens), None
    for i, token in enumerate(tokens):
        if at is not None and clause[i] != at and not _lift_goes_on(tokens, i):
            at = None
        never_mind = (
            token == "mind" and tokens[i - 1 : i] == ["never"] and tokens[i + 1 : i + 2] in (["the"], ["about"])
        )
        if (token in LIFT_WORDS or never_mind) and not negated[i]:  # "never mind the war thing"
            at = clause[i]
        elif at is not None:
            at, lifted[i] = clause[i], True
    return lifted


def _lift_goes_on(tokens: list[str], i: int) -> bool:
    """ "forget the year and the genre": after "and"/"or", another filter word is lifted too."""
    following = [t for t in tokens[i + 1 : i + 3] if t != "the"]
    return bool(tokens[i] in {"and", "or"} and following) and (
        following[0] in LIFT_YEAR_WORDS | LIFT_GENRE_WORDS or names_years(following[0])
    )


def allowed_again(tokens: list[str], end: int) -> bool:
    """True when the words after a genre phrase ending at ``end`` allow it again: "war is fine", "romance
    is ok now", "ok war films are ok": the genre is no longer excluded (and not asked for either)."""
    j = end
    while j < len(tokens) and tokens[j] in {"films", "movies", "stuff", "thing", "ones", "is", "are", "r", "s", "too"}:
        j += 1
    return j > end and j < len(tokens) and tokens[j] in ALLOWED_WORDS


def pronoun_verdicts(found: dict[str, list], folded: str) -> None:
    """Verdicts on the films named earlier in the message, said with a pronoun: a seen film is disliked
    ("I watched Titanic and didn't like it") or liked ("seen Fargo, loved it"); a liked or seen one is a
    seed ("I loved Fargo, something similar")."""
    if found["seen"] and not found["dislike"] and not found["liked"]:
        if _DISLIKED_IT.search(folded):
            found["dislike"] = list(found["seen"])
        elif _LIKED_IT.search(folded):
            found["liked"] = list(found["seen"])
    if found["exclude"] and not found["dislike"] and _DISLIKED_IT.search(folded):
        found["dislike"] = list(found["exclude"])  # "not fargo, hated it"
    if found["exclude"] and not found["seen"] and _SEEN_IT.search(folded):
        found["seen"] = list(found["exclude"])  # "not fargo, i've seen it"
    mention, listed = found.get("mention", []), found.get("listed", [])
    if listed and not any(found[k] for k in ("like", "liked", "seen", "dislike", "exclude", "ignored")):
        for kind, pattern in (("dislike", _DISLIKED_IT), ("seen", _SEEN_IT), ("liked", _LIKED_IT)):
            said = pattern.search(folded)
            plural = said and (said.group().split()[-1] in _PLURAL or said.group().split()[0] == "they")
            if said and plural == (len(listed) > 1):  # "Heat and Speed, didn't like them"; "fargo, loved it"
                found[kind] = list(listed)
                break
    named = found["liked"] + found["seen"] + found["ignored"] or mention
    anaphora = _ANAPHORA.search(folded)
    refused = anaphora and re.search(
        r"\b(?:no|not|dont|didnt|never|nothing)\b(?:\s+\w+){0,3}\s*$", folded[: anaphora.start()]
    )
    if not found["like"] and anaphora and not refused and not found["dislike"] and named:
        found["like"] = named  # "haven't seen X yet, something like it", "... Speed and The Rock, more like those"
