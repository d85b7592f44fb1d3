"""Japanese: modifiers precede the noun; clauses are chained with the te-form; no spaces."""

TABLE = {
    "code": "ja",
    "conj": "、",
    "sep": "、",
    "capitalise": False,
    "colours": {
        "red": ("赤い", "赤色の"),
        "yellow": ("黄色い", "黄色の"),
        "green": ("緑の", "緑色の"),
        "blue": ("青い", "青色の"),
        "purple": ("紫の", "紫色の"),
        "white": ("白い", "白色の"),
    },
    "shapes": {"circle": ("丸", "円"), "square": ("四角", "正方形"), "triangle": ("三角", "三角形"), "star": ("星", "星形")},
    "sizes": {"small": ("小さな", "小さい"), "large": ("大きな", "大きい")},
    "noun": "{size}{colour}{shape}",
    # (plain form, te-form): plain ends a relative clause, the progressive is te-form + いる, a chained clause いて
    "verbs": (("動く", "動いて"), ("移動する", "移動して"), ("進む", "進んで"), ("流れる", "流れて"), ("滑る", "滑って")),
    "forms": {"plain": "{0}", "final": "{1}いる", "chain": "{1}いて"},
    "direction_verbs": {
        "up": (("上昇する", "上昇して"), ("昇る", "昇って")),
        "down": (("下降する", "下降して"), ("落ちる", "落ちて")),
    },
    "directions": {
        "left": ("左に", "左へ", "左の方へ", "左側へ"),
        "right": ("右に", "右へ", "右の方へ", "右側へ"),
        "up": ("上に", "上へ", "上の方へ"),
        "down": ("下に", "下へ", "下の方へ"),
        "up-left": ("左上に", "左上の方へ", "斜め左上へ"),
        "up-right": ("右上に", "右上の方へ", "斜め右上へ"),
        "down-left": ("左下に", "左下の方へ", "斜め左下へ"),
        "down-right": ("右下に", "右下の方へ", "斜め右下へ"),
    },
    # stative already: (plain, te-form), no progressive added
    "still": (
        ("止まっている", "止まっていて"),
        ("静止している", "静止していて"),
        ("動かない", "動かずに"),
        ("その場にとどまっている", "その場にとどまっていて"),
    ),
    "still_forms": {"plain": "{0}", "final": "{0}", "chain": "{1}"},
    "speeds": {"slow": ("ゆっくり", "ゆっくりと"), "fast": ("速く", "素早く")},
    # adverbial clauses placed before the direction
    "events": {
        "bounce": ("端で跳ね返りながら", "壁に当たって跳ね返りながら"),
        "enter": ("画面の外から入ってきて", "画面外から現れて"),
        "exit": ("画面から出るまで", "画面の外に消えるまで"),
    },
    "motion_draws": ("own", "verb", "event", "speed", "direction"),
    "motion": "{event}{speed}{direction}{verb}",
    "slots": {
        "fin": {"text": "{noun}が{motion}", "form": "final", "form_before_last": "chain"},
        "rel": {"text": "{motion}{noun}", "form_any": ("plain", "final"), "conj": "と"},
    },
    "frames": (
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
    ),
    "static_camera": ("カメラ",),
    # stems shared by every form of the verbs that carry the direction themselves, and of the still phrases
    "direction_verb_words": {"up": ("上昇", "昇"), "down": ("下降", "落ち")},
    "still_words": ("止まって", "静止して", "動かな", "動かず", "その場にとどまって"),
    "plain": {
        "frames": ("{b} {v}", "{b}、{m}", "{b} {m}", "{b} {d}", "{b}、{d}", "{b}が{d}", "{b}"),
        "training_frames": ("{b}が{m}", "{v}{b}", "{b}：{v}", "{b}：{d}", "{b}は{v}", "黒い背景に{b}"),
        "still": ("静止", "止まったまま"),
        "draws": (("v", "plain"), ("m", "final")),
        "and": "と",
        "still_words": ("静止", "止まったまま"),
    },
}  # fmt: skip
