"""The one grammar that writes captions in every language, from that language's table (world/languages/<code>.py).

A table holds data only: vocabulary, sentence frames, and the few declarative rules its language needs. The engine
draws one object's words in the order the table lists (`noun_draws`, `motion_draws`: the order of the random draws
is part of every seed's caption), inflects them, and writes them into templates:

- A vocabulary entry is a string (the same in every context), a tuple (forms, chosen through a form table such as
  `forms` or `adjective_forms`: form name -> template over the tuple's positions, e.g. {"final": "{1}いる"}), or a
  dict keyed by agreement (gender, case, or "still"/"moving"), e.g. a German article {("m", "acc"): "einen"}.
- A lookup in a form table or an agreement dict tries, in order: the slot's verb form, (gender, case), gender,
  case, and whether the object moves.
- Templates are str.format strings over the drawn parts (noun, subject, motion, verb, refl, speed, direction,
  event, tail) and the table's `constants`; empty parts vanish with their spaces, and so does a space before a
  comma. `{x:A/B}` writes x followed by A after a final consonant (a Hangul syllable with batchim), else by B:
  Korean particles.
- A frame's slots ({fin}, {rel}, ...) name entries of `slots`: the template for one object, the case of its noun,
  the verb form, and how the objects' phrases are joined.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import NamedTuple

import numpy as np

from .scenes import MOTIONS, SceneObject

# A frame is one template, or a (one object, several objects) pair when the frame's own words agree in number.
Frame = str | tuple[str, str]
Words = dict[str, dict[str, tuple[str, ...]]]
_MOTION_PARTS = ("verb", "refl", "speed", "direction", "event", "tail")
_NOUN_TABLES = {"shape": "shapes", "colour": "colours", "size": "sizes"}


@dataclass(frozen=True)
class Language:
    """One language's table; the fields are described in world/languages/__init__.py."""

    code: str
    frames: tuple[Frame, ...]
    slots: Mapping[str, Mapping]
    colours: Mapping[str, tuple]
    shapes: Mapping[str, tuple]
    sizes: Mapping[str, tuple]
    speeds: Mapping[str, tuple[str, ...]]
    directions: Mapping[str, tuple[str, ...]]
    verbs: tuple
    still: tuple
    plain: Mapping
    events: Mapping[str, tuple] = field(default_factory=dict)
    direction_verbs: Mapping[str, tuple] = field(default_factory=dict)
    noun: str = "{size} {colour} {shape}"
    subject: str = "{noun}"
    motion: str = "{verb} {speed} {direction} {event}"
    noun_draws: tuple[str, ...] = ("size", "colour", "shape")
    motion_draws: tuple[str, ...] = ("speed", "own", "verb", "direction", "event")
    direction_verb_chance: float = 0.3
    direction_verbs_take_direction: bool = False
    link: tuple = ()
    verb_parts: tuple[str, ...] = ("verb",)
    still_parts: tuple[str, ...] = ("verb",)
    event_parts: Mapping[str, str] = field(default_factory=dict)
    forms: Mapping = field(default_factory=dict)
    still_forms: Mapping | None = None
    adjective_forms: Mapping = field(default_factory=dict)
    noun_forms: Mapping = field(default_factory=dict)
    constants: Mapping = field(default_factory=dict)
    conj: str = " and "
    sep: str = ", "
    capitalise: bool = True
    static_camera: tuple[str, ...] = ()
    still_words: tuple[str, ...] | None = None
    direction_verb_words: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    motion_words: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = {n for f in self.frames for t in ((f,) if isinstance(f, str) else f) for n in _slots(t)}
        missing -= set(self.slots)
        plain = (*self.plain["frames"], *self.plain["training_frames"])
        missing |= {n for t in plain for n in _slots(t)} - set(_plain_templates(self))
        absent = [m for m in MOTIONS if m != "still" and m not in self.directions]
        steps = set(self.noun_draws) - {"size", "colour", "shape", "link"}
        steps |= set(self.motion_draws) - {"speed", "own", "verb", "direction", "event"}
        if steps:
            raise ValueError(f"language {self.code!r}: unknown draw steps {sorted(steps)}; noun_draws take size, "
                             "colour, shape, link and motion_draws speed, own, verb, direction, event")
        if missing or absent:
            raise ValueError(f"language {self.code!r}: frames use slots {sorted(missing)} that `slots` (or the "
                             f"plain draws and slots) lack, or "
                             f"`directions` lacks motions {absent}; add them to its table")


