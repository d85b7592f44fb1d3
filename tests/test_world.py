"""The synthetic world and its captions: every language names what the scene shows, the held-out sentence frames
never leak into training, clips are deterministic and render the same scene at 64 and 128 px."""

from __future__ import annotations

import dataclasses
import itertools
import re

import cv2
import numpy as np
import pytest

from aiprod_core.world import (
    ALL_SHAPES,
    BASIC_MOTIONS,
    COLOURS,
    EASY,
    HARD,
    LANGUAGES,
    MOTIONS,
    Scene,
    SceneObject,
    WorldSpec,
    attribute_words,
    caption,
    captions,
    frame_ids,
    heldout_frames,
    make_clip,
    render,
    sample_scene,
    scenes,
)

# scripts written without spaces between words, or with particles/conjunctions attached to words
_SUBSTRING_LANGUAGES = {"zh", "ja", "ko", "ar", "hi"}
_OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}


def mentions(text: str, forms: tuple[str, ...], language: str) -> bool:
    """True when `text` contains one of `forms` as a whole word (as a substring for scripts without spaces)."""
    if language in _SUBSTRING_LANGUAGES:
        return any(f in text for f in forms)
    return any(re.search(rf"(?<!\w){re.escape(f)}(?!\w)", text, re.IGNORECASE) for f in forms)


def _object(colour: str, shape: str, motion: str) -> SceneObject:
    return SceneObject(colour=colour, shape=shape, motion=motion, size=0.13, x=0.5, y=0.5, vx=0.0, vy=0.0)


def test_every_language_names_colour_shape_and_motion():
    """Every language x colour x shape x motion, in both splits: the caption names the right colour, shape and
    motion, no other colour or shape, not the opposite direction, and leaves no slot unfilled."""
    rng = np.random.default_rng(0)
    for language in LANGUAGES:
        words = attribute_words(language)
        assert set(words["colour"]) == set(COLOURS) and set(words["shape"]) == set(ALL_SHAPES)
        assert set(words["motion"]) == set(MOTIONS)
        for colour, shape, motion in itertools.product(COLOURS, ALL_SHAPES, MOTIONS):
            scene = Scene(objects=(_object(colour, shape, motion),))
            for split in ("train", "heldout"):
                text, _ = caption(scene, language, rng, split)
                where = f"{language} {colour} {shape} {motion}: {text!r}"
                assert "{" not in text and "}" not in text and "  " not in text, where
                assert mentions(text, words["colour"][colour], language), where
                assert mentions(text, words["shape"][shape], language), where
                assert mentions(text, words["motion"][motion], language), where
                for other in set(COLOURS) - {colour}:
                    assert not mentions(text, words["colour"][other], language), f"{other} in {where}"
                for other in set(ALL_SHAPES) - {shape}:
                    assert not mentions(text, words["shape"][other], language), f"{other} in {where}"
                if motion in _OPPOSITE:
                    assert not mentions(text, words["motion"][_OPPOSITE[motion]], language), where
                    assert not mentions(text, words["motion"]["still"], language), where
                if motion == "still":
                    for direction in _OPPOSITE:
                        assert not mentions(text, words["motion"][direction], language), where


def test_hard_scenes_name_both_objects_and_modifiers():
    """Two objects, speeds, sizes, bounces, entries and exits: each object keeps its colour, shape and motion
    words; the English caption also names the speed and size classes."""
    for language in LANGUAGES:
        words = attribute_words(language)
        for seed in range(60):
            scene = sample_scene(np.random.default_rng(seed), HARD)
            text, _ = caption(scene, language, np.random.default_rng(seed))
            assert "{" not in text and "  " not in text, text
            for obj in scene.objects:
                where = f"{language} {obj}: {text!r}"
                assert mentions(text, words["colour"][obj.colour], language), where
                assert mentions(text, words["shape"][obj.shape], language), where
                assert mentions(text, words["motion"][obj.motion], language), where
                if obj.speed_word:
                    assert mentions(text, words["speed"][obj.speed_word], language), where
                if obj.size_word:
                    assert mentions(text, words["size"][obj.size_word], language), where


