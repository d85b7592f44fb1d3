"""Russian: adjectives agree in gender and case (an inanimate masculine accusative equals the nominative); two word
orders, subject first ("круг движется влево") or direction first ("влево движется круг")."""

TABLE = {
    "code": "ru",
    "conj": ", и ",  # a comma closes a relative or gerund clause, and separates two clauses with their own subjects
    # (noun, gender), the noun as (nominative, accusative) where they differ
    "shapes": {
        "circle": (("круг", "m"), ("диск", "m")),
        "square": (("квадрат", "m"),),
        "triangle": (("треугольник", "m"),),
        "star": ((("звезда", "звезду"), "f"), (("звёздочка", "звёздочку"), "f")),
    },
    "noun_forms": {"nom": "{0}", "acc": "{1}"},
    # (masculine nominative/accusative, feminine nominative, feminine accusative)
    "colours": {
        "red": (("красный", "красная", "красную"),),
        "yellow": (("жёлтый", "жёлтая", "жёлтую"),),
        "green": (("зелёный", "зелёная", "зелёную"),),
        "blue": (("синий", "синяя", "синюю"),),
        "purple": (("фиолетовый", "фиолетовая", "фиолетовую"), ("лиловый", "лиловая", "лиловую")),
        "white": (("белый", "белая", "белую"),),
    },
    "sizes": {
        "small": (("маленький", "маленькая", "маленькую"), ("небольшой", "небольшая", "небольшую")),
        "large": (("большой", "большая", "большую"), ("крупный", "крупная", "крупную")),
    },
    "adjective_forms": {"m": "{0}", ("f", "nom"): "{1}", ("f", "acc"): "{2}"},
    "noun_draws": ("shape", "size", "colour"),
    "constants": {"relative": {"m": "который", "f": "которая"}},
    "verbs": ("движется", "перемещается", "плывёт", "скользит", "смещается", "летит", "направляется"),
    "direction_verbs": {"up": ("поднимается",), "down": ("опускается", "падает")},
    "directions": {
        "left": ("влево", "налево", "в левую сторону", "к левому краю"),
        "right": ("вправо", "направо", "в правую сторону", "к правому краю"),
        "up": ("вверх", "к верхнему краю"),
        "down": ("вниз", "к нижнему краю"),
        "up-left": ("вверх и влево", "по диагонали вверх и влево", "к левому верхнему углу"),
        "up-right": ("вверх и вправо", "по диагонали вверх и вправо", "к правому верхнему углу"),
        "down-left": ("вниз и влево", "по диагонали вниз и влево", "к левому нижнему углу"),
        "down-right": ("вниз и вправо", "по диагонали вниз и вправо", "к правому нижнему углу"),
    },
    # (after the subject, before the subject)
    "still": (
        ("стоит на месте", "на месте стоит"),
        ("не движется", "неподвижно стоит"),
        ("остаётся на месте", "на месте остаётся"),
        ("неподвижно висит", "неподвижно висит"),
        ("не двигается", "на месте стоит"),
    ),
    "forms": {"after": "{0}", "before": "{1}"},
    "speeds": {"slow": ("медленно",), "fast": ("быстро", "стремительно")},
    # gerund clauses: set off by a comma in either word order
    "events": {
        "bounce": (", отскакивая от краёв", ", отражаясь от стенок"),
        "enter": (", входя в кадр", ", появляясь из-за края кадра"),
        "exit": (", уходя из кадра", ", покидая кадр"),
    },
    "motion_draws": ("speed", "event", "own", "verb", "direction"),
    "motion": "{speed} {verb} {direction} {event}",
    "slots": {
        "fin": {"text": "{subject} {motion}", "form": "after"},
        "inv": {"text": "{direction} {speed} {verb} {subject} {event}", "form": "before", "after_first": "fin"},
        "nom_rel": {"text": "{subject}, {relative} {motion}", "form": "after"},
        "acc_rel": {"text": "{subject}, {relative} {motion}", "form": "after", "case": "acc"},
    },
    "frames": (
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
    ),
    "static_camera": ("Камера",),
    "still_words": ("на месте", "не движется", "не двигается", "неподвижно"),
    "plain": {
        "frames": ("{b} {m}", "{b}, {m}", "{b} {d}", "{b}, {d}", "{b}, {v}", "{b} — {d}", "{b}"),
        "training_frames": ("{b} {v}", "{m} {b}", "{b}: {d}", "{b}: {v}", "{b} на чёрном фоне"),
        "still": ("на месте", "неподвижно"),
        "draws": (("v", "after"),),
        # the modifier agrees with the noun
        "slots": {"m": {"still": {"m": "неподвижный", "f": "неподвижная"},
                        "moving": {"m": "движущийся {d}", "f": "движущаяся {d}"}}},
        "and": " и ",
        "still_words": ("неподвижный", "неподвижная"),
    },
}  # fmt: skip