class _Agreement(NamedTuple):
    """What a word agrees with: the slot's verb form, the noun's gender and case, and whether the object moves."""

    form: str | None
    gender: str | None
    case: str
    state: str

    def lookup_order(self) -> tuple:
        return self.form, (self.gender, self.case), self.gender, self.case, self.state


class _Word(str):
    """A string that takes a Korean particle pair as its format spec: "{noun:이/가}"."""

    def __format__(self, spec: str) -> str:
        if "/" not in spec:
            return str.__format__(self, spec)
        after_consonant, after_vowel = spec.split("/")
        syllable = ord(self[-1]) - 0xAC00  # Hangul syllables: 28 final-consonant variants each, 0 = none
        return self + (after_consonant if 0 <= syllable < 11172 and syllable % 28 else after_vowel)


def _pick(rng: np.random.Generator, options: Sequence):
    return options[int(rng.integers(len(options)))]


@cache
def _slots(template: str) -> tuple[str, ...]:
    """The field names of `template`, in order, a repeated one repeated."""
    return tuple(name for _, name, _, _ in string.Formatter().parse(template) if name)


def _unique(*groups: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(w for group in groups for w in group))


def _agree(table: Mapping, agreement: _Agreement):
    for key in agreement.lookup_order():
        if key is not None and key in table:
            return table[key]
    raise KeyError(f"no form for {agreement} among {list(table)}; add one to the language's table")


def _inflect(value, forms: Mapping, agreement: _Agreement) -> str:
    while isinstance(value, dict):
        value = _agree(value, agreement)
    return _agree(forms, agreement).format(*value) if isinstance(value, tuple) else value


def _render(lang: Language, template, values: Mapping[str, str], agreement: _Agreement) -> str:
    """`template` (or its agreeing form) filled from `values` and the table's constants, spaces tidied (none
    before a comma, so that a part may start with one: Russian ", входя в кадр" after the verb or direction)."""
    while isinstance(template, dict):
        template = _agree(template, agreement)
    words = {}
    for name in _slots(template):
        if name not in values and name not in lang.constants:
            raise KeyError(f"language {lang.code!r}: template {template!r} names {name!r}, which is neither a part "
                           f"({sorted(values)}) nor one of its constants; add it to the table's constants")
        words[name] = _Word(values[name] if name in values else _inflect(lang.constants[name], {}, agreement))
    return " ".join(template.format(**words).split()).replace(" ,", ",")


def _state(obj: SceneObject) -> str:
    return "still" if obj.motion == "still" else "moving"


def noun_phrase(lang: Language, obj: SceneObject, case: str, rng: np.random.Generator) -> tuple[str, str, str | None]:
    """(bare noun phrase, noun phrase with its article or counter, gender) of `obj` in `case`."""
    drawn, gender = dict.fromkeys(("size", "colour", "shape", "link"), ""), None
    for step in lang.noun_draws:
        if step == "link":  # a linking word (Chinese 的): always after a size word, else at the table's chance
            word, chance = lang.link
            drawn["link"] = word if drawn["size"] or rng.random() < chance else ""
            continue
        attribute = {"shape": obj.shape, "colour": obj.colour, "size": obj.size_word}[step]
        if attribute is not None:
            drawn[step] = _pick(rng, getattr(lang, _NOUN_TABLES[step])[attribute])
    if isinstance(drawn["shape"], tuple):  # (noun, gender)
        drawn["shape"], gender = drawn["shape"]
    agreement = _Agreement(None, gender, case, _state(obj))
    forms = {"shape": lang.noun_forms, "colour": lang.adjective_forms, "size": lang.adjective_forms, "link": {}}
    noun = _render(lang, lang.noun, {k: _inflect(v, forms[k], agreement) for k, v in drawn.items()}, agreement)
    return noun, _render(lang, lang.subject, {"noun": noun}, agreement), gender


def _entry_parts(entry, names: tuple[str, ...]) -> dict:
    return {names[0]: entry} if len(names) == 1 else dict(zip(names, entry))


