"""Captions for world scenes in twelve languages, with many sentence frames so that only attribute words matter.

Captions are data: each language is one table in world/languages/ (vocabulary with its inflected forms, motion
phrases with synonyms, 13-14 sentence frames with named slots, and plain prompts), and the one grammar in
world/grammar.py writes every language from its table. Adding a language is a table there and a test.

About a quarter of each language's frames (at least 2) are held out: `caption(..., split="train")` never uses them
and `split="heldout"` uses only them, so prompt adherence can be measured on sentences the model never saw, where
only the attribute words are familiar. Two more splits hold plain prompts, the short phrasing a person types
("a red circle moving left"; plain_captions.py): "plain", kept out of training for evaluation, and
"train-plain", other plain styles a training phase may mix in. `attribute_words` lists every form of every
attribute word so that a test (or a metric) can check that a caption names what its scene shows.

Every function takes a language code, or a grammar.Language built from a table that is not (yet) registered.
"""

from __future__ import annotations

import numpy as np

from . import grammar
from .grammar import Frame, Language, Words
from .languages import TABLES
from .scenes import Scene

_GRAMMARS = {table["code"]: Language(**table) for table in TABLES}
LANGUAGES = tuple(_GRAMMARS)
SPLITS = ("train", "heldout", "plain", "train-plain")
PLAIN_SPLITS = ("plain", "train-plain")


def _grammar(language: str | Language) -> Language:
    if isinstance(language, Language):
        return language
    if language not in _GRAMMARS:
        raise ValueError(f"unknown caption language {language!r}; expected one of {LANGUAGES}")
    return _GRAMMARS[language]


def heldout_frames(language: str | Language) -> tuple[int, ...]:
    """Indices of the sentence frames of `language` kept out of training: about a quarter of them, at least 2,
    spread evenly over the list (so that short and long frames are both represented)."""
    n = len(_grammar(language).frames)
    k = max(2, round(n / 4))
    return tuple(int((i + 0.75) * n / k) for i in range(k))


def plain_frames(language: str | Language, split: str = "plain") -> tuple[str, ...]:
    """The plain frames of `language`: the evaluation set ("plain") or the training styles ("train-plain")."""
    if split not in PLAIN_SPLITS:
        raise ValueError(f"split={split!r} has no plain frames; use one of {PLAIN_SPLITS}")
    return _grammar(language).plain["frames" if split == "plain" else "training_frames"]


def frame_ids(language: str | Language, split: str = "train") -> tuple[int, ...]:
    """Indices of the sentence frames that `split` draws from: "train" or "heldout" index the language's
    sentence frames, "plain" and "train-plain" its plain frames (`plain_frames`)."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not a caption split; use one of {SPLITS}")
    if split in PLAIN_SPLITS:
        return tuple(range(len(plain_frames(language, split))))
    held = heldout_frames(language)
    if split == "heldout":
        return held
    return tuple(i for i in range(len(_grammar(language).frames)) if i not in held)


def num_frames(language: str | Language) -> int:
    """How many sentence frames `language` has (train + held out)."""
    return len(_grammar(language).frames)


def caption(scene: Scene, language: str | Language, rng: np.random.Generator, split: str = "train") -> tuple[str, int]:
    """A caption of `scene` in `language` and the index of the sentence frame that wrote it. Objects are described
    back to front; rng picks the frame and every synonym, so the same rng state gives the same caption."""
    lang = _grammar(language)
    ids = frame_ids(lang, split)
    if not scene.objects:
        raise ValueError("cannot caption a scene without objects; sample scenes with aiprod_core.world.sample_scene")
    if split in PLAIN_SPLITS:
        frames = plain_frames(lang, split)
        if any(o.motion != "still" for o in scene.objects):  # a frame that names no motion means "still"
            ids = tuple(i for i in ids if grammar.says_motion(frames[i]))
        frame_id = ids[int(rng.integers(len(ids)))]
        return grammar.plain_caption(lang, frames[frame_id], scene.objects, rng), frame_id
    if scene.camera is not None:  # a moving camera: no frame that says it is static
        ids = tuple(i for i in ids if not grammar.says_static_camera(lang, lang.frames[i])) or ids
    frame_id = ids[int(rng.integers(len(ids)))]
    frame = lang.frames[frame_id]
    template = frame if isinstance(frame, str) else frame[len(scene.objects) > 1]
    return grammar.write(lang, template, scene.objects, rng), frame_id


def _says_static_camera(frame: Frame) -> bool:
    """Whether `frame` calls the camera static, in any language."""
    return any(grammar.says_static_camera(lang, frame) for lang in _GRAMMARS.values())


def attribute_words(language: str | Language) -> Words:
    """Every form of every attribute word of `language`: {"colour": {colour: forms}, "shape": {...},
    "motion": {motion: forms}, "size": {...}, "speed": {...}}. A caption of an object mentions at least one form
    for its colour, shape and motion (for a diagonal motion: one of the diagonal phrases); a plain caption that
    names no motion describes a still object."""
    return grammar.attribute_words(_grammar(language))


__all__ = [
    "LANGUAGES",
    "PLAIN_SPLITS",
    "SPLITS",
    "attribute_words",
    "caption",
    "frame_ids",
    "heldout_frames",
    "num_frames",
    "plain_frames",
]
