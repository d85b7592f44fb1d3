"""Plain prompts: the short phrasing a person types first ("a red circle moving left", "red circle, moving left",
"ein roter Kreis nach links", "红色圆形向左移动"), as opposed to the full sentences of the caption frames.

Two tables of frames per language, kept apart:
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

from .scenes import SceneObject

# The evaluation frames: at least six per language, kept out of training (see the module docstring)
PLAIN_FRAMES = MappingProxyType({
    "en": ("{b} {m}", "{b}, {m}", "{n}, {m}", "{n} that is {m}", "{b} {d}", "{b}", "{n}"),
    "fr": ("{b} {m}", "{b}, {m}", "{n}, {m}", "{b} {d}", "{n} {d}", "{b}", "{n}"),
    "de": ("{n} {d}", "{b} {d}", "{b}, {d}", "{n}, {d}", "{b} {v}", "{b}", "{n}"),
    "es": ("{b} {m}", "{b}, {m}", "{n}, {m}", "{b} {d}", "{n} {d}", "{b}", "{n}"),
    "it": ("{b} {m}", "{b}, {m}", "{n}, {m}", "{b} {d}", "{n} {d}", "{b}", "{n}"),
    "pt": ("{b} {m}", "{b}, {m}", "{n}, {m}", "{b} {d}", "{n} {d}", "{b}", "{n}"),
    "ru": ("{b} {m}", "{b}, {m}", "{b} {d}", "{b}, {d}", "{b}, {v}", "{b} — {d}", "{b}"),
    "zh": ("{b}{v}", "{b}，{v}", "{n}，{v}", "{b} {v}", "{b}{d}", "{b}", "{n}"),
    "ja": ("{b} {v}", "{b}、{m}", "{b} {m}", "{b} {d}", "{b}、{d}", "{b}が{d}", "{b}"),
    "ko": ("{b} {v}", "{b}, {v}", "{b} {d}", "{b}, {d}", "{n}, {d}", "{b}", "{n}"),
    "ar": ("{b} {m}", "{b}، {m}", "{b} {d}", "{b}، {d}", "{b}، {v}", "{b} - {d}", "{b}"),
    "hi": ("{b} {v}", "{b}, {v}", "{b} {d}", "{b}, {d}", "{n} {d}", "{b}", "{n}"),
})  # fmt: skip

# Plain styles for training, none of them an evaluation frame
PLAIN_TRAINING_FRAMES = MappingProxyType({
    "en": ("{n} {m}", "{n} {v}", "{b} {v}", "{b}: {m}", "{n} {d}", "{n} on a black background", "{b} on black"),
    "fr": ("{n} {m}", "{n} {v}", "{b} {v}", "{b} : {d}", "{n} sur fond noir", "{b} sur fond noir"),
    "de": ("{n} {v}", "{b}: {d}", "{d}: {n}", "{n} – {d}", "{n} auf schwarzem Grund", "{b} auf Schwarz"),
    "es": ("{n} {m}", "{n} {v}", "{b} {v}", "{b}: {d}", "{n} sobre fondo negro", "{b} sobre fondo negro"),
    "it": ("{n} {m}", "{n} {v}", "{b} {v}", "{b}: {d}", "{n} su sfondo nero", "{b} su sfondo nero"),
    "pt": ("{n} {m}", "{n} {v}", "{b} {v}", "{b}: {d}", "{n} sobre fundo preto", "{b} sobre fundo preto"),
    "ru": ("{b} {v}", "{m} {b}", "{b}: {d}", "{b}: {v}", "{b} на чёрном фоне"),
    "zh": ("{n}{v}", "{v}的{b}", "{b}：{v}", "{n}{d}", "黑色背景上的{b}"),
    "ja": ("{b}が{m}", "{v}{b}", "{b}：{v}", "{b}：{d}", "{b}は{v}", "黒い背景に{b}"),
    "ko": ("{n} {v}", "{n} {d}", "{b}: {v}", "{b} - {d}", "검은 배경에 {b}"),
    "ar": ("{b} {v}", "{b}: {m}", "{b}: {d}", "{b} - {v}", "{b} على خلفية سوداء"),
    "hi": ("{n} {v}", "{b} {m}", "{n} {m}", "{b}: {d}", "काली पृष्ठभूमि पर {n}"),
})  # fmt: skip

# Direction words people type that the caption frames do not use, added to the grammar's own
PLAIN_DIRECTIONS = MappingProxyType({
    "fr": {"left": ("à gauche",), "right": ("à droite",)},
    "pt": {"left": ("à esquerda",), "right": ("à direita",)},
})  # fmt: skip

# {d} for an object that stands still
PLAIN_STILL = MappingProxyType({
    "en": ("still", "not moving"), "fr": ("immobile",), "de": ("reglos",), "es": ("inmóvil",), "it": ("immobile",),
    "pt": ("imóvel",), "ru": ("на месте", "неподвижно"), "zh": ("静止不动", "一动不动"), "ja": ("静止", "止まったまま"),
    "ko": ("가만히", "제자리에"), "ar": ("ثابت",), "hi": ("स्थिर",),
})  # fmt: skip

# how two objects' phrases are joined, for the languages whose caption grammar joins per slot
PLAIN_AND = MappingProxyType({"zh": "和", "ja": "と", "ko": ", ", "ar": " و"})

# words a plain caption adds to a language's attribute words
PLAIN_STILL_WORDS = MappingProxyType({"ru": ("неподвижный", "неподвижная"), "ja": ("静止", "止まったまま")})

# Russian and Arabic modifiers agree with the noun: (masculine, feminine)
_RU_MOVING, _RU_STILL = ("движущийся", "движущаяся"), ("неподвижный", "неподвижная")
_AR_MOVING, _AR_STILL = ("متحرك", "متحركة"), ("ثابت", "ثابتة")

_STOPS = ".。।"


def _pick(rng: np.random.Generator, options) -> str:
    return options[int(rng.integers(len(options)))]


def _direction(grammar, obj: SceneObject, rng: np.random.Generator) -> str:
    if obj.motion == "still":
        return _pick(rng, PLAIN_STILL[grammar.code])
    extra = PLAIN_DIRECTIONS.get(grammar.code, {}).get(obj.motion, ())
    return _pick(rng, (*grammar.directions[obj.motion], *extra))


def _drop_first_word(text: str) -> str:
    return text.split(" ", 1)[1]


def plain_parts(grammar, obj: SceneObject, rng: np.random.Generator) -> dict[str, str]:
    """One object's slots {n, b, v, m, d} in `grammar`'s language, the noun drawn once so that they agree."""
    code, d = grammar.code, _direction(grammar, obj, rng)
    if code == "en":
        n = grammar.noun_phrase(obj, rng)
        return {"n": n, "b": _drop_first_word(n), "v": grammar.motion(obj, rng, 1), "m": grammar.motion(obj, rng, 0),
                "d": d}
    if code in ("fr", "es", "it", "pt"):
        n, v = grammar.noun_phrase(obj, rng), grammar.motion(obj, rng, 0)
        return {"n": n, "b": _drop_first_word(n), "v": v, "m": f"{grammar.relative} {v}", "d": d}
    if code == "de":  # "ein roter Kreis nach links": the direction is German's plain modifier
        n, gender = grammar.noun_phrase(obj, "nom", rng)
        verb, refl, rest, tail = grammar.motion(obj, gender, rng)
        v = " ".join(w for w in (verb, refl, rest, tail.split("\t")[0] if tail else "") if w)
        return {"n": n, "b": _drop_first_word(n), "v": v, "m": d, "d": d}
    if code == "ru":
        n, gender = grammar.noun_phrase(obj, "nom", rng)
        after, _, tail = grammar.motion(obj, rng)
        g = int(gender == "f")
        m = _RU_STILL[g] if obj.motion == "still" else f"{_RU_MOVING[g]} {d}"
        return {"n": n, "b": n, "v": after + tail, "m": m, "d": d}
    if code == "zh":
        b, v = grammar.noun(obj, rng), grammar.motion(obj, rng)
        return {"n": f"一个{b}", "b": b, "v": v, "m": v, "d": d}
    if code == "ja":
        b = grammar.noun(obj, rng)
        return {"n": b, "b": b, "v": grammar.motion(obj, rng, "plain"), "m": grammar.motion(obj, rng, "final"), "d": d}
    if code == "ko":
        b, v = grammar.noun(obj, rng), grammar.motion(obj, rng, "final")
        return {"n": f"{b} 하나", "b": b, "v": v, "m": v, "d": d}
    if code == "ar":
        n, gender = grammar.noun_phrase(obj, "nom", rng)
        verb, rest = grammar.motion(obj, gender, rng)
        g = int(gender == "f")
        if obj.motion == "still":
            d = m = _AR_STILL[g]
        else:
            m = f"{_AR_MOVING[g]} {d}"
        return {"n": n, "b": n, "v": " ".join(w for w in (verb, rest) if w), "m": m, "d": d}
    if code == "hi":
        b = grammar.noun(obj, rng)
        return {"n": f"एक {b}", "b": b, "v": grammar.motion(obj, rng, 0), "m": grammar.motion(obj, rng, 2), "d": d}
    raise KeyError(f"no plain captions for language {code!r}")


def says_motion(frame: str) -> bool:
    """Whether a plain frame says how its objects move; one that does not captions still scenes only."""
    return any(slot in frame for slot in ("{v}", "{m}", "{d}"))


def plain_caption(grammar, frame: str, objects, rng: np.random.Generator) -> str:
    """`frame` rendered for each object and joined with the language's "and"; spaces tidied, case and
    punctuation left as the frame has them."""
    texts = [frame.format(**plain_parts(grammar, o, rng)) for o in objects]
    conj = PLAIN_AND.get(grammar.code, grammar.conj)
    text = texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + conj + texts[-1]
    return " ".join(text.split())


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
