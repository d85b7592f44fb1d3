"""Plain prompts: the short phrasing a person types first ("a red circle moving left", "red circle, moving left",
"ein roter Kreis nach links", "红色圆形向左移动"), as opposed to the full sentences of the caption frames.

Each language's plain frames live in its table (world/languages/<code>.py, under "plain"), beside the rest of
its captions; world/grammar.py writes them. Two lists of frames per language, kept apart:
- `PLAIN_FRAMES` (split "plain"): the evaluation set. Training never draws them, nor anything equal to them up to
  letter case and a final full stop (tests/test_world.py checks this against every training frame).
- `PLAIN_TRAINING_FRAMES` (split "train-plain"): other plain styles that a training phase may mix in
  (`Phase.plain_captions`).

A frame is a template over one object's slots, rendered once per object and joined with the language's "and":
  {n} the noun phrase as typed, with its article or counter where the language has one ("a red circle")
  {b} the bare noun phrase ("red circle")
  {v} the motion as a finite verb phrase that follows the subject ("moves left")
  {m} the motion as a modifier that follows the noun ("moving left", "qui va vers la gauche")
  {d} the direction alone ("left", "nach links"); for a still object a word for still
A frame without {v}, {m} or {d} says no motion: it captions only scenes whose objects stand still, so a prompt that
names no motion ("a green triangle") asks for an object that stays where it is, as the world's still scenes show.

Plain captions are lowercase and end without a full stop. `casual` gives a training caption the same look (first
letter lowercased, final full stop dropped), so that the case and punctuation of a prompt carry no meaning.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

from .grammar import plain_caption, plain_parts, says_motion
from .languages import TABLES

# views of the languages' tables, by language code
PLAIN_FRAMES = MappingProxyType({t["code"]: t["plain"]["frames"] for t in TABLES})
PLAIN_TRAINING_FRAMES = MappingProxyType({t["code"]: t["plain"]["training_frames"] for t in TABLES})
PLAIN_STILL = MappingProxyType({t["code"]: t["plain"]["still"] for t in TABLES})  # {d} for a still object
# direction words people type that the caption frames do not use, added to the grammar's own
PLAIN_DIRECTIONS = MappingProxyType({t["code"]: t["plain"]["directions"] for t in TABLES if "directions" in t["plain"]})
# how two objects' phrases are joined, where it is not the language's own "and"
PLAIN_AND = MappingProxyType({t["code"]: t["plain"]["and"] for t in TABLES if "and" in t["plain"]})
# words a plain caption adds to a language's attribute words
PLAIN_STILL_WORDS = MappingProxyType({t["code"]: t["plain"]["still_words"] for t in TABLES if "still_words" in t["plain"]})

_STOPS = ".。।"


def casual(text: str, rng: np.random.Generator) -> str:
    """`text` as people type it: the first letter lowercased, or the final full stop dropped, or both."""
    choice = int(rng.integers(3))
    if choice != 1:
        text = text[:1].lower() + text[1:]
    if choice != 0 and text[-1:] in _STOPS:
        text = text[:-1]
    return text


def normal_form(text: str) -> str:
    """What two captions that differ only in letter case and a final full stop share (for the kept-apart check)."""
    return text.lower().rstrip(" " + _STOPS)


__all__ = [
    "PLAIN_AND", "PLAIN_DIRECTIONS", "PLAIN_FRAMES", "PLAIN_STILL", "PLAIN_STILL_WORDS", "PLAIN_TRAINING_FRAMES",
    "casual", "normal_form", "plain_caption", "plain_parts", "says_motion",
]