def _motion_entries(lang: Language, obj: SceneObject, rng: np.random.Generator) -> dict:
    """One object's motion words, drawn in the table's order and not yet inflected."""
    if obj.motion == "still":
        return _entry_parts(_pick(rng, lang.still), lang.still_parts)
    own, use_own, parts = lang.direction_verbs.get(obj.motion, ()), False, {}
    for step in lang.motion_draws:
        if step == "own":  # a verb that carries the direction itself ("rises"), which then needs no direction
            use_own = bool(own) and rng.random() < lang.direction_verb_chance
        elif step == "verb":
            pool = (*lang.verbs, *own) if lang.direction_verbs_take_direction else lang.verbs
            parts.update(_entry_parts(_pick(rng, own if use_own else pool), lang.verb_parts))
        elif step == "direction" and not use_own:
            parts["direction"] = _pick(rng, lang.directions[obj.motion])
        elif step == "speed" and obj.speed_word:
            parts["speed"] = _pick(rng, lang.speeds[obj.speed_word])
        elif step == "event" and obj.event:
            parts[lang.event_parts.get(obj.event, "event")] = _pick(rng, lang.events[obj.event])
    return parts


def motion(lang: Language, obj: SceneObject, rng: np.random.Generator, agreement: _Agreement) -> dict[str, str]:
    """One object's motion: each part inflected, and the whole phrase in the table's word order as "motion"."""
    entries = _motion_entries(lang, obj, rng)
    still = obj.motion == "still" and lang.still_forms is not None
    forms = lang.still_forms if still else lang.forms
    values = dict.fromkeys(_MOTION_PARTS, "") | {k: _inflect(v, forms, agreement) for k, v in entries.items()}
    return values | {"motion": _render(lang, lang.motion, values, agreement)}


def phrase(lang: Language, obj: SceneObject, slot: str, rng: np.random.Generator, index: int, count: int) -> str:
    """One object's words for `slot`; index and count place it in the list (a verb form may depend on it)."""
    spec = lang.slots[slot]
    if index > 0 and "after_first" in spec:  # e.g. German verb-second: only the first object inverts
        spec = lang.slots[spec["after_first"]]
    case = spec.get("case", "nom")
    noun, subject, gender = noun_phrase(lang, obj, case, rng)
    form = spec.get("form_before_last") if index < count - 1 and "form_before_last" in spec else spec.get("form")
    if "form_any" in spec:
        form = _pick(rng, spec["form_any"])
    agreement = _Agreement(form, gender, case, _state(obj))
    values = motion(lang, obj, rng, agreement) | {"noun": noun, "subject": subject}
    return _render(lang, spec["text"], values, agreement)


def join(lang: Language, parts: list[str], slot: str) -> str:
    """The objects' phrases for `slot` as "a", "a and b", "a, b and c"; a slot may set its own conj and sep, a
    template for every item but the last ("item") and one for the whole list ("list")."""
    spec = lang.slots[slot]
    if "item" in spec:
        parts = [spec["item"].format(_Word(p)) for p in parts[:-1]] + parts[-1:]
    conj, sep = spec.get("conj", lang.conj), spec.get("sep", lang.sep)
    text = parts[0] if len(parts) == 1 else sep.join(parts[:-1]) + conj + parts[-1]
    return spec["list"].format(_Word(text)) if "list" in spec else text


def write(lang: Language, template: str, objects: Sequence[SceneObject], rng: np.random.Generator) -> str:
    """`template` (one sentence frame) with every slot filled for `objects`, tidied and capitalised."""
    count = len(objects)
    filled = {
        slot: join(lang, [phrase(lang, o, slot, rng, i, count) for i, o in enumerate(objects)], slot)
        for slot in _slots(template)
    }
    text = " ".join(template.format(**filled).split())
    return text[:1].upper() + text[1:] if lang.capitalise else text


def says_static_camera(lang: Language, frame: Frame) -> bool:
    return any(w in t for t in ((frame,) if isinstance(frame, str) else frame) for w in lang.static_camera)


# ----------------------------------------------------------------------------------------------------------------
# plain prompts (world/plain_captions.py): a frame over one object's slots {n, b, v, m, d}


