"""Arabic: adjectives follow the noun and agree in gender (دائرة حمراء, مربع أحمر) and case (نرى مربعًا بنفسجيًا);
the verb agrees in gender with its subject; verb-subject-object after an opening phrase."""

TABLE = {
    "code": "ar",
    "conj": " و",  # the conjunction و is written joined to the next word
    "sep": "، ",
    "capitalise": False,
    # (noun, gender), the noun as (nominative, accusative) where they differ
    "shapes": {
        "circle": (("دائرة", "f"), (("قرص", "قرصًا"), "m")),
        "square": ((("مربع", "مربعًا"), "m"),),
        "triangle": ((("مثلث", "مثلثًا"), "m"),),
        "star": (("نجمة", "f"),),
    },
    "noun_forms": {"nom": "{0}", "acc": "{1}"},
    # (masculine nominative, masculine accusative, feminine): the colour pattern af'al/fa'la' takes no tanween
    "colours": {
        "red": (("أحمر", "أحمر", "حمراء"),),
        "yellow": (("أصفر", "أصفر", "صفراء"),),
        "green": (("أخضر", "أخضر", "خضراء"),),
        "blue": (("أزرق", "أزرق", "زرقاء"),),
        "purple": (("بنفسجي", "بنفسجيًا", "بنفسجية"), ("أرجواني", "أرجوانيًا", "أرجوانية")),
        "white": (("أبيض", "أبيض", "بيضاء"),),
    },
    "sizes": {"small": (("صغير", "صغيرًا", "صغيرة"),), "large": (("كبير", "كبيرًا", "كبيرة"),)},
    "adjective_forms": {("m", "nom"): "{0}", ("m", "acc"): "{1}", "f": "{2}"},
    "noun": "{shape} {colour} {size}",
    "noun_draws": ("shape", "colour", "size"),
    # (masculine, feminine) present tense
    "verbs": (("يتحرك", "تتحرك"), ("ينتقل", "تنتقل"), ("ينزلق", "تنزلق"), ("يتجه", "تتجه"), ("يسير", "تسير"), ("يمضي", "تمضي")),
    "forms": {"m": "{0}", "f": "{1}"},
    "direction_verbs": {
        "up": (("يرتفع", "ترتفع"), ("يصعد", "تصعد")),
        "down": (("ينخفض", "تنخفض"), ("يهبط", "تهبط"), ("يسقط", "تسقط")),
    },
    "directions": {
        "left": ("إلى اليسار", "نحو اليسار", "باتجاه اليسار"),
        "right": ("إلى اليمين", "نحو اليمين", "باتجاه اليمين"),
        "up": ("إلى الأعلى", "نحو الأعلى"),
        "down": ("إلى الأسفل", "نحو الأسفل"),
        "up-left": ("إلى أعلى اليسار", "قطريًا نحو الأعلى واليسار", "نحو الزاوية العليا اليسرى"),
        "up-right": ("إلى أعلى اليمين", "قطريًا نحو الأعلى واليمين", "نحو الزاوية العليا اليمنى"),
        "down-left": ("إلى أسفل اليسار", "قطريًا نحو الأسفل واليسار", "نحو الزاوية السفلى اليسرى"),
        "down-right": ("إلى أسفل اليمين", "قطريًا نحو الأسفل واليمين", "نحو الزاوية السفلى اليمنى"),
    },
    # (verb, what takes the direction's place), each (masculine, feminine)
    "still": (
        (("يبقى", "تبقى"), ("ثابتًا", "ثابتة")),
        (("لا يتحرك", "لا تتحرك"), ""),
        (("يبقى", "تبقى"), ("في مكانه", "في مكانها")),
        (("يظل", "تظل"), ("ساكنًا", "ساكنة")),
    ),
    "still_parts": ("verb", "direction"),
    "speeds": {"slow": ("ببطء",), "fast": ("بسرعة",)},
    # (masculine, feminine)
    "events": {
        "bounce": (("ويرتد عن الحواف", "وترتد عن الحواف"), ("ويرتد عن الجدران", "وترتد عن الجدران")),
        "enter": (("ويدخل الإطار", "وتدخل الإطار"), ("ويظهر داخل الإطار", "وتظهر داخل الإطار")),
        "exit": (("حتى يخرج من الإطار", "حتى تخرج من الإطار"), ("ويغادر الإطار", "وتغادر الإطار")),
    },
    "motion_draws": ("own", "verb", "speed", "direction", "event"),
    "slots": {
        "svo": {"text": "{subject} {motion}"},
        "acc": {"text": "{subject} {motion}", "case": "acc"},
        "vso": {"text": "{verb} {subject} {speed} {direction} {event}"},
    },
    "frames": (
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
    ),
    "static_camera": ("الكاميرا",),
    "still_words": ("ثابت", "لا يتحرك", "لا تتحرك", "في مكان", "ساكن"),
    "plain": {
        "frames": ("{b} {m}", "{b}، {m}", "{b} {d}", "{b}، {d}", "{b}، {v}", "{b} - {d}", "{b}"),
        "training_frames": ("{b} {v}", "{b}: {m}", "{b}: {d}", "{b} - {v}", "{b} على خلفية سوداء"),
        "still": ("ثابت",),
        "draws": (("v", None),),
        # the modifier agrees with the noun; for a still object it is also the direction's word
        "slots": {
            "d": {"still": {"m": "ثابت", "f": "ثابتة"}, "moving": "{d}"},
            "m": {"still": {"m": "ثابت", "f": "ثابتة"}, "moving": {"m": "متحرك {d}", "f": "متحركة {d}"}},
        },
        "and": " و",
    },
}  # fmt: skip
