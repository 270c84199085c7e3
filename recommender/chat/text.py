"""A message as text the parser may read: NFKC-normalised, without control or bidi-format
characters, cut to a length, and without markup or SQL fragments ("<b>horror</b>" is "horror").
Pure: the standard library."""

from __future__ import annotations

import re
import unicodedata

from recommender.chat.lexicon import NUMBER_WORDS

MAX_MESSAGE_CHARS = 2000  # longer messages are cut here; the Refinement says so in ``notes``
_CONTROL = {"Cc", "Cf", "Cs", "Co", "Cn"}
_MARKUP = re.compile(r"<(script|style)\b.*?(?:</\1\s*>|$)|<[^<>]{0,300}>", re.I | re.S)
_SQL = re.compile(r"\b(?:drop|truncate|alter)\s+table\s+\w+|\bunion\s+(?:all\s+)?select\b[^;]*|\bdelete\s+from\s+\w+"
                  r"|\bor\s+1\s*=\s*1\b|--", re.I)  # fmt: skip


def clean_message(text: object, limit: int = MAX_MESSAGE_CHARS) -> tuple[str, bool]:
    """NFKC-normalised text without control or bidi-format characters, cut at ``limit``; (text, truncated)."""
    text = "" if text is None else str(text)
    text = unicodedata.normalize("NFKC", text[: limit * 4])
    text = "".join(" " if unicodedata.category(c) in _CONTROL and c not in "\n\t" else c for c in text)
    truncated = len(text) > limit
    return text[:limit].strip(), truncated


def spoken_number(token: str, digits: int) -> int | None:
    """The number a folded token says: at most ``digits`` ASCII digits, or a word ("five", "dozen"); else None.
    Other Unicode digits ("፯") are no number: ``int`` refuses some of them."""
    if token.isascii() and token.isdigit():
        return int(token) if len(token) <= digits else None
    return NUMBER_WORDS.get(token)


def strip_markup(text: str) -> str:
    """Tags, scripts and SQL fragments are no request: "<b>horror</b>" is "horror"."""
    return _SQL.sub(" ", _MARKUP.sub(" ", text))