def says_motion(frame: str) -> bool:
    """Whether a plain frame says how its objects move; one that does not captions still scenes only."""
    return any(slot in frame for slot in ("{v}", "{m}", "{d}"))


def plain_parts(lang: Language, obj: SceneObject, rng: np.random.Generator) -> dict[str, str]:
    """One object's plain slots {n, b, v, m, d}, the noun drawn once so that they agree: the direction first, then
    the noun, then each motion of the table's plain "draws" in its verb form."""
    plain = lang.plain
    extra = plain.get("directions", {}).get(obj.motion, ())
    d = _pick(rng, plain["still"] if obj.motion == "still" else (*lang.directions[obj.motion], *extra))
    noun, subject, gender = noun_phrase(lang, obj, "nom", rng)
    values = {"d": d, "noun": noun, "subject": subject}
    for name, form in plain["draws"]:
        agreement = _Agreement(form, gender, "nom", _state(obj))
        values[name] = motion(lang, obj, rng, agreement)["motion"]
    agreement = _Agreement(None, gender, "nom", _state(obj))
    templates = _plain_templates(lang)
    return {k: _render(lang, t, values, agreement) for k, t in templates.items()}


def _plain_templates(lang: Language) -> dict:
    """The plain slots: n and b the noun phrase with and without its article, d the direction, each drawn motion
    as itself, unless the table's plain "slots" say otherwise."""
    drawn = {name: "{" + name + "}" for name, _ in lang.plain.get("draws", ())}
    return {"n": "{subject}", "b": "{noun}", "d": "{d}"} | drawn | dict(lang.plain.get("slots", {}))


def plain_caption(lang: Language, frame: str, objects: Sequence[SceneObject], rng: np.random.Generator) -> str:
    """`frame` rendered for each object and joined with the language's plain "and"; spaces tidied, case and
    punctuation left as the frame has them."""
    texts = [frame.format(**plain_parts(lang, o, rng)) for o in objects]
    conj = plain_and(lang)
    text = texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + conj + texts[-1]
    return " ".join(text.split())


def plain_and(lang: Language) -> str:
    return lang.plain.get("and", lang.conj)


# ----------------------------------------------------------------------------------------------------------------
# attribute words


def _all_forms(entry, forms: Mapping) -> tuple[str, ...]:
    """Every form of one vocabulary entry: a string, a tuple through every form of `forms`, or an agreement dict."""
    if isinstance(entry, str):
        return (entry,)
    if isinstance(entry, dict):
        return _unique(*(_all_forms(v, forms) for v in entry.values()))
    return _unique(f.format(*entry) for f in forms.values())


def _strings(entry) -> tuple[str, ...]:
    """The non-empty strings of an entry, in order (a verb's forms or parts)."""
    if isinstance(entry, str):
        return (entry,) if entry else ()
    values = entry.values() if isinstance(entry, dict) else entry
    return _unique(*(_strings(v) for v in values))


def attribute_words(lang: Language) -> Words:
    """Every form of every attribute word of `lang`: {"colour": {colour: forms}, "shape": {...},
    "motion": {motion: forms}, "size": {...}, "speed": {...}}."""
    motion = {m: lang.directions[m] for m in MOTIONS if m != "still"}
    for m, verbs in lang.direction_verbs.items():
        motion[m] = _unique(motion[m], lang.direction_verb_words.get(m) or _strings(verbs))
    motion |= lang.motion_words
    for m, extra in lang.plain.get("directions", {}).items():
        motion[m] = _unique(motion[m], extra)
    still = lang.still_words if lang.still_words is not None else _strings(lang.still)
    motion["still"] = _unique(still, lang.plain.get("still_words", ()))
    nouns = {s: [e[0] if isinstance(e, tuple) else e for e in entries] for s, entries in lang.shapes.items()}
    return {
        "colour": {c: _unique(*(_all_forms(e, lang.adjective_forms) for e in es)) for c, es in lang.colours.items()},
        "shape": {s: _unique(*(_all_forms(n, lang.noun_forms) for n in ns)) for s, ns in nouns.items()},
        "motion": motion,
        "size": {s: _unique(*(_all_forms(e, lang.adjective_forms) for e in es)) for s, es in lang.sizes.items()},
        "speed": dict(lang.speeds),
    }