def test_languages_have_many_frames_and_agree_in_gender():
    for language in LANGUAGES:
        assert 12 <= captions.num_frames(language) <= 14, language
    scene = Scene(objects=(_object("red", "star", "left"),))
    rng = np.random.default_rng(1)
    # feminine nouns take feminine adjectives, masculine ones masculine, in every case the frames use
    green_star = Scene(objects=(_object("green", "star", "left"),))
    assert all("étoile verte" in caption(green_star, "fr", rng)[0] for _ in range(20))
    assert all("estrella roja" in caption(scene, "es", rng)[0] for _ in range(20))
    white_circle = Scene(objects=(_object("white", "circle", "up"),))
    texts = [caption(white_circle, "ar", rng)[0] for _ in range(40)]
    assert all("دائرة بيضاء" in t or "قرص أبيض" in t or "قرصًا أبيض" in t for t in texts), texts
    square = Scene(objects=(_object("red", "square", "down"),))
    texts = [caption(square, "de", rng)[0] for _ in range(60)]
    assert all(re.search(r"\b(ein rotes|einem roten) Quadrat\b", t, re.IGNORECASE) for t in texts), texts
    circle = Scene(objects=(_object("blue", "circle", "still"),))
    texts = [caption(circle, "de", rng)[0] for _ in range(60)]
    assert all(
        re.search(
            r"\b(ein blauer Kreis|einen blauen Kreis|einem blauen Kreis|eine blaue Scheibe|einer blauen Scheibe)\b",
            t,
            re.IGNORECASE,
        )
        for t in texts
    ), texts
    assert any("einen blauen Kreis" in t for t in texts) and any("einem blauen Kreis" in t for t in texts)


def test_heldout_frames_are_disjoint_from_training():
    for language in LANGUAGES:
        held, train = set(heldout_frames(language)), set(frame_ids(language, "train"))
        n = captions.num_frames(language)
        assert held.isdisjoint(train) and held | train == set(range(n))
        assert len(held) >= 2 and 0.15 <= len(held) / n <= 0.35, (language, held)
        rng = np.random.default_rng(3)
        scene = sample_scene(rng, HARD)
        seen_train = {caption(scene, language, rng, "train")[1] for _ in range(300)}
        seen_held = {caption(scene, language, rng, "heldout")[1] for _ in range(100)}
        assert seen_train == train and seen_held == held, language
    with pytest.raises(ValueError, match="split"):
        frame_ids("en", "test")
    with pytest.raises(ValueError, match="language"):
        caption(scene, "xx", rng)


def test_make_clip_is_deterministic_for_a_seed():
    a, b = make_clip(7, HARD), make_clip(7, HARD)
    assert a.caption == b.caption and a.language == b.language and a.scene == b.scene
    np.testing.assert_array_equal(a.frames, b.frames)
    others = [make_clip(seed, HARD) for seed in range(8, 12)]
    assert any(o.caption != a.caption for o in others) and any(o.scene != a.scene for o in others)
    # the scene does not depend on the language: one seed, the same clip in every language
    fr, ja = make_clip(7, EASY, "fr"), make_clip(7, EASY, "ja")
    assert fr.scene == ja.scene and fr.caption != ja.caption
    assert make_clip(7, EASY, "en", "heldout").frame_template_id in heldout_frames("en")


@pytest.mark.parametrize(("size", "frames"), [(64, 17), (128, 17), (64, 9), (64, 1)])
def test_clips_render_at_the_requested_size(size, frames):
    spec = WorldSpec(frames=frames, height=size, width=size)
    clip = make_clip(3, spec, "en")
    assert clip.frames.shape == (frames, size, size, 3) and clip.frames.dtype == np.float32
    assert clip.frames.min() >= 0.0 and clip.frames.max() <= 1.0
    # black background: most pixels are exactly zero, and the object is drawn
    assert (clip.frames == 0).all(axis=-1).mean() > 0.8 and clip.frames.max() > 0.9
    assert clip.uint8().dtype == np.uint8


def test_invalid_specs_say_what_to_use():
    with pytest.raises(ValueError, match="1 \\+ 4k"):
        WorldSpec(frames=16)
    with pytest.raises(ValueError, match="motions"):
        WorldSpec(motions=("sideways",))
    with pytest.raises(ValueError, match="objects"):
        WorldSpec(objects=(1, 3))
    with pytest.raises(ValueError, match="objects"):
        WorldSpec(objects=())


