"""Italian (the Romance pattern of _romance.py). A gerund cannot modify a noun ("un cerchio rosso muovendosi" is
wrong), so the participle slot uses the relative clause."""

from ._romance import ROMANCE

TABLE = {
    **ROMANCE,
    "code": "it",
    "conj": " e ",
    "constants": {"article": {"m": "un", "f": "una"}, "relative": "che"},
    "slots": {**ROMANCE["slots"], "part": ROMANCE["slots"]["rel"]},
    "shapes": {
        "circle": (("cerchio", "m"), ("disco", "m")),
        "square": (("quadrato", "m"),),
        "triangle": (("triangolo", "m"),),
        "star": (("stella", "f"),),
    },
    "colours": {
        "red": (("rosso", "rossa"),),
        "yellow": (("giallo", "gialla"),),
        "green": (("verde", "verde"),),
        "blue": (("blu", "blu"),),
        "purple": (("viola", "viola"), ("violetto", "violetta")),
        "white": (("bianco", "bianca"),),
    },
    "sizes": {"small": (("piccolo", "piccola"),), "large": (("grande", "grande"), ("grosso", "grossa"))},
    "verbs": (
        ("si muove", "muovendosi"),
        ("si sposta", "spostandosi"),
        ("scivola", "scivolando"),
        ("avanza", "avanzando"),
        ("va", "andando"),
        ("si dirige", "dirigendosi"),
    ),
    "direction_verbs": {
        "up": (("sale", "salendo"), ("si alza", "alzandosi")),
        "down": (("scende", "scendendo"), ("cade", "cadendo")),
    },
    "directions": {
        "left": ("verso sinistra", "a sinistra", "verso il bordo sinistro"),
        "right": ("verso destra", "a destra", "verso il bordo destro"),
        "up": ("verso l'alto", "verso il bordo superiore"),
        "down": ("verso il basso", "verso il bordo inferiore"),
        "up-left": ("verso l'alto a sinistra", "in diagonale verso l'alto e a sinistra", "verso l'angolo in alto a sinistra"),
        "up-right": ("verso l'alto a destra", "in diagonale verso l'alto e a destra", "verso l'angolo in alto a destra"),
        "down-left": ("verso il basso a sinistra", "in diagonale verso il basso e a sinistra", "verso l'angolo in basso a sinistra"),
        "down-right": ("verso il basso a destra", "in diagonale verso il basso e a destra", "verso l'angolo in basso a destra"),
    },
    "still": (
        ("rimane immobile", "rimanendo immobile"),
        ("non si muove", "senza muoversi"),
        ("resta al suo posto", "restando al suo posto"),
        ("sta immobile", "immobile"),
    ),
    "speeds": {"slow": ("lentamente", "piano"), "fast": ("rapidamente", "velocemente")},
    "events": {
        "bounce": ("rimbalzando sui bordi", "rimbalzando contro i bordi"),
        "enter": ("entrando nell'inquadratura", "entrando nell'immagine"),
        "exit": ("fino a uscire dall'inquadratura", "fino a uscire dall'immagine"),
    },
    "frames": (
        "{fin}.",
        "{rel}.",
        "Nel video, {fin}.",
        ("Si vede {rel}.", "Si vedono {rel}."),
        "Un video in cui {fin}.",
        "Su uno sfondo nero, {fin}.",
        ("C'è {rel}.", "Ci sono {rel}."),
        ("La scena mostra una sola forma: {part}.", "La scena mostra due forme: {part}."),
        "Vediamo {rel}.",
        "La telecamera è ferma mentre {fin}.",
        ("Su sfondo nero appare {rel}.", "Su sfondo nero appaiono {rel}."),
        "Animazione semplice: {part}.",
        "Questa clip mostra {rel}.",
    ),
    "static_camera": ("telecamera",),
    "plain": {
        **ROMANCE["plain"],
        "frames": ("{b} {m}", "{b}, {m}", "{n}, {m}", "{b} {d}", "{n} {d}", "{b}", "{n}"),
        "training_frames": ("{n} {m}", "{n} {v}", "{b} {v}", "{b}: {d}", "{n} su sfondo nero", "{b} su sfondo nero"),
        "still": ("immobile",),
    },
}  # fmt: skip
