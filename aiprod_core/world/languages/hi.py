"""Hindi: adjective + noun, verb last; every shape noun is masculine, so the -ā adjectives and verbs take -ā forms."""

TABLE = {
    "code": "hi",
    "conj": " और ",
    "capitalise": False,
    "colours": {
        "red": ("लाल",),
        "yellow": ("पीला",),
        "green": ("हरा",),
        "blue": ("नीला",),
        "purple": ("बैंगनी",),
        "white": ("सफ़ेद", "सफेद"),
    },
    "shapes": {"circle": ("वृत्त", "गोला"), "square": ("वर्ग",), "triangle": ("त्रिभुज",), "star": ("तारा",)},
    "sizes": {"small": ("छोटा",), "large": ("बड़ा",)},
    "subject": "एक {noun}",
    # verb stems: progressive (जा रहा है), habitual (जाता है), participle (जाता हुआ)
    "verbs": (("जा",), ("चल",), ("खिसक",), ("बढ़",), ("सरक",), ("तैर",)),
    "forms": {"prog": "{0} रहा है", "hab": "{0}ता है", "part": "{0}ता हुआ"},
    "directions": {
        "left": ("बाईं ओर", "बाएँ", "बाईं तरफ़"),
        "right": ("दाईं ओर", "दाएँ", "दाईं तरफ़"),
        "up": ("ऊपर", "ऊपर की ओर"),
        "down": ("नीचे", "नीचे की ओर"),
        "up-left": ("ऊपर बाईं ओर", "तिरछा ऊपर बाईं ओर", "बाएँ ऊपरी कोने की ओर"),
        "up-right": ("ऊपर दाईं ओर", "तिरछा ऊपर दाईं ओर", "दाएँ ऊपरी कोने की ओर"),
        "down-left": ("नीचे बाईं ओर", "तिरछा नीचे बाईं ओर", "बाएँ निचले कोने की ओर"),
        "down-right": ("नीचे दाईं ओर", "तिरछा नीचे दाईं ओर", "दाएँ निचले कोने की ओर"),
    },
    # (progressive, habitual, participle)
    "still": (
        ("स्थिर है", "स्थिर रहता है", "स्थिर खड़ा"),
        ("अपनी जगह पर रुका हुआ है", "अपनी जगह पर रुका रहता है", "अपनी जगह पर रुका हुआ"),
        ("हिल नहीं रहा है", "हिलता नहीं है", "बिना हिले-डुले रुका हुआ"),
        ("अपने स्थान पर टिका हुआ है", "अपने स्थान पर टिका रहता है", "अपने स्थान पर टिका हुआ"),
    ),
    "still_forms": {"prog": "{0}", "hab": "{1}", "part": "{2}"},
    "speeds": {"slow": ("धीरे-धीरे", "धीमी गति से"), "fast": ("तेज़ी से", "जल्दी-जल्दी")},
    # adverbial participles placed before the direction
    "events": {
        "bounce": ("किनारों से टकराकर लौटते हुए", "किनारों से उछलते हुए"),
        "enter": ("फ़्रेम में प्रवेश करते हुए", "बाहर से फ़्रेम में आते हुए"),
        "exit": ("फ़्रेम से बाहर निकलते हुए", "फ़्रेम छोड़ते हुए"),
    },
    "motion_draws": ("verb", "event", "speed", "direction"),
    "motion": "{event} {speed} {direction} {verb}",
    "slots": {
        "prog": {"text": "{subject} {motion}", "form": "prog"},
        "hab": {"text": "{subject} {motion}", "form": "hab"},
        "part": {"text": "{motion} {subject}", "form": "part"},
    },
    "frames": (
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
    ),
    # the stems every direction phrase of these motions contains
    "motion_words": {"left": ("बाईं", "बाएँ"), "right": ("दाईं", "दाएँ"), "up": ("ऊपर",), "down": ("नीचे",)},
    "still_words": ("स्थिर", "रुका", "हिल", "टिका"),
    "plain": {
        "frames": ("{b} {v}", "{b}, {v}", "{b} {d}", "{b}, {d}", "{n} {d}", "{b}", "{n}"),
        "training_frames": ("{n} {v}", "{b} {m}", "{n} {m}", "{b}: {d}", "काली पृष्ठभूमि पर {n}"),
        "still": ("स्थिर",),
        "draws": (("v", "prog"), ("m", "part")),
    },
}  # fmt: skip