def test_object_counts_are_a_menu():
    """`objects` lists the counts to pick from; repeating one weights it."""
    def counts(spec, n=600):
        rng = np.random.default_rng(3)
        return [len(scenes.sample_scene(rng, spec).objects) for _ in range(n)]

    assert set(counts(WorldSpec(objects=(1, 1)))) == {1} and set(counts(WorldSpec(objects=(2, 2)))) == {2}
    assert 0.40 < counts(WorldSpec(objects=(1, 2))).count(2) / 600 < 0.60
    assert 0.25 < counts(WorldSpec(objects=(1, 1, 2))).count(2) / 600 < 0.42


def test_same_scene_renders_consistently_at_64_and_128():
    """The 128 px render, averaged down to 64 px, matches the 64 px render: same place, same size, same colour."""
    for seed in range(6):
        scene = sample_scene(np.random.default_rng(seed), HARD)
        small, large = render(scene, height=64), render(scene, height=128)
        down = np.stack([cv2.resize(f, (64, 64), interpolation=cv2.INTER_AREA) for f in large])
        assert np.abs(down - small).mean() < 0.01
        for t in (0, scene.frames - 1):
            ms, md = small[t].sum(-1), down[t].sum(-1)
            if ms.sum() > 1:
                ys, xs = np.indices(ms.shape)
                cs = np.array([(xs * ms).sum(), (ys * ms).sum()]) / ms.sum()
                cd = np.array([(xs * md).sum(), (ys * md).sum()]) / md.sum()
                assert np.abs(cs - cd).max() < 0.3


def test_objects_move_the_way_their_motion_says():
    spec = WorldSpec(motions=BASIC_MOTIONS)
    for seed in range(40):
        scene = sample_scene(np.random.default_rng(seed), spec)
        obj = scene.objects[0]
        path = scenes.object_path(obj, spec.frames)
        dx, dy = path[-1] - path[0]
        expected = scenes.DIRECTION_VECTORS[obj.motion]
        if obj.motion == "still":
            assert dx == dy == 0
        else:
            assert np.dot([dx, dy], expected) > 0.25  # normal travel is 0.3-0.48 of the frame


def test_two_objects_have_different_colours():
    spec = dataclasses.replace(HARD, objects=(2, 2))
    for seed in range(150):
        scene = sample_scene(np.random.default_rng(seed), spec)
        assert len(scene.objects) == 2
        assert scene.objects[0].colour != scene.objects[1].colour


def test_distractors_add_made_up_words_and_keep_every_attribute_word():
    """Made-up words come from the letters of the training frames only, never contain an attribute word, and leave
    the caption's own words in order; the training data adds them to the phase's share of captions, the same for
    the same seed."""
    from aiprod_core.train.data import WorldData
    from aiprod_core.train.phases import Phase
    from aiprod_core.world import add_distractors, made_up_word

    def letters(language: str, ids) -> set[str]:
        frames = captions._grammar(language).frames
        return set("".join(t for i in ids for t in ((frames[i],) if isinstance(frames[i], str) else frames[i])))

    for language in LANGUAGES:
        held_only = letters(language, heldout_frames(language)) - letters(language, frame_ids(language))
        forms = [f.lower() for table in attribute_words(language).values() for fs in table.values() for f in fs]
        rng = np.random.default_rng(0)
        for _ in range(200):
            word = made_up_word(language, rng)
            assert word and not set(word) & held_only, (language, word)
            assert not any(f in word.lower() for f in forms), (language, word)
        scene = Scene(objects=(_object("purple", "triangle", "left"),))
        text, _ = caption(scene, language, rng)
        noisy = add_distractors(text, language, np.random.default_rng(1))
        assert noisy != text and add_distractors(text, language, np.random.default_rng(1)) == noisy
        words = attribute_words(language)
        for attribute, value in (("colour", "purple"), ("shape", "triangle"), ("motion", "left")):
            assert mentions(noisy, words[attribute][value], language), (language, noisy)
        if language not in ("zh", "ja"):  # the caption's words, in order, with the made-up ones between them
            it = iter(noisy.split(" "))
            assert all(w in it for w in text.split(" ")), (language, noisy)

    phase = Phase("p", world={"frames": 5}, caption_distractors=0.5)
    plain = Phase("p", world={"frames": 5})
    data = WorldData(3)
    changed = [data.sample(phase, 0, 0, i).caption != data.sample(plain, 0, 0, i).caption for i in range(40)]
    assert 8 <= sum(changed) <= 32
    assert [data.sample(phase, 0, 0, i).caption for i in range(5)] == [data.sample(phase, 0, 0, i).caption for i in range(5)]
    with pytest.raises(ValueError, match="caption_distractors"):
        Phase("p", caption_distractors=1.5)


