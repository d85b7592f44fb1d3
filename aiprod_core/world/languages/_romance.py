"""What French, Spanish, Italian and Portuguese share: "un petit cercle rouge qui se déplace vers la gauche".

Article + [size] + noun + colour, the adjectives agreeing in gender with the noun ((masculine, feminine) forms);
verbs are (finite, gerund) pairs; bounce/enter/exit phrases are adverbial, so they follow either form.
"""

ROMANCE = {
    "noun": "{size} {shape} {colour}",
    "subject": "{article} {noun}",
    "noun_draws": ("shape", "size", "colour"),
    "adjective_forms": {"m": "{0}", "f": "{1}"},
    "forms": {"finite": "{0}", "gerund": "{1}"},
    "slots": {
        "fin": {"text": "{subject} {motion}", "form": "finite"},
        "rel": {"text": "{subject} {relative} {motion}", "form": "finite"},
        "part": {"text": "{subject} {motion}", "form": "gerund"},
    },
    "plain": {"draws": (("v", "finite"),), "slots": {"m": "{relative} {v}"}},
}
