"""Portuguese (the Romance pattern of _romance.py)."""

from ._romance import ROMANCE

TABLE = {
    **ROMANCE,
    "code": "pt",
    "conj": " e ",
    "constants": {"article": {"m": "um", "f": "uma"}, "relative": "que"},
    "shapes": {
        "circle": (("círculo", "m"), ("disco", "m")),
        "square": (("quadrado", "m"),),
        "triangle": (("triângulo", "m"),),
        "star": (("estrela", "f"),),
    },
    "colours": {
        "red": (("vermelho", "vermelha"),),
        "yellow": (("amarelo", "amarela"),),
        "green": (("verde", "verde"),),
        "blue": (("azul", "azul"),),
        "purple": (("roxo", "roxa"), ("violeta", "violeta")),
        "white": (("branco", "branca"),),
    },
    "sizes": {"small": (("pequeno", "pequena"),), "large": (("grande", "grande"),)},
    "verbs": (
        ("se move", "se movendo"),
        ("se desloca", "se deslocando"),
        ("desliza", "deslizando"),
        ("avança", "avançando"),
        ("vai", "indo"),
        ("segue", "seguindo"),
    ),
    "direction_verbs": {"up": (("sobe", "subindo"),), "down": (("desce", "descendo"), ("cai", "caindo"))},
    "directions": {
        "left": ("para a esquerda", "rumo à esquerda", "em direção à borda esquerda"),
        "right": ("para a direita", "rumo à direita", "em direção à borda direita"),
        "up": ("para cima", "em direção ao topo"),
        "down": ("para baixo", "em direção à base"),
        "up-left": ("para cima e para a esquerda", "na diagonal para cima e à esquerda", "em direção ao canto superior esquerdo"),
        "up-right": ("para cima e para a direita", "na diagonal para cima e à direita", "em direção ao canto superior direito"),
        "down-left": ("para baixo e para a esquerda", "na diagonal para baixo e à esquerda", "em direção ao canto inferior esquerdo"),
        "down-right": ("para baixo e para a direita", "na diagonal para baixo e à direita", "em direção ao canto inferior direito"),
    },
    "still": (
        ("permanece imóvel", "permanecendo imóvel"),
        ("não se move", "sem se mover"),
        ("fica no mesmo lugar", "ficando no mesmo lugar"),
        ("está imóvel", "imóvel"),
    ),
    "speeds": {"slow": ("lentamente", "devagar"), "fast": ("rapidamente", "depressa")},
    "events": {
        "bounce": ("quicando nas bordas", "ricocheteando nas bordas"),
        "enter": ("entrando no quadro", "entrando na imagem"),
        "exit": ("até sair do quadro", "até sair da imagem"),
    },
    "frames": (
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
    ),
    "static_camera": ("câmera",),
    "plain": {
        **ROMANCE["plain"],
        "frames": ("{b} {m}", "{b}, {m}", "{n}, {m}", "{b} {d}", "{n} {d}", "{b}", "{n}"),
        "training_frames": ("{n} {m}", "{n} {v}", "{b} {v}", "{b}: {d}", "{n} sobre fundo preto", "{b} sobre fundo preto"),
        "still": ("imóvel",),
        "directions": {"left": ("à esquerda",), "right": ("à direita",)},  # as people type them; frames do not
    },
}  # fmt: skip
