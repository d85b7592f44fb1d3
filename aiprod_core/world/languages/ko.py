"""Korean: modifiers precede the noun; a particle's form depends on whether the word before it ends in a consonant
("{noun:이/가}", see world/grammar.py)."""

TABLE = {
    "code": "ko",
    "conj": " ",
    "sep": " ",
    "capitalise": False,
    "colours": {
        "red": ("빨간", "빨간색"),
        "yellow": ("노란", "노란색"),
        "green": ("초록색", "녹색"),
        "blue": ("파란", "파란색"),
        "purple": ("보라색", "보랏빛"),
        "white": ("흰", "하얀", "흰색"),
    },
    "shapes": {
        "circle": ("원", "동그라미"),
        "square": ("사각형", "정사각형", "네모"),
        "triangle": ("삼각형", "세모"),
        "star": ("별", "별 모양"),
    },
    "sizes": {"small": ("작은",), "large": ("큰",)},
    "subject": "{noun} 하나",
    # (relative, plain final, connective); the progressive is connective + 있다
    "verbs": (
        ("움직이는", "움직인다", "움직이고"),
        ("이동하는", "이동한다", "이동하고"),
        ("미끄러지는", "미끄러진다", "미끄러지고"),
        ("나아가는", "나아간다", "나아가고"),
        ("흘러가는", "흘러간다", "흘러가고"),
    ),
    "forms": {"rel": "{0}", "final": "{1}", "chain": "{2}", "prog": "{2} 있다", "prog_chain": "{2} 있고"},
    "direction_verbs": {
        "up": (("올라가는", "올라간다", "올라가고"), ("떠오르는", "떠오른다", "떠오르고")),
        "down": (("내려가는", "내려간다", "내려가고"), ("떨어지는", "떨어진다", "떨어지고")),
    },
    "directions": {
        "left": ("왼쪽으로", "왼편으로", "좌측으로"),
        "right": ("오른쪽으로", "오른편으로", "우측으로"),
        "up": ("위로", "위쪽으로"),
        "down": ("아래로", "아래쪽으로"),
        "up-left": ("왼쪽 위로", "대각선으로 왼쪽 위를 향해", "왼쪽 위 모서리 쪽으로"),
        "up-right": ("오른쪽 위로", "대각선으로 오른쪽 위를 향해", "오른쪽 위 모서리 쪽으로"),
        "down-left": ("왼쪽 아래로", "대각선으로 왼쪽 아래를 향해", "왼쪽 아래 모서리 쪽으로"),
        "down-right": ("오른쪽 아래로", "대각선으로 오른쪽 아래를 향해", "오른쪽 아래 모서리 쪽으로"),
    },
    # stative already: no progressive added
    "still": (
        ("가만히 있는", "가만히 있다", "가만히 있고"),
        ("멈춰 있는", "멈춰 있다", "멈춰 있고"),
        ("움직이지 않는", "움직이지 않는다", "움직이지 않고"),
        ("제자리에 머무는", "제자리에 머문다", "제자리에 머물고"),
    ),
    "still_forms": {"rel": "{0}", "final": "{1}", "chain": "{2}", "prog": "{1}", "prog_chain": "{2}"},
    "speeds": {"slow": ("천천히",), "fast": ("빠르게", "재빠르게")},
    "events": {
        "bounce": ("가장자리에서 튕기며", "벽에 부딪혀 튕기면서"),
        "enter": ("화면 밖에서 들어와", "화면 안으로 들어오며"),
        "exit": ("화면 밖으로 나갈 때까지", "화면을 벗어날 때까지"),
    },
    "motion_draws": ("own", "verb", "event", "speed", "direction"),
    "motion": "{event} {speed} {direction} {verb}",
    # noun phrases in a list are linked with 와/과, and the whole list takes the frame's particle
    "slots": {
        "fin": {"text": "{noun:이/가} {motion}", "form": "final", "form_before_last": "chain"},
        "prog": {"text": "{noun:이/가} {motion}", "form": "prog", "form_before_last": "prog_chain"},
        "rel": {"text": "{motion} {noun}", "form": "rel", "item": "{0:과/와}"},
        "rel_subj": {"text": "{motion} {noun}", "form": "rel", "item": "{0:과/와}", "list": "{0:이/가}"},
        "rel_obj": {"text": "{motion} {noun}", "form": "rel", "item": "{0:과/와}", "list": "{0:을/를}"},
    },
    "frames": (
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
    ),
    "static_camera": ("카메라",),
    # stems shared by every form of the verbs that carry the direction themselves, and of the still phrases
    "direction_verb_words": {"up": ("올라", "떠오"), "down": ("내려", "떨어")},
    "still_words": ("가만히", "멈춰", "움직이지 않", "제자리에"),
    "plain": {
        "frames": ("{b} {v}", "{b}, {v}", "{b} {d}", "{b}, {d}", "{n}, {d}", "{b}", "{n}"),
        "training_frames": ("{n} {v}", "{n} {d}", "{b}: {v}", "{b} - {d}", "검은 배경에 {b}"),
        "still": ("가만히", "제자리에"),
        "draws": (("v", "final"),),
        "slots": {"m": "{v}"},
        "and": ", ",
    },
}  # fmt: skip
