"""Years in a message: decades ("90s", "nineties"), single years, before/after/between, and negated
spans ("not from the 60s or earlier"), collected into bounds by ``YearParser``. Pure: stdlib only."""

from __future__ import annotations

import re

from recommender.chat.lexicon import (
    AFTER_YEAR,
    APPROXIMATE_SPAN,
    APPROXIMATE_YEAR,
    BEFORE_YEAR,
    BLACK_AND_WHITE_GAP,
    BY_YEAR,
    COMPARATIVES,
    DECADE_PARTS,
    DECADE_WORDS,
    FILLERS,
    FROM_ON,
    NOT_OLD_GAP,
    NOT_RECENT_GAP,
    OLD_GAP,
    RECENT_SPAN,
    YEAR_WORDS,
)
from recommender.chat.slips import slip
from recommender.chat.text import spoken_number

_YEAR = re.compile(r"(?:18|19|20)\d\d")


def is_year(token: str) -> bool:
    """True for a four-digit year from 1800 to 2099 ("1977")."""
    return _YEAR.fullmatch(token) is not None


def names_years(token: str) -> bool:
    """True for a decade ("90s", "nineties") or a four-digit year."""
    return decade(token) is not None or is_year(token)


def decade(token: str) -> int | None:
    """1990 for "90s", "1990s", "nineties" (or "ninetes": one slip); None otherwise."""
    if token in DECADE_WORDS:
        return DECADE_WORDS[token]
    if len(token) >= 6 and token.isalpha() and token not in FILLERS:
        near = slip(token, list(DECADE_WORDS))
        return DECADE_WORDS[near[0]] if near else None
    match = re.fullmatch(r"((?:18|19|20)\d0|\d0)s", token)
    if not match:
        return None
    value = int(match.group(1))
    return value if value >= 100 else (2000 + value if value < 20 else 1900 + value)


class YearParser:
    """Collects year bounds from tokens; decades and single years widen, before/after narrow, a negated
    span cuts the edge it touches (of the asked range, else of the catalogue)."""

    def __init__(self, oldest: int | None, newest: int | None):
        self.oldest, self.newest = oldest, newest
        self.ranges: list[tuple[int, int]] = []
        self.negated: list[tuple[int, int, str]] = []
        self.lower: int | None = None
        self.upper: int | None = None
        self.vague: list[tuple[int | None, int | None]] = []  # "recent", "old": only without a decade or year
        self.notes: list[str] = []

    def bound(self, lower: int | None = None, upper: int | None = None) -> None:
        if lower is not None:
            self.lower = lower if self.lower is None else max(self.lower, lower)
        if upper is not None:
            self.upper = upper if self.upper is None else min(self.upper, upper)

    def result(self) -> tuple[int | None, int | None, bool]:
        said_lower, said_upper = self.lower is not None, self.upper is not None  # a year said wins over a time word
        for lower, upper in [] if self.ranges else self.vague:  # "modern crime, 90s": the decade says which
            self.bound(None if said_lower else lower, None if said_upper else upper)
        self.vague = []
        lo = min((r[0] for r in self.ranges), default=None)
        hi = max((r[1] for r in self.ranges), default=None)
        if self.lower is not None:
            lo = self.lower if lo is None else max(lo, self.lower)
        if self.upper is not None:
            hi = self.upper if hi is None else min(hi, self.upper)
        for n_lo, n_hi, token in self.negated:
            edge_lo = lo if lo is not None else self.oldest
            edge_hi = hi if hi is not None else self.newest
            if edge_lo is not None and n_lo <= edge_lo <= n_hi:
                lo = n_hi + 1  # "90s but not the early 90s", "nothing from the 60s or earlier"
            elif edge_hi is not None and n_lo <= edge_hi <= n_hi:
                hi = n_lo - 1  # "not from the 90s" in a catalogue that ends in 1998
            else:
                self.notes.append(f'I can\'t leave out a span of years in the middle; ignoring "not {token}".')
        return lo, hi, bool(self.ranges)


