"""German: adjective endings after "ein" by gender and case; verb second in main clauses, verb last in relative and
subordinate clauses, so a verb and its reflexive pronoun are separate parts."""

TABLE = {
    "code": "de",
    "conj": " und ",
    "shapes": {
        "circle": (("Kreis", "m"), ("Scheibe", "f")),
        "square": (("Quadrat", "n"),),
        "triangle": (("Dreieck", "n"),),
        "star": (("Stern", "m"),),
    },
    # a stem in a tuple takes the mixed declension after "ein"; "lila" (colloquial purple) is not declined
    "colours": {
        "red": (("rot",),),
        "yellow": (("gelb",),),
        "green": (("grün",),),
        "blue": (("blau",),),
        "purple": (("violett",), "lila"),
        "white": (("weiß",),),
    },
    "sizes": {"small": (("klein",),), "large": (("groß",),)},
    "adjective_forms": {
        ("m", "nom"): "{0}er", ("m", "acc"): "{0}en", ("m", "dat"): "{0}en",
        ("n", "nom"): "{0}es", ("n", "acc"): "{0}es", ("n", "dat"): "{0}en",
        ("f", "nom"): "{0}e", ("f", "acc"): "{0}e", ("f", "dat"): "{0}en",
    },
    "noun_draws": ("shape", "size", "colour"),
    "subject": "{article} {noun}",
    "constants": {
        "article": {
            ("m", "nom"): "ein", ("m", "acc"): "einen", ("m", "dat"): "einem",
            ("n", "nom"): "ein", ("n", "acc"): "ein", ("n", "dat"): "einem",
            ("f", "nom"): "eine", ("f", "acc"): "eine", ("f", "dat"): "einer",
        },
        "relative": {"m": "der", "n": "das", "f": "die"},
    },
    # (finite verb, reflexive pronoun)
    "verbs": (("bewegt", "sich"), ("gleitet", ""), ("wandert", ""), ("schwebt", ""), ("zieht", ""), ("rutscht", "")),
    "verb_parts": ("verb", "refl"),
    "direction_verbs": {"up": (("steigt", ""),), "down": (("sinkt", ""), ("fällt", ""))},
    "direction_verbs_take_direction": True,  # "steigt nach oben": one of the verbs, still with its direction
    "motion_draws": ("verb", "speed", "direction", "event"),
    "directions": {
        "left": ("nach links", "zum linken Rand", "in Richtung links"),
        "right": ("nach rechts", "zum rechten Rand", "in Richtung rechts"),
        "up": ("nach oben", "zum oberen Rand", "aufwärts"),
        "down": ("nach unten", "zum unteren Rand", "abwärts"),
        "up-left": ("nach links oben", "schräg nach oben links", "zur linken oberen Ecke"),
        "up-right": ("nach rechts oben", "schräg nach oben rechts", "zur rechten oberen Ecke"),
        "down-left": ("nach links unten", "schräg nach unten links", "zur linken unteren Ecke"),
        "down-right": ("nach rechts unten", "schräg nach unten rechts", "zur rechten unteren Ecke"),
    },
    # (verb, reflexive, what takes the direction's place); "seinem/ihrem Platz" agrees with the noun
    "still": (
        ("bewegt", "sich", "nicht"),
        ("bleibt", "", "reglos"),
        ("bleibt", "", {"m": "an seinem Platz", "n": "an seinem Platz", "f": "an ihrem Platz"}),
        ("verharrt", "", "an Ort und Stelle"),
        ("ruht", "", "an einer Stelle"),
    ),
    "still_parts": ("verb", "refl", "direction"),
    "speeds": {"slow": ("langsam",), "fast": ("schnell", "zügig")},
    # bounce is a separable verb's clause: (main clause, verb-last) forms, after the verb in either order
    "events": {
        "enter": ("ins Bild", "von außen ins Bild"),
        "exit": ("aus dem Bild", "aus dem Bild heraus"),
        "bounce": (
            ("und prallt von den Rändern ab", "und von den Rändern abprallt"),
            ("und springt von den Wänden zurück", "und von den Wänden zurückspringt"),
        ),
    },
    "event_parts": {"bounce": "tail"},
    "forms": {"main": "{0}", "verb_last": "{1}"},
    "motion": "{verb} {refl} {speed} {direction} {event} {tail}",
    "slots": {
        "fin": {"text": "{subject} {motion}", "form": "main"},
        # verb second: the frame's opening phrase takes the first place, so the first object's verb comes first
        "inv": {"text": "{verb} {refl} {subject} {speed} {direction} {event} {tail}", "form": "main",
                "after_first": "fin"},
        "sub": {"text": "{subject} {refl} {speed} {direction} {event} {verb} {tail}", "form": "verb_last"},
        # a relative clause is closed by a comma before the next object
        "nom_rel": {"text": "{subject}, {relative} {refl} {speed} {direction} {event} {verb} {tail}",
                    "form": "verb_last", "conj": ", und "},
        "acc_rel": {"text": "{subject}, {relative} {refl} {speed} {direction} {event} {verb} {tail}",
                    "form": "verb_last", "conj": ", und ", "case": "acc"},
        "dat_rel": {"text": "{subject}, {relative} {refl} {speed} {direction} {event} {verb} {tail}",
                    "form": "verb_last", "conj": ", und ", "case": "dat"},
    },
    "frames": (
        "{fin}.",
        "Im Video {inv}.",
        "Man sieht {acc_rel}.",
        "Ein Video mit {dat_rel}.",
        "Auf schwarzem Hintergrund {inv}.",
        ("Zu sehen ist {nom_rel}.", "Zu sehen sind {nom_rel}."),
        "{nom_rel}.",
        "Wir sehen {acc_rel}.",
        "Das Video zeigt {acc_rel}.",
        "In der Szene {inv}.",
        "Es gibt {acc_rel}.",
        "Vor schwarzem Hintergrund {inv}.",
        ("Die Szene zeigt eine einzige Form: {acc_rel}.", "Die Szene zeigt zwei Formen: {acc_rel}."),
        "Die Kamera steht fest, während {sub}.",
    ),
    "static_camera": ("Kamera",),
    "still_words": ("nicht", "reglos", "Platz", "an Ort und Stelle", "an einer Stelle"),
    "plain": {
        "frames": ("{n} {d}", "{b} {d}", "{b}, {d}", "{n}, {d}", "{b} {v}", "{b}", "{n}"),
        "training_frames": ("{n} {v}", "{b}: {d}", "{d}: {n}", "{n} – {d}", "{n} auf schwarzem Grund", "{b} auf Schwarz"),
        "still": ("reglos",),
        "draws": (("v", "main"),),
        "slots": {"m": "{d}"},  # "ein roter Kreis nach links": the direction is German's plain modifier
    },
}  # fmt: skip
