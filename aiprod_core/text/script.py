"""Which writing system a prompt uses, from Unicode character names (no language model)."""

from __future__ import annotations

import unicodedata
from collections import Counter

# First word of a letter's Unicode name -> display name; others in _SCRIPTS are title-cased.
_NAMES = {
    "CJK": "Han",
    "IDEOGRAPHIC": "Han",  # 々 ideographic iteration mark
    "HIRAGANA": "Hiragana/Katakana",
    "KATAKANA": "Hiragana/Katakana",
    "KATAKANA-HIRAGANA": "Hiragana/Katakana",  # ー prolonged sound mark
}
# fmt: off
_SCRIPTS = frozenset({
    "LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "GEORGIAN", "HEBREW", "ARABIC", "SYRIAC", "THAANA",
    "DEVANAGARI", "BENGALI", "GURMUKHI", "GUJARATI", "ORIYA", "TAMIL", "TELUGU", "KANNADA",
    "MALAYALAM", "SINHALA", "THAI", "LAO", "TIBETAN", "MYANMAR", "KHMER", "MONGOLIAN", "ETHIOPIC",
    "CHEROKEE", "HANGUL", "BOPOMOFO", "YI", "JAVANESE", "BALINESE", "SUNDANESE", "TIFINAGH", "NKO",
    "VAI",
})
# fmt: on


def _script_of(ch: str) -> str | None:
    if not unicodedata.category(ch).startswith("L"):  # letters only: digits, marks, emoji say nothing
        return None
    name = unicodedata.name(ch, "")
    for width in ("FULLWIDTH ", "HALFWIDTH "):
        name = name.removeprefix(width)
    word = name.split(" ", 1)[0]
    if word in _NAMES:
        return _NAMES[word]
    return word.title() if word in _SCRIPTS else None


def detect_script(text: str) -> str:
    """The script of `text`'s letters: e.g. "Latin", "Cyrillic", "Han", "Hiragana/Katakana", "Hangul",
    "Arabic", "Devanagari"; "Mixed: A, B" (most letters first, ties alphabetical) when several occur; "Unknown" when
    there are no letters of a known script (empty text, digits, emoji)."""
    counts = Counter(s for s in map(_script_of, text) if s is not None)
    if not counts:
        return "Unknown"
    if len(counts) == 1:
        return next(iter(counts))
    ranked = sorted(counts, key=lambda s: (-counts[s], s))
    return "Mixed: " + ", ".join(ranked)
