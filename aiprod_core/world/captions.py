"""Captions for world scenes in twelve languages, with many sentence frames so that only attribute words matter.

Each language has a grammar: inflected noun phrases for (size, colour, shape) in the cases its frames need, motion
phrases with synonyms (verbs, direction expressions, speed adverbs, bounce/enter/exit phrases), and 13-14 sentence
frames with named slots. A slot is filled with one phrase per object, joined with the language's "and"; a frame is
either one string or a (one object, two objects) pair where the frame itself agrees in number.

About a quarter of each language's frames (at least 2) are held out: `caption(..., split="train")` never uses them
and `split="heldout"` uses only them, so prompt adherence can be measured on sentences the model never saw, where
only the attribute words are familiar. Two more splits hold plain prompts, the short phrasing a person types
("a red circle moving left"; plain_captions.py): "plain", kept out of training for evaluation, and
"train-plain", other plain styles a training phase may mix in. `attribute_words` lists every form of every attribute word so that a test
(or a metric) can check that a caption names what its scene shows.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np

from .plain_captions import (
    PLAIN_DIRECTIONS,
    PLAIN_FRAMES,
    PLAIN_STILL_WORDS,
    PLAIN_TRAINING_FRAMES,
    plain_caption,
    says_motion,
)
from .scenes import MOTIONS, Scene, SceneObject

LANGUAGES = ("en", "fr", "de", "es", "it", "pt", "ru", "zh", "ja", "ko", "ar", "hi")
SPLITS = ("train", "heldout", "plain", "train-plain")
PLAIN_SPLITS = ("plain", "train-plain")
# A frame is one template, or a (one object, several objects) pair when the frame's own words agree in number.
Frame = str | tuple[str, str]
Words = dict[str, dict[str, tuple[str, ...]]]


def _table(entries: dict) -> Mapping:
    """A read-only view of a vocabulary table, so that the class-level tables shared by every caption stay fixed."""
    return MappingProxyType(entries)


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _and(parts: list[str], conj: str, sep: str = ", ") -> str:
    """Join phrases as "a", "a and b", "a, b and c" with the language's conjunction (conj has its own spaces)."""
    if len(parts) == 1:
        return parts[0]
    return sep.join(parts[:-1]) + conj + parts[-1]