def _last_years(tokens: list[str], used: list[bool], years: YearParser, negated_at) -> None:
    """ "the last 5 years", "past ten years", "the last decade", "(nothing) older than 20 years": a bound
    counted back from the catalogue's newest year (a catalogue that ends in 1998 has no films from this year)."""
    for i in range(len(tokens) - 1):
        if used[i] or not years.newest:
            continue
        if tokens[i] in {"older", "newer"} and tokens[i + 1 : i + 2] in (["than"], ["then"]):
            span = spoken_number(tokens[i + 2] if i + 2 < len(tokens) else "", 2)
            if span and tokens[i + 3 : i + 4] in (["years"], ["yrs"]):
                older = (tokens[i] == "older") != negated_at(i)  # "nothing older than 20 years": from 1978
                years.bound(**({"upper": years.newest - span} if older else {"lower": years.newest - span + 1}))
                used[i : i + 4] = [True] * 4
            continue
        if tokens[i] not in {"last", "past"}:
            continue
        count = tokens[i + 1]
        span = spoken_number(count, 2)
        unit = tokens[i + 2] if i + 2 < len(tokens) else ""
        if span and unit in {"years", "year", "yrs"}:
            years.bound(lower=years.newest - span + 1)
            used[i : i + 3] = [True] * 3
        elif count in {"decade", "ten years"}:
            years.bound(lower=years.newest - 9)
            used[i : i + 2] = [True] * 2


def war_eras(tokens: list[str], used: list[bool], years: YearParser, negated_at) -> None:
    """ "pre-war films" (before 1939) and "post-war" (1945-1959): years, so the word "war" asks for no War film;
    "no pre-war films" is from 1939 on."""
    for i, token in enumerate(tokens):
        after = token in {"pre", "post"} and i + 1 < len(tokens) and tokens[i + 1] == "war"
        if not (after or token in {"prewar", "postwar"}) or used[i]:
            continue
        if token.startswith("pre"):
            years.bound(**({"lower": 1939} if negated_at(i) else {"upper": 1938}))
        elif negated_at(i):
            years.bound(lower=1960)
        else:
            years.ranges.append((1945, 1959))
        used[i : i + (2 if after else 1)] = [True] * (2 if after else 1)


_OR_LATER = re.compile(r"(?:or|and) (?:later|after|newer|up|since)\b")
_OR_EARLIER = re.compile(r"(?:or|and) (?:earlier|before|older)\b")
_UNITS = {"minutes", "minute", "mins", "min", "hours", "hour", "hrs", "years", "year", "yrs", "yo", "percent", "films",
          "movies", "people", "stars", "star"}  # fmt: skip
_SHORT_YEAR_LEADS = BEFORE_YEAR | AFTER_YEAR | {"than", "then", "between"}


def _short_year(tokens: list[str], i: int) -> int | None:
    """ "95" as 1995 where only a year can stand: "newer than 95", "nothing before 85", "between 85 and 90"
    (as in "90s": 00-19 are 2000s); None for any other two-digit number ("top 10", "5 and 10")."""
    if not re.fullmatch(r"\d\d", tokens[i]) or not i:
        return None
    lead = tokens[i - 1]
    if lead in {"and", "to"} and i >= 2 and re.fullmatch(r"\d\d|(?:18|19|20)\d\d", tokens[i - 2]):
        lead = tokens[i - 3] if i >= 3 else ""  # "between 85 and 90": the second year follows the first
    if lead not in _SHORT_YEAR_LEADS or tokens[i + 1 : i + 2] and tokens[i + 1] in _UNITS:
        return None  # "less than 90 minutes", "older than 10 years"
    if lead in {"than", "then"} and (i < 2 or tokens[i - 2] not in COMPARATIVES):
        return None  # "newer than 95", not "less than 90"
    value = int(tokens[i])
    return 2000 + value if value < 20 else 1900 + value