def test_a_world_pool_captions_a_fixed_set_of_scenes_anew():
    import torch

    from aiprod_core.train.data import WorldData, item_seed, video_tensor
    from aiprod_core.train.phases import Phase

    size = {"frames": 5, "height": 32, "width": 32}
    pooled = Phase("p", world=size, world_pool=3)
    samples = [WorldData(0).sample(pooled, 1, step, i) for step in range(10) for i in range(2)]
    groups: dict[int, list] = {}
    for s in samples:
        groups.setdefault(s.pool_key, []).append(s)
    assert sorted(groups) == [0, 1, 2]
    for group in groups.values():  # one scene each: the same frames and labels, captions drawn anew
        assert all(torch.equal(s.video, group[0].video) and s.labels == group[0].labels for s in group)
        assert len({s.caption for s in group}) > 1
    assert len({s.video.sum().item() for s in samples}) == 3
    # without a pool every sample is the clip of its own seed, as it always was
    plain = Phase("p", world=size)
    s = WorldData(0).sample(plain, 1, 4, 1)
    clip = make_clip(item_seed(0, 1, 4, 1), plain.spec)
    assert s.pool_key is None and s.caption == clip.caption and torch.equal(s.video, video_tensor(clip.frames))
    with pytest.raises(ValueError, match="world_pool"):
        Phase("p", stage="vae", world_pool=8)


def test_every_frame_that_calls_the_camera_static_is_known():
    """Scenes filmed with a camera move skip these frames, so a caption never contradicts the clip's motion."""
    static = ("static", "fixe", "fest", "fija", "ferma", "parada", "зафиксирована", "固定", "고정", "مثبتة")
    for lang in LANGUAGES:
        for frame in captions._grammar(lang).frames:
            texts = (frame,) if isinstance(frame, str) else frame
            if any(w in t for t in texts for w in static):
                assert captions._says_static_camera(frame), (lang, frame)


def test_plain_prompts_name_what_the_scene_shows():
    """The plain frames ("red circle, moving left", "ein roter Kreis nach links", a bare "a green triangle"): at
    least six evaluation frames per language, one of them naming no motion; every plain caption names its colour
    and shape, and its motion unless it names none, which only a still scene gets; typed as people type them."""
    rng = np.random.default_rng(0)
    for language in LANGUAGES:
        frames = captions.plain_frames(language, "plain")
        assert len(frames) >= 6 and any("{v}" not in f and "{m}" not in f and "{d}" not in f for f in frames)
        words = attribute_words(language)
        for colour, shape, motion in itertools.product(COLOURS, ALL_SHAPES, BASIC_MOTIONS):
            scene = Scene(objects=(_object(colour, shape, motion),))
            for split in ("plain", "train-plain"):
                seen_ids = set()
                for _ in range(6):
                    text, frame_id = caption(scene, language, rng, split)
                    seen_ids.add(frame_id)
                    where = f"{language} {split} {colour} {shape} {motion}: {text!r}"
                    assert "{" not in text and "  " not in text and text[-1] not in ".。।", where
                    assert text[0] == text[0].lower(), where
                    assert mentions(text, words["colour"][colour], language), where
                    assert mentions(text, words["shape"][shape], language), where
                    names_motion = any(mentions(text, forms, language) for forms in words["motion"].values())
                    assert mentions(text, words["motion"][motion], language) or (motion == "still" and not names_motion), where
                    for other in set(COLOURS) - {colour}:
                        assert not mentions(text, words["colour"][other], language), f"{other} in {where}"
                    if motion in _OPPOSITE:
                        assert not mentions(text, words["motion"][_OPPOSITE[motion]], language), where
                        assert not mentions(text, words["motion"]["still"], language), where
        two = sample_scene(np.random.default_rng(5), dataclasses.replace(HARD, objects=(2,)))
        text, _ = caption(two, language, rng, "plain")
        for obj in two.objects:
            assert mentions(text, words["colour"][obj.colour], language), (language, text)


