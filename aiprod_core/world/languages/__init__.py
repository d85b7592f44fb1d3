"""The caption languages, one table each: data only, read by the one grammar in world/grammar.py.

Adding a language: write `<code>.py` with a `TABLE` dict (copy the nearest language), add it to `TABLES` below,
and run tests/test_world.py, which checks that every caption names its scene's colour, shape and motion.

The fields of a table (defaults in grammar.Language):
  code                 the language code, as captions name it ("en")
  colours, shapes, sizes, speeds, directions
                       attribute -> synonyms. A shape entry is a noun or (noun, gender); a noun or adjective that
                       inflects is a tuple of forms, chosen through `noun_forms` / `adjective_forms`
  verbs, direction_verbs, still, events
                       motion synonyms: verbs for any direction, verbs that carry a direction ("rises"), phrases
                       for an object that stands still, and bounce/enter/exit phrases; an entry that inflects is a
                       tuple of forms chosen through `forms` (`still_forms` for `still` when they differ). An entry
                       may instead hold several parts (`verb_parts`, `still_parts`: e.g. German verb + reflexive)
  noun, subject, motion
                       templates: the bare noun phrase, the noun phrase with its article or counter, and the motion
                       in its usual word order
  noun_draws, motion_draws
                       the order in which a noun's and a motion's words are drawn (keeps each seed's caption)
  direction_verb_chance, direction_verbs_take_direction
                       how often a direction verb replaces verb + direction; or (German) direction verbs are drawn
                       among the others and keep their direction
  link                 (word, chance): a word between colour and noun, always after a size word (Chinese 的)
  event_parts          event -> the part it fills instead of "event" (German bounce: a clause after the verb)
  constants            words the templates name: a string or an agreement dict ({"m": "un", "f": "une"})
  slots                a frame's slot -> {"text": template for one object, "case", "form" (verb form),
                       "form_before_last", "form_any" (drawn), "after_first" (slot for later objects),
                       "conj", "sep", "item", "list" (how the objects' phrases are joined)}
  frames               sentence frames: a template, or a (one object, several objects) pair
  conj, sep, capitalise
                       how phrases are joined by default, and whether a caption starts with a capital
  static_camera        the words that mark a frame calling the camera static (skipped for camera moves)
  still_words, direction_verb_words, motion_words
                       what `attribute_words` lists where the vocabulary alone would not say it
  plain                plain prompts (world/plain_captions.py): "frames" (evaluation), "training_frames",
                       "still" ({d} for a still object), "draws" ((slot, verb form) of each motion drawn),
                       "slots" (templates for n, b, v, m, d), "directions", "still_words", "and"
"""

from . import ar, de, en, es, fr, hi, it, ja, ko, pt, ru, zh

# the order of LANGUAGES: a seed's language is drawn from it, so it never changes
TABLES = tuple(m.TABLE for m in (en, fr, de, es, it, pt, ru, zh, ja, ko, ar, hi))