def _unique(*groups: Sequence[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for group in groups:
        for word in group:
            seen.setdefault(word, None)
    return tuple(seen)


class _Grammar:
    """One language. Subclasses set `frames` and implement `phrase` (one object's words for a slot) and `words`."""

    code = ""
    conj = " and "
    frames: tuple[Frame, ...] = ()

    def phrase(self, obj: SceneObject, slot: str, rng: np.random.Generator, index: int, count: int) -> str:
        raise NotImplementedError

    def join(self, parts: list[str], slot: str) -> str:
        return _and(parts, self.conj)

    def words(self) -> Words:
        raise NotImplementedError

    def finish(self, text: str) -> str:
        """Capitalise the first letter (a no-op for scripts without case) and tidy spaces."""
        text = " ".join(text.split())
        return text[:1].upper() + text[1:]


# ----------------------------------------------------------------------------------------------------------------
# English


class _English(_Grammar):
    code = "en"
    colours = _table(
        {
            "red": ("red",),
            "yellow": ("yellow",),
            "green": ("green",),
            "blue": ("blue",),
            "purple": ("purple", "violet"),
            "white": ("white",),
        }
    )
    shapes = _table(
        {"circle": ("circle", "disc"), "square": ("square",), "triangle": ("triangle",), "star": ("star",)}
    )
    sizes = _table({"small": ("small", "little", "tiny"), "large": ("large", "big")})
    # (participle, third person) pairs
    verbs = (
        ("moving", "moves"),
        ("heading", "heads"),
        ("drifting", "drifts"),
        ("sliding", "slides"),
        ("travelling", "travels"),
        ("gliding", "glides"),
        ("going", "goes"),
    )
    directions = _table(
        {
            "left": ("left", "to the left", "leftward", "toward the left"),
            "right": ("right", "to the right", "rightward", "toward the right"),
            "up": ("up", "upward", "toward the top"),
            "down": ("down", "downward", "toward the bottom"),
            "up-left": ("up and to the left", "toward the upper left", "diagonally up and left"),
            "up-right": ("up and to the right", "toward the upper right", "diagonally up and right"),
            "down-left": ("down and to the left", "toward the lower left", "diagonally down and left"),
            "down-right": ("down and to the right", "toward the lower right", "diagonally down and right"),
        }
    )
    # verbs that carry the direction themselves
    direction_verbs = _table(
        {
            "up": (("rising", "rises"), ("climbing", "climbs")),
            "down": (("falling", "falls"), ("sinking", "sinks"), ("dropping", "drops")),
        }
    )
    still = (
        ("standing still", "stands still"),
        ("staying still", "stays still"),
        ("not moving", "does not move"),
        ("resting in place", "rests in place"),
        ("holding still", "holds still"),
        ("remaining motionless", "remains motionless"),
    )
    speeds = _table({"slow": ("slowly",), "fast": ("quickly", "rapidly", "swiftly")})
    enter = ("into view", "into the frame")
    exit = ("out of view", "out of the frame")
    bounce = (
        ("bouncing off the edge", "bounces off the edge"),
        ("bouncing off the wall", "bounces off the wall"),
    )
    frames = (
        "{part}.",
        "{fin}.",
        "In the video, {fin}.",
        "We see {part}.",
        "A video of {part}.",
        "On a black background, {prog}.",
        ("A clip with one shape: {part}.", "A clip with two shapes: {part}."),
        "The camera is static while {fin}.",
        "{part}, against a black backdrop.",
        "Footage showing {part}.",
        "Watch as {fin}.",
        "Simple animation: {part} on a dark background.",
        "In this clip {prog}.",
        ("The scene contains a single shape, {part}.", "The scene contains two shapes, {part}."),
    )

    def noun_phrase(self, obj: SceneObject, rng: np.random.Generator) -> str:
        size = _pick(rng, self.sizes[obj.size_word]) + " " if obj.size_word else ""
        return f"a {size}{_pick(rng, self.colours[obj.colour])} {_pick(rng, self.shapes[obj.shape])}"

    def motion(self, obj: SceneObject, rng: np.random.Generator, form: int) -> str:
        """form 0: participle ("moving left"), 1: third person ("moves left")."""
        if obj.motion == "still":
            return _pick(rng, [pair[form] for pair in self.still])
        speed = " " + _pick(rng, self.speeds[obj.speed_word]) if obj.speed_word else ""
        own = self.direction_verbs.get(obj.motion, ())
        if own and rng.random() < 0.3:
            text = _pick(rng, [pair[form] for pair in own]) + speed
        else:
            verb = _pick(rng, [pair[form] for pair in self.verbs])
            text = f"{verb}{speed} {_pick(rng, self.directions[obj.motion])}"
        if obj.event == "enter":
            text += " " + _pick(rng, self.enter)
        elif obj.event == "exit":
            text += " " + _pick(rng, self.exit)
        elif obj.event == "bounce":
            text += " and " + _pick(rng, [pair[form] for pair in self.bounce])
        return text

    def phrase(self, obj: SceneObject, slot: str, rng: np.random.Generator, index: int, count: int) -> str:
        subject = self.noun_phrase(obj, rng)
        if slot == "part":
            return f"{subject} {self.motion(obj, rng, 0)}"
        if slot == "fin":
            return f"{subject} {self.motion(obj, rng, 1)}"
        if slot == "prog":
            return f"{subject} is {self.motion(obj, rng, 0)}"
        raise KeyError(slot)

    def words(self) -> Words:
        motion = {m: self.directions[m] for m in MOTIONS if m != "still"}
        for m, pairs in self.direction_verbs.items():
            motion[m] = _unique(motion[m], *pairs)
        motion["still"] = ("still", "not move", "not moving", "in place", "motionless")
        return {
            "colour": dict(self.colours),
            "shape": dict(self.shapes),
            "motion": motion,
            "size": dict(self.sizes),
            "speed": dict(self.speeds),
        }


# ----------------------------------------------------------------------------------------------------------------
# Romance languages: article + [size] + noun + colour, the adjectives agreeing in gender with the noun


class _Romance(_Grammar):
    """French, Spanish, Italian and Portuguese share one pattern: "un petit cercle rouge qui se déplace vers la
    gauche". Tables give (masculine, feminine) forms; verbs are (finite, gerund) pairs; bounce/enter/exit phrases
    are adverbial so they follow either form."""

    articles = _table({"m": "", "f": ""})
    shapes: Mapping[str, tuple[tuple[str, str], ...]] = _table({})  # shape -> ((noun, gender), ...)
    colours: Mapping[str, tuple[tuple[str, str], ...]] = _table({})  # colour -> ((masculine, feminine), ...)
    sizes: Mapping[str, tuple[tuple[str, str], ...]] = _table({})  # placed before the noun
    verbs: tuple[tuple[str, str], ...] = ()
    direction_verbs: Mapping[str, tuple[tuple[str, str], ...]] = _table({})
    directions: Mapping[str, tuple[str, ...]] = _table({})
    still: tuple[tuple[str, str], ...] = ()
    speeds: Mapping[str, tuple[str, ...]] = _table({})
    events: Mapping[str, tuple[str, ...]] = _table({})
    relative = ""
    # Italian cannot use a gerund as a noun modifier ("un cerchio rosso muovendosi" is wrong): use the relative
    gerund_modifies = True

    def noun_phrase(self, obj: SceneObject, rng: np.random.Generator) -> str:
        noun, gender = self.shapes[obj.shape][int(rng.integers(len(self.shapes[obj.shape])))]
        g = 0 if gender == "m" else 1
        size = (
            self.sizes[obj.size_word][int(rng.integers(len(self.sizes[obj.size_word])))][g] + " "
            if obj.size_word
            else ""
        )
        colour = self.colours[obj.colour][int(rng.integers(len(self.colours[obj.colour])))][g]
        return f"{self.articles[gender]} {size}{noun} {colour}"

    def motion(self, obj: SceneObject, rng: np.random.Generator, form: int) -> str:
        """form 0: finite third person ("se déplace vers la gauche"), 1: gerund ("se déplaçant vers la gauche")."""
        if obj.motion == "still":
            return _pick(rng, [pair[form] for pair in self.still])
        speed = " " + _pick(rng, self.speeds[obj.speed_word]) if obj.speed_word else ""
        own = self.direction_verbs.get(obj.motion, ())
        if own and rng.random() < 0.3:
            text = _pick(rng, [pair[form] for pair in own]) + speed
        else:
            verb = _pick(rng, [pair[form] for pair in self.verbs])
            text = f"{verb}{speed} {_pick(rng, self.directions[obj.motion])}"
        if obj.event:
            text += " " + _pick(rng, self.events[obj.event])
        return text

    def phrase(self, obj: SceneObject, slot: str, rng: np.random.Generator, index: int, count: int) -> str:
        subject = self.noun_phrase(obj, rng)
        if slot == "fin":
            return f"{subject} {self.motion(obj, rng, 0)}"
        if slot == "rel" or (slot == "part" and not self.gerund_modifies):
            return f"{subject} {self.relative} {self.motion(obj, rng, 0)}"
        if slot == "part":
            return f"{subject} {self.motion(obj, rng, 1)}"
        raise KeyError(slot)

    def words(self) -> Words:
        motion = {m: self.directions[m] for m in MOTIONS if m != "still"}
        for m, pairs in self.direction_verbs.items():
            motion[m] = _unique(motion[m], *pairs)
        motion["still"] = _unique(*self.still)
        return {
            "colour": {c: _unique(*forms) for c, forms in self.colours.items()},
            "shape": {s: tuple(noun for noun, _ in nouns) for s, nouns in self.shapes.items()},
            "motion": motion,
            "size": {s: _unique(*forms) for s, forms in self.sizes.items()},
            "speed": dict(self.speeds),
        }


class _French(_Romance):
    code = "fr"
    conj = " et "
    articles = _table({"m": "un", "f": "une"})
    shapes = _table(
        {
            "circle": (("cercle", "m"), ("disque", "m")),
            "square": (("carré", "m"),),
            "triangle": (("triangle", "m"),),
            "star": (("étoile", "f"),),
        }
    )
    colours = _table(
        {
            "red": (("rouge", "rouge"),),
            "yellow": (("jaune", "jaune"),),
            "green": (("vert", "verte"),),
            "blue": (("bleu", "bleue"),),
            "purple": (("violet", "violette"), ("mauve", "mauve")),
            "white": (("blanc", "blanche"),),
        }
    )
    sizes = _table({"small": (("petit", "petite"),), "large": (("grand", "grande"), ("gros", "grosse"))})
    verbs = (
        ("se déplace", "se déplaçant"),
        ("glisse", "glissant"),
        ("avance", "avançant"),
        ("se dirige", "se dirigeant"),
        ("dérive", "dérivant"),
        ("va", "allant"),
        ("file", "filant"),
    )
    direction_verbs = _table(
        {
            "up": (("monte", "montant"), ("s'élève", "s'élevant")),
            "down": (("descend", "descendant"), ("tombe", "tombant")),
        }
    )
    directions = _table(
        {
            "left": ("vers la gauche", "vers le bord gauche", "sur la gauche"),
            "right": ("vers la droite", "vers le bord droit", "sur la droite"),
            "up": ("vers le haut", "vers le bord supérieur"),
            "down": ("vers le bas", "vers le bord inférieur"),
            "up-left": (
                "vers le haut à gauche",
                "en diagonale vers le haut et la gauche",
                "vers le coin supérieur gauche",
            ),
            "up-right": (
                "vers le haut à droite",
                "en diagonale vers le haut et la droite",
                "vers le coin supérieur droit",
            ),
            "down-left": (
                "vers le bas à gauche",
                "en diagonale vers le bas et la gauche",
                "vers le coin inférieur gauche",
            ),
            "down-right": (
                "vers le bas à droite",
                "en diagonale vers le bas et la droite",
                "vers le coin inférieur droit",
            ),
        }
    )
    still = (
        ("reste immobile", "restant immobile"),
        ("ne bouge pas", "ne bougeant pas"),
        ("reste en place", "restant en place"),
        ("est immobile", "immobile"),
        ("demeure immobile", "demeurant immobile"),
    )
    speeds = _table({"slow": ("lentement",), "fast": ("rapidement", "vite")})
    events = _table(
        {
            "bounce": ("en rebondissant sur les bords", "en rebondissant contre les bords"),
            "enter": ("en entrant dans l'image", "en entrant dans le cadre"),
            "exit": ("jusqu'à sortir de l'image", "jusqu'à quitter le cadre"),
        }
    )
    relative = "qui"
    frames = (
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
    )


class _Spanish(_Romance):
    code = "es"
    conj = " y "
    articles = _table({"m": "un", "f": "una"})
    shapes = _table(
        {
            "circle": (("círculo", "m"), ("disco", "m")),
            "square": (("cuadrado", "m"),),
            "triangle": (("triángulo", "m"),),
            "star": (("estrella", "f"),),
        }
    )
    colours = _table(
        {
            "red": (("rojo", "roja"),),
            "yellow": (("amarillo", "amarilla"),),
            "green": (("verde", "verde"),),
            "blue": (("azul", "azul"),),
            "purple": (("morado", "morada"), ("violeta", "violeta")),
            "white": (("blanco", "blanca"),),
        }
    )
    sizes = _table({"small": (("pequeño", "pequeña"),), "large": (("gran", "gran"),)})
    verbs = (
        ("se mueve", "moviéndose"),
        ("se desplaza", "desplazándose"),
        ("avanza", "avanzando"),
        ("se dirige", "dirigiéndose"),
        ("va", "yendo"),
        ("se desliza", "deslizándose"),
    )
    direction_verbs = _table(
        {
            "up": (("sube", "subiendo"), ("asciende", "ascendiendo")),
            "down": (("baja", "bajando"), ("cae", "cayendo"), ("desciende", "descendiendo")),
        }
    )
    directions = _table(
        {
            "left": ("hacia la izquierda", "a la izquierda", "hacia el borde izquierdo"),
            "right": ("hacia la derecha", "a la derecha", "hacia el borde derecho"),
            "up": ("hacia arriba", "hacia el borde superior"),
            "down": ("hacia abajo", "hacia el borde inferior"),
            "up-left": (
                "hacia arriba y a la izquierda",
                "en diagonal hacia arriba a la izquierda",
                "hacia la esquina superior izquierda",
            ),
            "up-right": (
                "hacia arriba y a la derecha",
                "en diagonal hacia arriba a la derecha",
                "hacia la esquina superior derecha",
            ),
            "down-left": (
                "hacia abajo y a la izquierda",
                "en diagonal hacia abajo a la izquierda",
                "hacia la esquina inferior izquierda",
            ),
            "down-right": (
                "hacia abajo y a la derecha",
                "en diagonal hacia abajo a la derecha",
                "hacia la esquina inferior derecha",
            ),
        }
    )
    still = (
        ("permanece inmóvil", "permaneciendo inmóvil"),
        ("no se mueve", "sin moverse"),
        ("se queda en su sitio", "quedándose en su sitio"),
        ("sigue inmóvil", "inmóvil"),
    )
    speeds = _table({"slow": ("lentamente", "despacio"), "fast": ("rápidamente", "deprisa")})
    events = _table(
        {
            "bounce": ("rebotando en los bordes", "rebotando contra los bordes"),
            "enter": ("entrando en el encuadre", "entrando en la imagen"),
            "exit": ("hasta salir del encuadre", "hasta salir de la imagen"),
        }
    )
    relative = "que"
    frames = (
        "{fin}.",
        "{rel}.",
        "En el vídeo, {fin}.",
        ("Se ve {rel}.", "Se ven {rel}."),
        "Un vídeo en el que {fin}.",
        "Sobre un fondo negro, {fin}.",
        "Hay {rel}.",
        ("La escena muestra una sola figura: {part}.", "La escena muestra dos figuras: {part}."),
        "Vemos {rel}.",
        "La cámara está fija mientras {fin}.",
        ("Sobre fondo negro aparece {rel}.", "Sobre fondo negro aparecen {rel}."),
        "Animación sencilla: {part}.",
        "Este clip muestra {rel}.",
    )


class _Italian(_Romance):
    code = "it"
    conj = " e "
    articles = _table({"m": "un", "f": "una"})
    shapes = _table(
        {
            "circle": (("cerchio", "m"), ("disco", "m")),
            "square": (("quadrato", "m"),),
            "triangle": (("triangolo", "m"),),
            "star": (("stella", "f"),),
        }
    )
    colours = _table(
        {
            "red": (("rosso", "rossa"),),
            "yellow": (("giallo", "gialla"),),
            "green": (("verde", "verde"),),
            "blue": (("blu", "blu"),),
            "purple": (("viola", "viola"), ("violetto", "violetta")),
            "white": (("bianco", "bianca"),),
        }
    )
    sizes = _table(
        {"small": (("piccolo", "piccola"),), "large": (("grande", "grande"), ("grosso", "grossa"))}
    )
    verbs = (
        ("si muove", "muovendosi"),
        ("si sposta", "spostandosi"),
        ("scivola", "scivolando"),
        ("avanza", "avanzando"),
        ("va", "andando"),
        ("si dirige", "dirigendosi"),
    )
    direction_verbs = _table(
        {
            "up": (("sale", "salendo"), ("si alza", "alzandosi")),
            "down": (("scende", "scendendo"), ("cade", "cadendo")),
        }
    )
    directions = _table(
        {
            "left": ("verso sinistra", "a sinistra", "verso il bordo sinistro"),
            "right": ("verso destra", "a destra", "verso il bordo destro"),
            "up": ("verso l'alto", "verso il bordo superiore"),
            "down": ("verso il basso", "verso il bordo inferiore"),
            "up-left": (
                "verso l'alto a sinistra",
                "in diagonale verso l'alto e a sinistra",
                "verso l'angolo in alto a sinistra",
            ),
            "up-right": (
                "verso l'alto a destra",
                "in diagonale verso l'alto e a destra",
                "verso l'angolo in alto a destra",
            ),
            "down-left": (
                "verso il basso a sinistra",
                "in diagonale verso il basso e a sinistra",
                "verso l'angolo in basso a sinistra",
            ),
            "down-right": (
                "verso il basso a destra",
                "in diagonale verso il basso e a destra",
                "verso l'angolo in basso a destra",
            ),
        }
    )
    still = (
        ("rimane immobile", "rimanendo immobile"),
        ("non si muove", "senza muoversi"),
        ("resta al suo posto", "restando al suo posto"),
        ("sta immobile", "immobile"),
    )
    speeds = _table({"slow": ("lentamente", "piano"), "fast": ("rapidamente", "velocemente")})
    events = _table(
        {
            "bounce": ("rimbalzando sui bordi", "rimbalzando contro i bordi"),
            "enter": ("entrando nell'inquadratura", "entrando nell'immagine"),
            "exit": ("fino a uscire dall'inquadratura", "fino a uscire dall'immagine"),
        }
    )
    relative = "che"
    gerund_modifies = False
    frames = (
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
    )


class _Portuguese(_Romance):
    code = "pt"
    conj = " e "
    articles = _table({"m": "um", "f": "uma"})
    shapes = _table(
        {
            "circle": (("círculo", "m"), ("disco", "m")),
            "square": (("quadrado", "m"),),
            "triangle": (("triângulo", "m"),),
            "star": (("estrela", "f"),),
        }
    )
    colours = _table(
        {
            "red": (("vermelho", "vermelha"),),
            "yellow": (("amarelo", "amarela"),),
            "green": (("verde", "verde"),),
            "blue": (("azul", "azul"),),
            "purple": (("roxo", "roxa"), ("violeta", "violeta")),
            "white": (("branco", "branca"),),
        }
    )
    sizes = _table({"small": (("pequeno", "pequena"),), "large": (("grande", "grande"),)})
    verbs = (
        ("se move", "se movendo"),
        ("se desloca", "se deslocando"),
        ("desliza", "deslizando"),
        ("avança", "avançando"),
        ("vai", "indo"),
        ("segue", "seguindo"),
    )
    direction_verbs = _table(
        {"up": (("sobe", "subindo"),), "down": (("desce", "descendo"), ("cai", "caindo"))}
    )
    directions = _table(
        {
            "left": ("para a esquerda", "rumo à esquerda", "em direção à borda esquerda"),
            "right": ("para a direita", "rumo à direita", "em direção à borda direita"),
            "up": ("para cima", "em direção ao topo"),
            "down": ("para baixo", "em direção à base"),
            "up-left": (
                "para cima e para a esquerda",
                "na diagonal para cima e à esquerda",
                "em direção ao canto superior esquerdo",
            ),
            "up-right": (
                "para cima e para a direita",
                "na diagonal para cima e à direita",
                "em direção ao canto superior direito",
            ),
            "down-left": (
                "para baixo e para a esquerda",
                "na diagonal para baixo e à esquerda",
                "em direção ao canto inferior esquerdo",
            ),
            "down-right": (
                "para baixo e para a direita",
                "na diagonal para baixo e à direita",
                "em direção ao canto inferior direito",
            ),
        }
    )
    still = (
        ("permanece imóvel", "permanecendo imóvel"),
        ("não se move", "sem se mover"),
        ("fica no mesmo lugar", "ficando no mesmo lugar"),
        ("está imóvel", "imóvel"),
    )
    speeds = _table({"slow": ("lentamente", "devagar"), "fast": ("rapidamente", "depressa")})
    events = _table(
        {
            "bounce": ("quicando nas bordas", "ricocheteando nas bordas"),
            "enter": ("entrando no quadro", "entrando na imagem"),
            "exit": ("até sair do quadro", "até sair da imagem"),
        }
    )
    relative = "que"
    frames = (
        "{fin}.",
        "{rel}.",
        "No vídeo, {fin}.",
        ("Vê-se {rel}.", "Veem-se {rel}."),
        "Um vídeo em que {fin}.",
        "Sobre um fundo preto, {fin}.",
        "Há {rel}.",
        ("A cena mostra uma única forma: {part}.", "A cena mostra duas formas: {part}."),
        "Vemos {rel}.",
        "A câmera está parada enquanto {fin}.",
        ("Sobre fundo preto aparece {rel}.", "Sobre fundo preto aparecem {rel}."),
        "Animação simples: {part}.",
        "Este clipe mostra {rel}.",
    )


# ----------------------------------------------------------------------------------------------------------------
# German: adjective endings after "ein" by gender and case; verb second in main clauses, verb last in relatives


class _German(_Grammar):
    code = "de"
    conj = " und "
    shapes = _table(
        {
            "circle": (("Kreis", "m"), ("Scheibe", "f")),
            "square": (("Quadrat", "n"),),
            "triangle": (("Dreieck", "n"),),
            "star": (("Stern", "m"),),
        }
    )
    # stems take the mixed declension after "ein"; "lila" (colloquial purple) is not declined
    colours = _table(
        {
            "red": ("rot",),
            "yellow": ("gelb",),
            "green": ("grün",),
            "blue": ("blau",),
            "purple": ("violett", "lila"),
            "white": ("weiß",),
        }
    )
    undeclined = ("lila",)
    sizes = _table({"small": ("klein",), "large": ("groß",)})
    articles = _table({
        ("m", "nom"): "ein", ("m", "acc"): "einen", ("m", "dat"): "einem",
        ("n", "nom"): "ein", ("n", "acc"): "ein", ("n", "dat"): "einem",
        ("f", "nom"): "eine", ("f", "acc"): "eine", ("f", "dat"): "einer",
    })  # fmt: skip
    endings = _table({
        ("m", "nom"): "er", ("m", "acc"): "en", ("m", "dat"): "en",
        ("n", "nom"): "es", ("n", "acc"): "es", ("n", "dat"): "en",
        ("f", "nom"): "e", ("f", "acc"): "e", ("f", "dat"): "en",
    })  # fmt: skip
    relatives = _table({"m": "der", "n": "das", "f": "die"})
    possessives = _table({"m": "seinem", "n": "seinem", "f": "ihrem"})
    # (finite verb, reflexive pronoun)
    verbs = (
        ("bewegt", "sich"),
        ("gleitet", ""),
        ("wandert", ""),
        ("schwebt", ""),
        ("zieht", ""),
        ("rutscht", ""),
    )
    direction_verbs = _table({"up": (("steigt", ""),), "down": (("sinkt", ""), ("fällt", ""))})
    directions = _table(
        {
            "left": ("nach links", "zum linken Rand", "in Richtung links"),
            "right": ("nach rechts", "zum rechten Rand", "in Richtung rechts"),
            "up": ("nach oben", "zum oberen Rand", "aufwärts"),
            "down": ("nach unten", "zum unteren Rand", "abwärts"),
            "up-left": ("nach links oben", "schräg nach oben links", "zur linken oberen Ecke"),
            "up-right": ("nach rechts oben", "schräg nach oben rechts", "zur rechten oberen Ecke"),
            "down-left": ("nach links unten", "schräg nach unten links", "zur linken unteren Ecke"),
            "down-right": ("nach rechts unten", "schräg nach unten rechts", "zur rechten unteren Ecke"),
        }
    )
    # (verb, reflexive, rest): main clause "verb refl rest", relative clause "refl rest verb"
    still = (
        ("bewegt", "sich", "nicht"),
        ("bleibt", "", "reglos"),
        ("bleibt", "", "an {poss} Platz"),
        ("verharrt", "", "an Ort und Stelle"),
        ("ruht", "", "an einer Stelle"),
    )
    speeds = _table({"slow": ("langsam",), "fast": ("schnell", "zügig")})
    events = _table(
        {"enter": ("ins Bild", "von außen ins Bild"), "exit": ("aus dem Bild", "aus dem Bild heraus")}
    )
    # bounce: (main clause, relative clause) forms of a separable verb
    bounce = (
        ("und prallt von den Rändern ab", "und von den Rändern abprallt"),
        ("und springt von den Wänden zurück", "und von den Wänden zurückspringt"),
    )
    frames = (
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
    )

    def _adjective(self, stem: str, gender: str, case: str) -> str:
        return stem if stem in self.undeclined else stem + self.endings[gender, case]

    def noun_phrase(self, obj: SceneObject, case: str, rng: np.random.Generator) -> tuple[str, str]:
        """("einen kleinen roten Kreis", gender) for case "nom", "acc" or "dat"."""
        noun, gender = self.shapes[obj.shape][int(rng.integers(len(self.shapes[obj.shape])))]
        words = [self.articles[gender, case]]
        if obj.size_word:
            words.append(self._adjective(_pick(rng, self.sizes[obj.size_word]), gender, case))
        words += [self._adjective(_pick(rng, self.colours[obj.colour]), gender, case), noun]
        return " ".join(words), gender

    def motion(self, obj: SceneObject, gender: str, rng: np.random.Generator) -> tuple[str, str, str, str]:
        """(verb, reflexive, rest, tail): the parts that word order arranges; tail is a bounce clause, given in the
        relative-clause order when the verb goes last."""
        if obj.motion == "still":
            verb, refl, rest = self.still[int(rng.integers(len(self.still)))]
            return verb, refl, rest.format(poss=self.possessives[gender]), ""
        verb, refl = [*self.verbs, *self.direction_verbs.get(obj.motion, ())][
            int(rng.integers(len(self.verbs) + len(self.direction_verbs.get(obj.motion, ()))))
        ]
        rest = [_pick(rng, self.speeds[obj.speed_word])] if obj.speed_word else []
        rest.append(_pick(rng, self.directions[obj.motion]))
        if obj.event in self.events:
            rest.append(_pick(rng, self.events[obj.event]))
        tail = ""
        if obj.event == "bounce":
            tail = "\t".join(self.bounce[int(rng.integers(len(self.bounce)))])
        return verb, refl, " ".join(rest), tail

    def phrase(self, obj: SceneObject, slot: str, rng: np.random.Generator, index: int, count: int) -> str:
        case = {"acc_rel": "acc", "dat_rel": "dat"}.get(slot, "nom")
        subject, gender = self.noun_phrase(obj, case, rng)
        verb, refl, rest, tail = self.motion(obj, gender, rng)
        main_tail, rel_tail = tail.split("\t") if tail else ("", "")
        if slot == "fin" or (slot == "inv" and index > 0):
            return " ".join(w for w in (subject, verb, refl, rest, main_tail) if w)
        if slot == "inv":  # verb second: the frame's opening phrase takes the first place
            return " ".join(w for w in (verb, refl, subject, rest, main_tail) if w)
        if slot == "sub":
            return " ".join(w for w in (subject, refl, rest, verb, rel_tail) if w)
        if slot in ("nom_rel", "acc_rel", "dat_rel"):
            clause = " ".join(w for w in (self.relatives[gender], refl, rest, verb, rel_tail) if w)
            return f"{subject}, {clause}"
        raise KeyError(slot)

    def join(self, parts: list[str], slot: str) -> str:
        # a relative clause is closed by a comma before the next object
        return _and(parts, ", und " if slot.endswith("_rel") else " und ")

    def words(self) -> Words:
        colour_forms = {
            c: _unique(*[[self._adjective(s, g, k) for g, k in self.endings] for s in stems])
            for c, stems in self.colours.items()
        }
        motion = {m: self.directions[m] for m in MOTIONS if m != "still"}
        for m, pairs in self.direction_verbs.items():
            motion[m] = _unique(motion[m], [verb for verb, _ in pairs])
        motion["still"] = ("nicht", "reglos", "Platz", "an Ort und Stelle", "an einer Stelle")
        return {
            "colour": colour_forms,
            "shape": {s: tuple(n for n, _ in nouns) for s, nouns in self.shapes.items()},
            "motion": motion,
            "size": {
                s: _unique(*[[self._adjective(w, g, k) for g, k in self.endings] for w in ws])
                for s, ws in self.sizes.items()
            },
            "speed": dict(self.speeds),
        }


# ----------------------------------------------------------------------------------------------------------------
# Russian: adjectives agree in gender and case (an inanimate masculine accusative equals the nominative)


class _Russian(_Grammar):
    code = "ru"
    conj = " и "
    # (nominative, accusative, gender)
    shapes = _table(
        {
            "circle": (("круг", "круг", "m"), ("диск", "диск", "m")),
            "square": (("квадрат", "квадрат", "m"),),
            "triangle": (("треугольник", "треугольник", "m"),),
            "star": (("звезда", "звезду", "f"), ("звёздочка", "звёздочку", "f")),
        }
    )
    # (masculine nominative/accusative, feminine nominative, feminine accusative)
    colours = _table(
        {
            "red": (("красный", "красная", "красную"),),
            "yellow": (("жёлтый", "жёлтая", "жёлтую"),),
            "green": (("зелёный", "зелёная", "зелёную"),),
            "blue": (("синий", "синяя", "синюю"),),
            "purple": (("фиолетовый", "фиолетовая", "фиолетовую"), ("лиловый", "лиловая", "лиловую")),
            "white": (("белый", "белая", "белую"),),
        }
    )
    sizes = _table(
        {
            "small": (("маленький", "маленькая", "маленькую"), ("небольшой", "небольшая", "небольшую")),
            "large": (("большой", "большая", "большую"), ("крупный", "крупная", "крупную")),
        }
    )
    relatives = _table({"m": "который", "f": "которая"})
    verbs = ("движется", "перемещается", "плывёт", "скользит", "смещается", "летит", "направляется")
    direction_verbs = _table({"up": ("поднимается",), "down": ("опускается", "падает")})
    directions = _table(
        {
            "left": ("влево", "налево", "в левую сторону", "к левому краю"),
            "right": ("вправо", "направо", "в правую сторону", "к правому краю"),
            "up": ("вверх", "к верхнему краю"),
            "down": ("вниз", "к нижнему краю"),
            "up-left": ("вверх и влево", "по диагонали вверх и влево", "к левому верхнему углу"),
            "up-right": ("вверх и вправо", "по диагонали вверх и вправо", "к правому верхнему углу"),
            "down-left": ("вниз и влево", "по диагонали вниз и влево", "к левому нижнему углу"),
            "down-right": ("вниз и вправо", "по диагонали вниз и вправо", "к правому нижнему углу"),
        }
    )
    # (after the subject, before the subject)
    still = (
        ("стоит на месте", "на месте стоит"),
        ("не движется", "неподвижно стоит"),
        ("остаётся на месте", "на месте остаётся"),
        ("неподвижно висит", "неподвижно висит"),
        ("не двигается", "на месте стоит"),
    )
    speeds = _table({"slow": ("медленно",), "fast": ("быстро", "стремительно")})
    # gerund clauses: set off by a comma in either word order
    events = _table(
        {
            "bounce": (", отскакивая от краёв", ", отражаясь от стенок"),
            "enter": (", входя в кадр", ", появляясь из-за края кадра"),
            "exit": (", уходя из кадра", ", покидая кадр"),
        }
    )
    frames = (
        "{fin}.",
        "На видео {fin}.",
        "Мы видим {acc_rel}.",
        "На чёрном фоне {inv}.",
        "В кадре {nom_rel}.",
        "Видео, на котором {fin}.",
        "{nom_rel}.",
        "Здесь {inv}.",
        "В этом ролике {fin}.",
        "Камера зафиксирована, а {fin}.",
        "Ролик показывает {acc_rel}.",
        ("Сцена содержит одну фигуру: {nom_rel}.", "Сцена содержит две фигуры: {nom_rel}."),
        "Можно увидеть {acc_rel}.",
        "Простая анимация: {fin}.",
    )

    def noun_phrase(self, obj: SceneObject, case: str, rng: np.random.Generator) -> tuple[str, str]:
        nom, acc, gender = self.shapes[obj.shape][int(rng.integers(len(self.shapes[obj.shape])))]
        form = 0 if gender == "m" else (1 if case == "nom" else 2)
        words = []
        if obj.size_word:
            words.append(self.sizes[obj.size_word][int(rng.integers(len(self.sizes[obj.size_word])))][form])
        words.append(self.colours[obj.colour][int(rng.integers(len(self.colours[obj.colour])))][form])
        words.append(nom if case == "nom" else acc)
        return " ".join(words), gender

    def motion(self, obj: SceneObject, rng: np.random.Generator) -> tuple[str, str, str]:
        """(after-subject words, before-subject words, gerund tail): "медленно движется влево" and "влево медленно
        движется" for the two word orders."""
        if obj.motion == "still":
            after, before = self.still[int(rng.integers(len(self.still)))]
            return after, before, ""
        speed = _pick(rng, self.speeds[obj.speed_word]) + " " if obj.speed_word else ""
        tail = _pick(rng, self.events[obj.event]) if obj.event else ""
        own = self.direction_verbs.get(obj.motion, ())
        if own and rng.random() < 0.3:
            verb = _pick(rng, own)
            return f"{speed}{verb}", f"{speed}{verb}", tail
        verb, direction = _pick(rng, self.verbs), _pick(rng, self.directions[obj.motion])
        return f"{speed}{verb} {direction}", f"{direction} {speed}{verb}", tail

    def phrase(self, obj: SceneObject, slot: str, rng: np.random.Generator, index: int, count: int) -> str:
        case = "acc" if slot == "acc_rel" else "nom"
        subject, gender = self.noun_phrase(obj, case, rng)
        after, before, tail = self.motion(obj, rng)
        if slot == "fin" or (slot == "inv" and index > 0):
            return f"{subject} {after}{tail}"
        if slot == "inv":
            return f"{before} {subject}{tail}"
        if slot in ("nom_rel", "acc_rel"):
            return f"{subject}, {self.relatives[gender]} {after}{tail}"
        raise KeyError(slot)

    def join(self, parts: list[str], slot: str) -> str:
        # a comma closes a relative or gerund clause, and separates two clauses with their own subjects
        return _and(parts, ", и ")

    def words(self) -> Words:
        motion = {m: self.directions[m] for m in MOTIONS if m != "still"}
        for m, verbs in self.direction_verbs.items():
            motion[m] = _unique(motion[m], verbs)
        motion["still"] = ("на месте", "не движется", "не двигается", "неподвижно")
        return {
            "colour": {c: _unique(*forms) for c, forms in self.colours.items()},
            "shape": {s: _unique(*[(nom, acc) for nom, acc, _ in nouns]) for s, nouns in self.shapes.items()},
            "motion": motion,
            "size": {s: _unique(*forms) for s, forms in self.sizes.items()},
            "speed": dict(self.speeds),
        }


# ----------------------------------------------------------------------------------------------------------------
# Chinese: no inflection; a relative clause goes before the noun with 的


class _Chinese(_Grammar):
    code = "zh"
    colours = _table(
        {
            "red": ("红色",),
            "yellow": ("黄色",),
            "green": ("绿色",),
            "blue": ("蓝色",),
            "purple": ("紫色",),
            "white": ("白色",),
        }
    )
    shapes = _table(
        {
            "circle": ("圆形", "圆", "圆圈"),
            "square": ("正方形", "方块", "方形"),
            "triangle": ("三角形",),
            "star": ("星形", "五角星"),
        }
    )
    sizes = _table({"small": ("小",), "large": ("大",)})
    verbs = ("移动", "运动", "滑动", "飘动", "漂移", "行进")
    direction_verbs = _table({"up": ("上升", "升起"), "down": ("下降", "下落", "落下")})
    directions = _table(
        {
            "left": ("向左", "往左", "朝左边", "向左侧"),
            "right": ("向右", "往右", "朝右边", "向右侧"),
            "up": ("向上", "往上", "朝上方"),
            "down": ("向下", "往下", "朝下方"),
            "up-left": ("向左上方", "朝左上角", "斜向左上方"),
            "up-right": ("向右上方", "朝右上角", "斜向右上方"),
            "down-left": ("向左下方", "朝左下角", "斜向左下方"),
            "down-right": ("向右下方", "朝右下角", "斜向右下方"),
        }
    )
    still = ("静止不动", "一动不动", "停在原地", "保持静止", "待在原处不动")
    speeds = _table({"slow": ("缓慢地", "慢慢地"), "fast": ("快速地", "迅速地")})
    events = _table(
        {
            "bounce": ("并在边缘反弹", "并从边缘弹回"),
            "enter": ("进入画面", "并进入画面"),
            "exit": ("并移出画面", "直到离开画面"),
        }
    )
    frames = (
        "{fin}。",
        "视频中，{fin}。",
        "画面里有{rel}。",
        "黑色背景上，{prog}。",
        "我们看到{fin}。",
        "视频展示了{rel}。",
        "在黑色的背景中，{fin}。",
        "{rel}。",
        "镜头固定，{fin}。",
        "这段视频里，{prog}。",
        ("场景中只有一个图形：{rel}。", "场景中有两个图形：{rel}。"),
        "可以看到{rel}。",
        "简单动画：{fin}。",
    )

    def noun(self, obj: SceneObject, rng: np.random.Generator) -> str:
        """ "红色的小圆形" (without a measure word)."""
        colour = _pick(rng, self.colours[obj.colour])
        size = _pick(rng, self.sizes[obj.size_word]) if obj.size_word else ""
        link = "的" if size or rng.random() < 0.5 else ""
        return f"{colour}{link}{size}{_pick(rng, self.shapes[obj.shape])}"

    def motion(self, obj: SceneObject, rng: np.random.Generator) -> str:
        if obj.motion == "still":
            return _pick(rng, self.still)
        speed = _pick(rng, self.speeds[obj.speed_word]) if obj.speed_word else ""
        own = self.direction_verbs.get(obj.motion, ())
        if own and rng.random() < 0.3:
            text = speed + _pick(rng, own)
        else:
            text = speed + _pick(rng, self.directions[obj.motion]) + _pick(rng, self.verbs)
        return text + (_pick(rng, self.events[obj.event]) if obj.event else "")

    def phrase(self, obj: SceneObject, slot: str, rng: np.random.Generator, index: int, count: int) -> str:
        noun = self.noun(obj, rng)
        if slot == "fin":
            return f"一个{noun}{self.motion(obj, rng)}"
        if slot == "prog":
            progressive = "" if obj.motion == "still" else "正在"
            return f"一个{noun}{progressive}{self.motion(obj, rng)}"
        if slot == "rel":
            return f"一个{self.motion(obj, rng)}的{noun}"
        raise KeyError(slot)

    def join(self, parts: list[str], slot: str) -> str:
        return _and(parts, "和" if slot == "rel" else "，", "、" if slot == "rel" else "，")

    def finish(self, text: str) -> str:
        return text

    def words(self) -> Words:
        motion = {m: self.directions[m] for m in MOTIONS if m != "still"}
        for m, verbs in self.direction_verbs.items():
            motion[m] = _unique(motion[m], verbs)
        motion["still"] = self.still
        return {
            "colour": dict(self.colours),
            "shape": dict(self.shapes),
            "motion": motion,
            "size": dict(self.sizes),
            "speed": dict(self.speeds),
        }


# ----------------------------------------------------------------------------------------------------------------
# Japanese: modifiers precede the noun; clauses are chained with the te-form


class _Japanese(_Grammar):
    code = "ja"
    colours = _table(
        {
            "red": ("赤い", "赤色の"),
            "yellow": ("黄色い", "黄色の"),
            "green": ("緑の", "緑色の"),
            "blue": ("青い", "青色の"),
            "purple": ("紫の", "紫色の"),
            "white": ("白い", "白色の"),
        }
    )
    shapes = _table(
        {
            "circle": ("丸", "円"),
            "square": ("四角", "正方形"),
            "triangle": ("三角", "三角形"),
            "star": ("星", "星形"),
        }
    )
    sizes = _table({"small": ("小さな", "小さい"), "large": ("大きな", "大きい")})
    # (plain form, te-form); the progressive is te-form + いる
    verbs = (
        ("動く", "動いて"),
        ("移動する", "移動して"),
        ("進む", "進んで"),
        ("流れる", "流れて"),
        ("滑る", "滑って"),
    )
    direction_verbs = _table(
        {
            "up": (("上昇する", "上昇して"), ("昇る", "昇って")),
            "down": (("下降する", "下降して"), ("落ちる", "落ちて")),
        }
    )
    directions = _table(
        {
            "left": ("左に", "左へ", "左の方へ", "左側へ"),
            "right": ("右に", "右へ", "右の方へ", "右側へ"),
            "up": ("上に", "上へ", "上の方へ"),
            "down": ("下に", "下へ", "下の方へ"),
            "up-left": ("左上に", "左上の方へ", "斜め左上へ"),
            "up-right": ("右上に", "右上の方へ", "斜め右上へ"),
            "down-left": ("左下に", "左下の方へ", "斜め左下へ"),
            "down-right": ("右下に", "右下の方へ", "斜め右下へ"),
        }
    )
    # stative already: (plain, te-form), no progressive added
    still = (
        ("止まっている", "止まっていて"),
        ("静止している", "静止していて"),
        ("動かない", "動かずに"),
        ("その場にとどまっている", "その場にとどまっていて"),
    )
    speeds = _table({"slow": ("ゆっくり", "ゆっくりと"), "fast": ("速く", "素早く")})
    # adverbial clauses placed before the direction
    events = _table(
        {
            "bounce": ("端で跳ね返りながら", "壁に当たって跳ね返りながら"),
            "enter": ("画面の外から入ってきて", "画面外から現れて"),
            "exit": ("画面から出るまで", "画面の外に消えるまで"),
        }
    )
    frames = (
        "{fin}。",
        "動画の中で{fin}。",
        "黒い背景の上で{fin}。",
        "{rel}が見える。",
        "{rel}の動画。",
        "{rel}。",
        "画面には{rel}がある。",
        "カメラは固定されていて、{fin}。",
        "この映像では{fin}。",
        "{rel}が映っている。",
        ("シーンには図形が一つだけある：{rel}。", "シーンには図形が二つある：{rel}。"),
        "黒い画面に{rel}が表示されている。",
        "シンプルなアニメーション：{fin}。",
    )

    def noun(self, obj: SceneObject, rng: np.random.Generator) -> str:
        size = _pick(rng, self.sizes[obj.size_word]) if obj.size_word else ""
        return size + _pick(rng, self.colours[obj.colour]) + _pick(rng, self.shapes[obj.shape])

    def motion(self, obj: SceneObject, rng: np.random.Generator, form: str) -> str:
        """form "plain" (動く, ends a relative clause), "final" (動いている) or "chain" (動いていて)."""
        if obj.motion == "still":
            plain, te = self.still[int(rng.integers(len(self.still)))]
            return te if form == "chain" else plain
        own = self.direction_verbs.get(obj.motion, ())
        use_own = bool(own) and rng.random() < 0.3
        plain, te = (own if use_own else self.verbs)[int(rng.integers(len(own if use_own else self.verbs)))]
        verb = {"plain": plain, "final": te + "いる", "chain": te + "いて"}[form]
        words = [_pick(rng, self.events[obj.event])] if obj.event else []
        if obj.speed_word:
            words.append(_pick(rng, self.speeds[obj.speed_word]))
        if not use_own:
            words.append(_pick(rng, self.directions[obj.motion]))
        return "".join(words) + verb

    def phrase(self, obj: SceneObject, slot: str, rng: np.random.Generator, index: int, count: int) -> str:
        noun = self.noun(obj, rng)
        if slot == "fin":
            return f"{noun}が{self.motion(obj, rng, 'chain' if index < count - 1 else 'final')}"
        if slot == "rel":
            return self.motion(obj, rng, _pick(rng, ("plain", "final"))) + noun
        raise KeyError(slot)

    def join(self, parts: list[str], slot: str) -> str:
        return _and(parts, "と" if slot == "rel" else "、", "、")

    def finish(self, text: str) -> str:
        return text

    def words(self) -> Words:
        motion = {m: self.directions[m] for m in MOTIONS if m != "still"}
        # stems shared by every form of the verbs that carry the direction themselves
        motion["up"] = _unique(motion["up"], ("上昇", "昇"))
        motion["down"] = _unique(motion["down"], ("下降", "落ち"))
        motion["still"] = ("止まって", "静止して", "動かな", "動かず", "その場にとどまって")
        return {
            "colour": dict(self.colours),
            "shape": dict(self.shapes),
            "motion": motion,
            "size": dict(self.sizes),
            "speed": dict(self.speeds),
        }


# ----------------------------------------------------------------------------------------------------------------
# Korean: modifiers precede the noun; particles depend on whether the last syllable ends in a consonant


def _has_final_consonant(word: str) -> bool:
    """True when the last Hangul syllable of `word` has a final consonant (batchim): 원 -> 이, 네모 -> 가."""
    code = ord(word[-1]) - 0xAC00
    return 0 <= code < 11172 and code % 28 != 0


def _particle(word: str, after_consonant: str, after_vowel: str) -> str:
    return word + (after_consonant if _has_final_consonant(word) else after_vowel)


class _Korean(_Grammar):
    code = "ko"
    colours = _table(
        {
            "red": ("빨간", "빨간색"),
            "yellow": ("노란", "노란색"),
            "green": ("초록색", "녹색"),
            "blue": ("파란", "파란색"),
            "purple": ("보라색", "보랏빛"),
            "white": ("흰", "하얀", "흰색"),
        }
    )
    shapes = _table(
        {
            "circle": ("원", "동그라미"),
            "square": ("사각형", "정사각형", "네모"),
            "triangle": ("삼각형", "세모"),
            "star": ("별", "별 모양"),
        }
    )
    sizes = _table({"small": ("작은",), "large": ("큰",)})
    # (relative, plain final, connective); the progressive is connective + 있다
    verbs = (
        ("움직이는", "움직인다", "움직이고"),
        ("이동하는", "이동한다", "이동하고"),
        ("미끄러지는", "미끄러진다", "미끄러지고"),
        ("나아가는", "나아간다", "나아가고"),
        ("흘러가는", "흘러간다", "흘러가고"),
    )
    direction_verbs = _table(
        {
            "up": (("올라가는", "올라간다", "올라가고"), ("떠오르는", "떠오른다", "떠오르고")),
            "down": (("내려가는", "내려간다", "내려가고"), ("떨어지는", "떨어진다", "떨어지고")),
        }
    )
    directions = _table(
        {
            "left": ("왼쪽으로", "왼편으로", "좌측으로"),
            "right": ("오른쪽으로", "오른편으로", "우측으로"),
            "up": ("위로", "위쪽으로"),
            "down": ("아래로", "아래쪽으로"),
            "up-left": ("왼쪽 위로", "대각선으로 왼쪽 위를 향해", "왼쪽 위 모서리 쪽으로"),
            "up-right": ("오른쪽 위로", "대각선으로 오른쪽 위를 향해", "오른쪽 위 모서리 쪽으로"),
            "down-left": ("왼쪽 아래로", "대각선으로 왼쪽 아래를 향해", "왼쪽 아래 모서리 쪽으로"),
            "down-right": ("오른쪽 아래로", "대각선으로 오른쪽 아래를 향해", "오른쪽 아래 모서리 쪽으로"),
        }
    )
    still = (
        ("가만히 있는", "가만히 있다", "가만히 있고"),
        ("멈춰 있는", "멈춰 있다", "멈춰 있고"),
        ("움직이지 않는", "움직이지 않는다", "움직이지 않고"),
        ("제자리에 머무는", "제자리에 머문다", "제자리에 머물고"),
    )
    speeds = _table({"slow": ("천천히",), "fast": ("빠르게", "재빠르게")})
    events = _table(
        {
            "bounce": ("가장자리에서 튕기며", "벽에 부딪혀 튕기면서"),
            "enter": ("화면 밖에서 들어와", "화면 안으로 들어오며"),
            "exit": ("화면 밖으로 나갈 때까지", "화면을 벗어날 때까지"),
        }
    )
    frames = (
        "{fin}.",
        "영상에서 {fin}.",
        "검은 배경 위에서 {prog}.",
        "{rel_subj} 보인다.",
        "{rel_obj} 보여 주는 영상.",
        "{rel}.",
        "화면에는 {rel_subj} 있다.",
        "카메라는 고정되어 있고 {fin}.",
        "이 영상에서는 {prog}.",
        "{rel_obj} 볼 수 있다.",
        ("장면에는 도형이 하나 있다: {rel}.", "장면에는 도형이 두 개 있다: {rel}."),
        "검은 화면에 {rel_subj} 나타난다.",
        "간단한 애니메이션: {fin}.",
    )

    def noun(self, obj: SceneObject, rng: np.random.Generator) -> str:
        words = [_pick(rng, self.sizes[obj.size_word])] if obj.size_word else []
        words += [_pick(rng, self.colours[obj.colour]), _pick(rng, self.shapes[obj.shape])]
        return " ".join(words)

    def motion(self, obj: SceneObject, rng: np.random.Generator, form: str) -> str:
        """form "rel" (움직이는), "final" (움직인다), "chain" (움직이고), "prog" (움직이고 있다) or "prog_chain"."""
        if obj.motion == "still":
            rel, final, chain = self.still[int(rng.integers(len(self.still)))]
            return {"rel": rel, "final": final, "chain": chain, "prog": final, "prog_chain": chain}[form]
        own = self.direction_verbs.get(obj.motion, ())
        use_own = bool(own) and rng.random() < 0.3
        rel, final, chain = (own if use_own else self.verbs)[
            int(rng.integers(len(own if use_own else self.verbs)))
        ]
        verb = {
            "rel": rel,
            "final": final,
            "chain": chain,
            "prog": chain + " 있다",
            "prog_chain": chain + " 있고",
        }[form]
        words = [_pick(rng, self.events[obj.event])] if obj.event else []
        if obj.speed_word:
            words.append(_pick(rng, self.speeds[obj.speed_word]))
        if not use_own:
            words.append(_pick(rng, self.directions[obj.motion]))
        return " ".join([*words, verb])

    def phrase(self, obj: SceneObject, slot: str, rng: np.random.Generator, index: int, count: int) -> str:
        noun = self.noun(obj, rng)
        last = index == count - 1
        if slot == "fin":
            return f"{_particle(noun, '이', '가')} {self.motion(obj, rng, 'final' if last else 'chain')}"
        if slot == "prog":
            return f"{_particle(noun, '이', '가')} {self.motion(obj, rng, 'prog' if last else 'prog_chain')}"
        if slot in ("rel", "rel_subj", "rel_obj"):
            return f"{self.motion(obj, rng, 'rel')} {noun}"
        raise KeyError(slot)

    def join(self, parts: list[str], slot: str) -> str:
        if not slot.startswith("rel"):
            return " ".join(parts)
        # noun phrases are linked with 와/과 and the whole list takes the frame's particle
        text = (
            " ".join(_particle(p, "과", "와") for p in parts[:-1])
            + (" " if len(parts) > 1 else "")
            + parts[-1]
        )
        if slot == "rel_subj":
            return _particle(text, "이", "가")
        if slot == "rel_obj":
            return _particle(text, "을", "를")
        return text

    def finish(self, text: str) -> str:
        return " ".join(text.split())

    def words(self) -> Words:
        motion = {m: self.directions[m] for m in MOTIONS if m != "still"}
        # stems shared by every form of the verbs that carry the direction themselves
        motion["up"] = _unique(motion["up"], ("올라", "떠오"))
        motion["down"] = _unique(motion["down"], ("내려", "떨어"))
        motion["still"] = ("가만히", "멈춰", "움직이지 않", "제자리에")
        return {
            "colour": dict(self.colours),
            "shape": dict(self.shapes),
            "motion": motion,
            "size": dict(self.sizes),
            "speed": dict(self.speeds),
        }


# ----------------------------------------------------------------------------------------------------------------
# Arabic: adjectives follow the noun and agree in gender (دائرة حمراء, مربع أحمر) and case (نرى مربعًا بنفسجيًا);
# the verb agrees in gender with its subject


class _Arabic(_Grammar):
    code = "ar"
    # (nominative, accusative, gender)
    shapes = _table(
        {
            "circle": (("دائرة", "دائرة", "f"), ("قرص", "قرصًا", "m")),
            "square": (("مربع", "مربعًا", "m"),),
            "triangle": (("مثلث", "مثلثًا", "m"),),
            "star": (("نجمة", "نجمة", "f"),),
        }
    )
    # (masculine nominative, masculine accusative, feminine): the colour pattern af'al/fa'la' takes no tanween
    colours = _table(
        {
            "red": (("أحمر", "أحمر", "حمراء"),),
            "yellow": (("أصفر", "أصفر", "صفراء"),),
            "green": (("أخضر", "أخضر", "خضراء"),),
            "blue": (("أزرق", "أزرق", "زرقاء"),),
            "purple": (("بنفسجي", "بنفسجيًا", "بنفسجية"), ("أرجواني", "أرجوانيًا", "أرجوانية")),
            "white": (("أبيض", "أبيض", "بيضاء"),),
        }
    )
    sizes = _table({"small": (("صغير", "صغيرًا", "صغيرة"),), "large": (("كبير", "كبيرًا", "كبيرة"),)})
    # (masculine, feminine) present tense
    verbs = (
        ("يتحرك", "تتحرك"),
        ("ينتقل", "تنتقل"),
        ("ينزلق", "تنزلق"),
        ("يتجه", "تتجه"),
        ("يسير", "تسير"),
        ("يمضي", "تمضي"),
    )
    direction_verbs = _table(
        {
            "up": (("يرتفع", "ترتفع"), ("يصعد", "تصعد")),
            "down": (("ينخفض", "تنخفض"), ("يهبط", "تهبط"), ("يسقط", "تسقط")),
        }
    )
    directions = _table(
        {
            "left": ("إلى اليسار", "نحو اليسار", "باتجاه اليسار"),
            "right": ("إلى اليمين", "نحو اليمين", "باتجاه اليمين"),
            "up": ("إلى الأعلى", "نحو الأعلى"),
            "down": ("إلى الأسفل", "نحو الأسفل"),
            "up-left": ("إلى أعلى اليسار", "قطريًا نحو الأعلى واليسار", "نحو الزاوية العليا اليسرى"),
            "up-right": ("إلى أعلى اليمين", "قطريًا نحو الأعلى واليمين", "نحو الزاوية العليا اليمنى"),
            "down-left": ("إلى أسفل اليسار", "قطريًا نحو الأسفل واليسار", "نحو الزاوية السفلى اليسرى"),
            "down-right": ("إلى أسفل اليمين", "قطريًا نحو الأسفل واليمين", "نحو الزاوية السفلى اليمنى"),
        }
    )
    # (masculine verb, masculine rest, feminine verb, feminine rest)
    still = (
        ("يبقى", "ثابتًا", "تبقى", "ثابتة"),
        ("لا يتحرك", "", "لا تتحرك", ""),
        ("يبقى", "في مكانه", "تبقى", "في مكانها"),
        ("يظل", "ساكنًا", "تظل", "ساكنة"),
    )
    speeds = _table({"slow": ("ببطء",), "fast": ("بسرعة",)})
    # (masculine, feminine)
    events = _table(
        {
            "bounce": (("ويرتد عن الحواف", "وترتد عن الحواف"), ("ويرتد عن الجدران", "وترتد عن الجدران")),
            "enter": (("ويدخل الإطار", "وتدخل الإطار"), ("ويظهر داخل الإطار", "وتظهر داخل الإطار")),
            "exit": (("حتى يخرج من الإطار", "حتى تخرج من الإطار"), ("ويغادر الإطار", "وتغادر الإطار")),
        }
    )
    frames = (
        "{svo}.",
        "في الفيديو، {vso}.",
        "نرى {acc}.",
        "على خلفية سوداء، {vso}.",
        "هناك {svo}.",
        "يظهر في المقطع {svo}.",
        "مقطع فيديو يُظهر {acc}.",
        "الكاميرا مثبتة بينما {svo}.",
        ("في المشهد شكل واحد: {svo}.", "في المشهد شكلان: {svo}."),
        "في هذا الفيديو {vso}.",
        "{svo} على خلفية سوداء.",
        "نشاهد {acc}.",
        "رسم متحرك بسيط: {svo}.",
    )

    def noun_phrase(self, obj: SceneObject, case: str, rng: np.random.Generator) -> tuple[str, str]:
        nom, acc, gender = self.shapes[obj.shape][int(rng.integers(len(self.shapes[obj.shape])))]
        form = 2 if gender == "f" else (1 if case == "acc" else 0)
        words = [acc if case == "acc" else nom]
        words.append(self.colours[obj.colour][int(rng.integers(len(self.colours[obj.colour])))][form])
        if obj.size_word:
            words.append(self.sizes[obj.size_word][int(rng.integers(len(self.sizes[obj.size_word])))][form])
        return " ".join(words), gender

    def motion(self, obj: SceneObject, gender: str, rng: np.random.Generator) -> tuple[str, str]:
        """(verb, rest) agreeing with the subject's gender: ("تتحرك", "ببطء إلى اليسار")."""
        g = int(gender == "f")
        if obj.motion == "still":
            entry = self.still[int(rng.integers(len(self.still)))]
            return entry[2 * g], entry[2 * g + 1]
        own = self.direction_verbs.get(obj.motion, ())
        use_own = bool(own) and rng.random() < 0.3
        verb = (own if use_own else self.verbs)[int(rng.integers(len(own if use_own else self.verbs)))][g]
        rest = [_pick(rng, self.speeds[obj.speed_word])] if obj.speed_word else []
        if not use_own:
            rest.append(_pick(rng, self.directions[obj.motion]))
        if obj.event:
            rest.append(self.events[obj.event][int(rng.integers(len(self.events[obj.event])))][g])
        return verb, " ".join(rest)

    def phrase(self, obj: SceneObject, slot: str, rng: np.random.Generator, index: int, count: int) -> str:
        subject, gender = self.noun_phrase(obj, "acc" if slot == "acc" else "nom", rng)
        verb, rest = self.motion(obj, gender, rng)
        if slot in ("svo", "acc"):
            return " ".join(w for w in (subject, verb, rest) if w)
        if slot == "vso":
            return " ".join(w for w in (verb, subject, rest) if w)
        raise KeyError(slot)

    def join(self, parts: list[str], slot: str) -> str:
        return _and(parts, " و", "، ")  # the conjunction و is written joined to the next word

    def finish(self, text: str) -> str:
        return " ".join(text.split())

    def words(self) -> Words:
        motion = {m: self.directions[m] for m in MOTIONS if m != "still"}
        for m, pairs in self.direction_verbs.items():
            motion[m] = _unique(motion[m], *pairs)
        motion["still"] = ("ثابت", "لا يتحرك", "لا تتحرك", "في مكان", "ساكن")
        return {
            "colour": {c: _unique(*forms) for c, forms in self.colours.items()},
            "shape": {s: _unique(*[(nom, acc) for nom, acc, _ in nouns]) for s, nouns in self.shapes.items()},
            "motion": motion,
            "size": {s: _unique(*forms) for s, forms in self.sizes.items()},
            "speed": dict(self.speeds),
        }


# ----------------------------------------------------------------------------------------------------------------
# Hindi: adjective + noun, verb last; every shape noun is masculine, so the -ā adjectives and verbs take -ā forms


class _Hindi(_Grammar):
    code = "hi"
    conj = " और "
    colours = _table(
        {
            "red": ("लाल",),
            "yellow": ("पीला",),
            "green": ("हरा",),
            "blue": ("नीला",),
            "purple": ("बैंगनी",),
            "white": ("सफ़ेद", "सफेद"),
        }
    )
    shapes = _table(
        {"circle": ("वृत्त", "गोला"), "square": ("वर्ग",), "triangle": ("त्रिभुज",), "star": ("तारा",)}
    )
    sizes = _table({"small": ("छोटा",), "large": ("बड़ा",)})
    # verb stems: progressive stem + " रहा है", habitual stem + "ता है", participle stem + "ता हुआ"
    verbs = ("जा", "चल", "खिसक", "बढ़", "सरक", "तैर")
    directions = _table(
        {
            "left": ("बाईं ओर", "बाएँ", "बाईं तरफ़"),
            "right": ("दाईं ओर", "दाएँ", "दाईं तरफ़"),
            "up": ("ऊपर", "ऊपर की ओर"),
            "down": ("नीचे", "नीचे की ओर"),
            "up-left": ("ऊपर बाईं ओर", "तिरछा ऊपर बाईं ओर", "बाएँ ऊपरी कोने की ओर"),
            "up-right": ("ऊपर दाईं ओर", "तिरछा ऊपर दाईं ओर", "दाएँ ऊपरी कोने की ओर"),
            "down-left": ("नीचे बाईं ओर", "तिरछा नीचे बाईं ओर", "बाएँ निचले कोने की ओर"),
            "down-right": ("नीचे दाईं ओर", "तिरछा नीचे दाईं ओर", "दाएँ निचले कोने की ओर"),
        }
    )
    # (progressive, habitual, participle)
    still = (
        ("स्थिर है", "स्थिर रहता है", "स्थिर खड़ा"),
        ("अपनी जगह पर रुका हुआ है", "अपनी जगह पर रुका रहता है", "अपनी जगह पर रुका हुआ"),
        ("हिल नहीं रहा है", "हिलता नहीं है", "बिना हिले-डुले रुका हुआ"),
        ("अपने स्थान पर टिका हुआ है", "अपने स्थान पर टिका रहता है", "अपने स्थान पर टिका हुआ"),
    )
    speeds = _table({"slow": ("धीरे-धीरे", "धीमी गति से"), "fast": ("तेज़ी से", "जल्दी-जल्दी")})
    # adverbial participles placed before the direction
    events = _table(
        {
            "bounce": ("किनारों से टकराकर लौटते हुए", "किनारों से उछलते हुए"),
            "enter": ("फ़्रेम में प्रवेश करते हुए", "बाहर से फ़्रेम में आते हुए"),
            "exit": ("फ़्रेम से बाहर निकलते हुए", "फ़्रेम छोड़ते हुए"),
        }
    )
    frames = (
        "{prog}।",
        "वीडियो में {prog}।",
        "काली पृष्ठभूमि पर {prog}।",
        ("{part} दिखाई देता है।", "{part} दिखाई देते हैं।"),
        "इस क्लिप में {hab}।",
        "हम देखते हैं कि {prog}।",
        ("दृश्य में एक ही आकृति है: {part}।", "दृश्य में दो आकृतियाँ हैं: {part}।"),
        "परदे पर {prog}।",
        "{part}।",
        "यहाँ {hab}।",
        "एक सरल एनीमेशन: {prog}।",
        "इस वीडियो में दिखता है कि {hab}।",
        ("काले परदे पर {part} नज़र आता है।", "काले परदे पर {part} नज़र आते हैं।"),
    )

    def noun(self, obj: SceneObject, rng: np.random.Generator) -> str:
        words = [_pick(rng, self.sizes[obj.size_word])] if obj.size_word else []
        words += [_pick(rng, self.colours[obj.colour]), _pick(rng, self.shapes[obj.shape])]
        return " ".join(words)

    def motion(self, obj: SceneObject, rng: np.random.Generator, form: int) -> str:
        """form 0: progressive (जा रहा है), 1: habitual (जाता है), 2: participle (जाता हुआ)."""
        if obj.motion == "still":
            return self.still[int(rng.integers(len(self.still)))][form]
        stem = _pick(rng, self.verbs)
        verb = (f"{stem} रहा है", f"{stem}ता है", f"{stem}ता हुआ")[form]
        words = [_pick(rng, self.events[obj.event])] if obj.event else []
        if obj.speed_word:
            words.append(_pick(rng, self.speeds[obj.speed_word]))
        words += [_pick(rng, self.directions[obj.motion]), verb]
        return " ".join(words)

    def phrase(self, obj: SceneObject, slot: str, rng: np.random.Generator, index: int, count: int) -> str:
        noun = self.noun(obj, rng)
        if slot in ("prog", "hab"):
            return f"एक {noun} {self.motion(obj, rng, 0 if slot == 'prog' else 1)}"
        if slot == "part":
            return f"{self.motion(obj, rng, 2)} एक {noun}"
        raise KeyError(slot)

    def finish(self, text: str) -> str:
        return " ".join(text.split())

    def words(self) -> Words:
        motion = {m: self.directions[m] for m in MOTIONS if m != "still"}
        motion["left"], motion["right"] = ("बाईं", "बाएँ"), ("दाईं", "दाएँ")
        motion["up"], motion["down"] = ("ऊपर",), ("नीचे",)
        motion["still"] = ("स्थिर", "रुका", "हिल", "टिका")
        return {
            "colour": dict(self.colours),
            "shape": dict(self.shapes),
            "motion": motion,
            "size": dict(self.sizes),
            "speed": dict(self.speeds),
        }


# ----------------------------------------------------------------------------------------------------------------
# registry and public API

_GRAMMARS: dict[str, _Grammar] = {
    g.code: g
    for g in (
        _English(), _French(), _German(), _Spanish(), _Italian(), _Portuguese(),
        _Russian(), _Chinese(), _Japanese(), _Korean(), _Arabic(), _Hindi(),
    )
}  # fmt: skip
assert tuple(_GRAMMARS) == LANGUAGES, "every language in LANGUAGES needs a grammar, in the same order"


def _grammar(language: str) -> _Grammar:
    if language not in _GRAMMARS:
        raise ValueError(f"unknown caption language {language!r}; expected one of {LANGUAGES}")
    return _GRAMMARS[language]


def heldout_frames(language: str) -> tuple[int, ...]:
    """Indices of the sentence frames of `language` kept out of training: about a quarter of them, at least 2,
    spread evenly over the list (so that short and long frames are both represented)."""
    n = len(_grammar(language).frames)
    k = max(2, round(n / 4))
    return tuple(int((i + 0.75) * n / k) for i in range(k))


def _plain_table(split: str) -> Mapping[str, tuple[str, ...]]:
    return PLAIN_FRAMES if split == "plain" else PLAIN_TRAINING_FRAMES


def plain_frames(language: str, split: str = "plain") -> tuple[str, ...]:
    """The plain frames of `language`: the evaluation set ("plain") or the training styles ("train-plain")."""
    if split not in PLAIN_SPLITS:
        raise ValueError(f"split={split!r} has no plain frames; use one of {PLAIN_SPLITS}")
    return _plain_table(split)[_grammar(language).code]


def frame_ids(language: str, split: str = "train") -> tuple[int, ...]:
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


def num_frames(language: str) -> int:
    """How many sentence frames `language` has (train + held out)."""
    return len(_grammar(language).frames)


def caption(scene: Scene, language: str, rng: np.random.Generator, split: str = "train") -> tuple[str, int]:
    """A caption of `scene` in `language` and the index of the sentence frame that wrote it. Objects are described
    back to front; rng picks the frame and every synonym, so the same rng state gives the same caption."""
    grammar = _grammar(language)
    ids = frame_ids(language, split)
    if not scene.objects:
        raise ValueError("cannot caption a scene without objects; sample scenes with aiprod_core.world.sample_scene")
    if split in PLAIN_SPLITS:
        frames = plain_frames(language, split)
        if any(o.motion != "still" for o in scene.objects):  # a frame that names no motion means "still"
            ids = tuple(i for i in ids if says_motion(frames[i]))
        frame_id = ids[int(rng.integers(len(ids)))]
        return plain_caption(grammar, frames[frame_id], scene.objects, rng), frame_id
    if scene.camera is not None:  # a moving camera: no frame that says it is static
        ids = tuple(i for i in ids if not _says_static_camera(grammar.frames[i])) or ids
    frame_id = ids[int(rng.integers(len(ids)))]
    frame = grammar.frames[frame_id]
    count = len(scene.objects)
    template = frame if isinstance(frame, str) else frame[count > 1]
    slots = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    filled = {
        slot: grammar.join(
            [grammar.phrase(o, slot, rng, i, count) for i, o in enumerate(scene.objects)], slot
        )
        for slot in slots
    }
    return grammar.finish(template.format(**filled)), frame_id


# what marks the frames that call the camera static: the word for "camera" (English, Spanish, Italian, Portuguese,
# German, Russian, Chinese, Japanese, Korean, Arabic), or French's "fixed shot"
_STATIC_CAMERA_MARKERS = (
    "camera", "cámara", "telecamera", "câmera", "Kamera", "Камера", "镜头", "カメラ", "카메라", "الكاميرا", "Plan fixe",
)


def _says_static_camera(frame) -> bool:
    return any(w in t for t in ((frame,) if isinstance(frame, str) else frame) for w in _STATIC_CAMERA_MARKERS)


def attribute_words(language: str) -> Words:
    """Every form of every attribute word of `language`: {"colour": {colour: forms}, "shape": {...},
    "motion": {motion: forms}, "size": {...}, "speed": {...}}. A caption of an object mentions at least one form
    for its colour, shape and motion (for a diagonal motion: one of the diagonal phrases); a plain caption that
    names no motion describes a still object."""
    words = _grammar(language).words()
    for motion, extra in PLAIN_DIRECTIONS.get(language, {}).items():
        words["motion"][motion] = _unique(words["motion"][motion], extra)
    words["motion"]["still"] = _unique(words["motion"]["still"], PLAIN_STILL_WORDS.get(language, ()))
    return words


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
