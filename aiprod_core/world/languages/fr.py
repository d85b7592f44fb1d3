"""French (the Romance pattern of _romance.py)."""

from ._romance import ROMANCE

TABLE = {
    **ROMANCE,
    "code": "fr",
    "conj": " et ",
    "constants": {"article": {"m": "un", "f": "une"}, "relative": "qui"},
    "shapes": {
        "circle": (("cercle", "m"), ("disque", "m")),
        "square": (("carré", "m"),),
        "triangle": (("triangle", "m"),),
        "star": (("étoile", "f"),),
    },
    "colours": {
        "red": (("rouge", "rouge"),),
        "yellow": (("jaune", "jaune"),),
        "green": (("vert", "verte"),),
        "blue": (("bleu", "bleue"),),
        "purple": (("violet", "violette"), ("mauve", "mauve")),
        "white": (("blanc", "blanche"),),
    },
    "sizes": {"small": (("petit", "petite"),), "large": (("grand", "grande"), ("gros", "grosse"))},
    "verbs": (
        ("se déplace", "se déplaçant"),
        ("glisse", "glissant"),
        ("avance", "avançant"),
        ("se dirige", "se dirigeant"),
        ("dérive", "dérivant"),
        ("va", "allant"),
        ("file", "filant"),
    ),
    "direction_verbs": {
        "up": (("monte", "montant"), ("s'élève", "s'élevant")),
        "down": (("descend", "descendant"), ("tombe", "tombant")),
    },
    "directions": {
        "left": ("vers la gauche", "vers le bord gauche", "sur la gauche"),
        "right": ("vers la droite", "vers le bord droit", "sur la droite"),
        "up": ("vers le haut", "vers le bord supérieur"),
        "down": ("vers le bas", "vers le bord inférieur"),
        "up-left": ("vers le haut à gauche", "en diagonale vers le haut et la gauche", "vers le coin supérieur gauche"),
        "up-right": ("vers le haut à droite", "en diagonale vers le haut et la droite", "vers le coin supérieur droit"),
        "down-left": ("vers le bas à gauche", "en diagonale vers le bas et la gauche", "vers le coin inférieur gauche"),
        "down-right": ("vers le bas à droite", "en diagonale vers le bas et la droite", "vers le coin inférieur droit"),
    },
    "still": (
        ("reste immobile", "restant immobile"),
        ("ne bouge pas", "ne bougeant pas"),
        ("reste en place", "restant en place"),
        ("est immobile", "immobile"),
        ("demeure immobile", "demeurant immobile"),
    ),
    "speeds": {"slow": ("lentement",), "fast": ("rapidement", "vite")},
    "events": {
        "bounce": ("en rebondissant sur les bords", "en rebondissant contre les bords"),
        "enter": ("en entrant dans l'image", "en entrant dans le cadre"),
        "exit": ("jusqu'à sortir de l'image", "jusqu'à quitter le cadre"),
    },
    "frames": (
        "{fin}.",
        "{rel}.",
        "Dans la vidéo, {fin}.",
        "On voit {rel}.",
        "Une vidéo où {fin}.",
        "Sur un fond noir, {fin}.",
        "Il y a {rel}.",
        ("La scène montre une seule forme : {part}.", "La scène montre deux formes : {part}."),
        "Nous voyons {rel}.",
        "Plan fixe : {fin}.",
        ("Sur fond noir apparaît {rel}.", "Sur fond noir apparaissent {rel}."),
        "Animation simple : {part}.",
        "Cette séquence montre {rel}.",
    ),
    "static_camera": ("Plan fixe",),  # a fixed shot: French frames name no camera
    "plain": {
        **ROMANCE["plain"],
        "frames": ("{b} {m}", "{b}, {m}", "{n}, {m}", "{b} {d}", "{n} {d}", "{b}", "{n}"),
        "training_frames": ("{n} {m}", "{n} {v}", "{b} {v}", "{b} : {d}", "{n} sur fond noir", "{b} sur fond noir"),
        "still": ("immobile",),
        "directions": {"left": ("à gauche",), "right": ("à droite",)},  # as people type them; frames do not
    },
}  # fmt: skip