def parse_years(tokens: list[str], used: list[bool], years: YearParser, negated_at) -> None:
    """Mark the year tokens in ``tokens`` as used and record their bounds in ``years``."""
    _last_years(tokens, used, years, negated_at)
    for i, token in enumerate(tokens):
        if used[i]:
            continue
        modifier = tokens[i - 1] if i and tokens[i - 1] in DECADE_PARTS else ""
        start = decade(token)
        year = int(token) if is_year(token) else _short_year(tokens, i)
        span = (start, start + 9) if start is not None else (year, year) if year is not None else None
        if span is None:
            continue
        lo, hi = span
        if start is not None and modifier:
            first, last = DECADE_PARTS[modifier]
            lo, hi = start + first, start + last
            used[i - 1] = True
        used[i] = True
        window = range(max(0, i - 3), i)
        look = [tokens[k] for k in window if tokens[k] not in {"the", "year"} and tokens[k] not in DECADE_PARTS]
        word = look[-1] if look else ""
        if word in {"than", "then"} and len(look) > 1 and look[-2] in COMPARATIVES:  # "older than 1990"
            word = COMPARATIVES[look[-2]]
            used[max(k for k in window if tokens[k] == look[-2])] = True
        after = " ".join(tokens[i + 1 : i + 3])
        for k in window:
            used[k] = used[k] or tokens[k] in YEAR_WORDS
        negated = negated_at(i)
        if word in BEFORE_YEAR or (word == "to" and "up" in look):
            inclusive = word in BY_YEAR
            edge = hi if inclusive else lo - 1
            years.bound(lower=edge + 1) if negated else years.bound(upper=edge)
        elif word in AFTER_YEAR and (word != "from" or (i + 1 < len(tokens) and tokens[i + 1] in FROM_ON)):
            edge = lo if word in {"since", "from"} else hi + 1
            years.bound(upper=edge - 1) if negated else years.bound(lower=edge)
        elif not negated and (tokens[i + 1 : i + 2] in (["onwards"], ["onward"]) or _OR_LATER.match(after)):
            years.bound(lower=lo)  # "80s onwards", "1985 or later"
            used[i + 1 : i + 3] = [True] * len(used[i + 1 : i + 3])
        elif not negated and _OR_EARLIER.match(after):
            years.bound(upper=hi)  # "the 60s or earlier"
            used[i + 1 : i + 3] = [True] * len(used[i + 1 : i + 3])
        elif word in APPROXIMATE_YEAR and year is not None and not negated:
            years.ranges.append((lo - APPROXIMATE_SPAN, hi + APPROXIMATE_SPAN))  # "around 1990"
        elif word in {"and", "to"} and years.ranges and not negated:
            first = years.ranges.pop()  # "between 1980 and 1990", "1980 to 1990"
            years.ranges.append((min(first[0], lo), max(first[1], hi)))
        elif negated:
            if re.match(r"(?:or|and) (?:earlier|before|older)", after):
                lo = min(lo, years.oldest or lo)
            elif re.match(r"(?:or|and) (?:later|after|newer)", after):
                hi = max(hi, years.newest or hi)
            years.negated.append((lo, hi, token))
        else:
            years.ranges.append((lo, hi))


def film_bounds(bounds: tuple, found: dict[str, list], catalog) -> tuple[int | None, int | None, bool]:
    """The year bounds with those a named film sets ("older than Fargo": up to 1995; "after Star Wars": from
    1978; "the same era as Chinatown": 1969-1979); the films' cues leave ``found``."""
    year_min, year_max, year_set = bounds
    spans = {"before_film": (None, -1), "after_film": (1, None), "era_film": (-5, 5), "from_film": (0, None),
             "until_film": (None, 0)}  # fmt: skip
    for key, span in spans.items():
        years = [catalog[i].year for match in found.pop(key, ()) for i in match.item_ids[:1] if catalog[i].year]
        if not years:
            continue
        low = None if span[0] is None else years[0] + span[0]
        high = None if span[1] is None else years[0] + span[1]
        new_min = low if year_min is None or low is not None and low > year_min else year_min
        new_max = high if year_max is None or high is not None and high < year_max else year_max
        if new_min is not None and new_max is not None and new_min > new_max:
            continue  # "the 80s but older than Star Wars": the years said win over the film
        year_min, year_max, year_set = new_min, new_max, year_set or key == "era_film"
    return year_min, year_max, year_set


def era_bound(years: YearParser, recent: bool, black_and_white: bool, negated: bool) -> None:
    """The bound a time word sets, counted back from the catalogue's newest year: "recent" and "not old" a
    lower one, "old" and "not too recent" an upper one; "no black and white" leaves out those years only."""
    if recent != negated:
        gap = RECENT_SPAN - 1 if recent else BLACK_AND_WHITE_GAP - 1 if black_and_white else NOT_OLD_GAP
        years.vague.append((years.newest - gap, None))
    else:
        gap = NOT_RECENT_GAP if recent else BLACK_AND_WHITE_GAP if black_and_white else OLD_GAP
        years.vague.append((None, years.newest - gap))