def test_plain_evaluation_frames_are_kept_out_of_training():
    """No plain evaluation caption equals a caption that training can draw (its sentence frames, with their
    first letter lowercased or final full stop dropped, or its plain styles), scene by scene."""
    from aiprod_core.world import normal_form

    for language in LANGUAGES:
        rng = np.random.default_rng(1)
        for colour, shape, motion in itertools.product(("red", "purple"), scenes.SHAPES, BASIC_MOTIONS):
            scene = Scene(objects=(_object(colour, shape, motion),))
            trained = {normal_form(caption(scene, language, rng, split)[0])
                       for split, n in (("train", 150), ("train-plain", 60)) for _ in range(n)}
            for _ in range(30):
                text, _ = caption(scene, language, rng, "plain")
                assert normal_form(text) not in trained, (language, text)
    with pytest.raises(ValueError, match="plain frames"):
        captions.plain_frames("en", "train")


def test_casual_captions_look_typed_and_plain_ones_are_mixed_in():
    from aiprod_core.train.data import WorldData
    from aiprod_core.train.phases import Phase
    from aiprod_core.world import casual

    rng = np.random.default_rng(0)
    looks = {casual("A red circle moving left.", rng) for _ in range(60)}
    assert looks == {"a red circle moving left.", "A red circle moving left", "a red circle moving left"}
    assert casual("红色圆形向左移动。", rng) in ("红色圆形向左移动。", "红色圆形向左移动")
    data = WorldData(3)
    base = Phase("p", world={"frames": 5})
    styled = Phase("p", world={"frames": 5}, plain_captions=0.5, casual_captions=1.0)
    pairs = [(data.sample(base, 0, 0, i).caption, data.sample(styled, 0, 0, i).caption) for i in range(60)]
    changed = sum(a != b for a, b in pairs)
    assert changed >= 50  # every caption is either plain or casual (a few casual ones look the same)
    assert [data.sample(styled, 0, 0, i).caption for i in range(5)] == [b for _, b in pairs[:5]]
    with pytest.raises(ValueError, match="plain_captions"):
        Phase("p", plain_captions=2.0)
    # a phase's languages menu: only those languages, a language listed twice drawn about twice as often
    menu = Phase("p", world={"frames": 5}, languages=["en", "en", "ja"])
    texts = [data.sample(menu, 0, 0, i).caption for i in range(60)]
    japanese = [any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in t) for t in texts]
    assert 8 <= sum(japanese) <= 32, texts
    assert all(t.isascii() for t, ja in zip(texts, japanese) if not ja), texts  # the others are English
    with pytest.raises(ValueError, match="languages"):
        Phase("p", languages=["xx"])


def test_focus_draws_the_hard_combinations_for_its_share_of_samples():
    """Hard-example mining: a phase's `focus_share` of samples are one object of a listed [colour, shape, motion]."""
    from aiprod_core.train.data import WorldData
    from aiprod_core.train.phases import Phase

    data = WorldData(3)
    focus = [["red", "circle", "left"], ["blue", "square", "up"]]
    phase = Phase("p", world={"frames": 5, "objects": [1, 2]}, focus=focus, focus_share=0.5)
    samples = [data.sample(phase, 0, 0, i) for i in range(200)]
    combos = [[COLOURS[s.labels["colour"]], ALL_SHAPES[s.labels["shape"]], MOTIONS[s.labels["motion"]]]
              if s.labels["colour"] >= 0 else None for s in samples]
    hits = [c for c in combos if c in focus]
    assert 70 <= len(hits) <= 130 and {tuple(c) for c in hits} == {tuple(c) for c in focus}
    assert all(s.video is not None and s.caption for s in samples)
    for bad, words in (({"focus": [["pink", "circle", "left"]], "focus_share": 0.5}, "unknown or no entries"),
                       ({"focus_share": 0.5}, "focus_share=0.5 is a fraction"),
                       ({"focus": focus, "focus_share": 0.5, "world_pool": 64}, "focus_share and world_pool")):
        with pytest.raises(ValueError, match=words):
            Phase("p", **bad)
