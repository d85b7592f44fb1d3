"""A world clip whole: its scene drawn from a seed, captioned in a language, and rendered.

Kept apart from scenes.py because captions describe scenes: captions imports scenes, and this module imports both.
"""

from __future__ import annotations

import numpy as np

from .captions import LANGUAGES, caption
from .scenes import EASY, Clip, Scene, WorldSpec, _pick, render, sample_scene


def captioned_scene(seed: int, spec: WorldSpec = EASY, language: str | None = None,
                    split: str = "train", scene_seed: int | None = None) -> tuple[Scene, str, str, int]:
    """(scene, language, caption, sentence frame index) of `make_clip(seed, ...)`, without drawing its frames. Each
    draws from its own stream of `seed` (0: scene, 1: language, 2: caption), so any of them can be redrawn alone;
    `scene_seed` takes the scene from another seed's stream (a scene captioned anew)."""
    scene = sample_scene(np.random.default_rng([seed if scene_seed is None else scene_seed, 0]), spec)
    if language is None:
        language = _pick(np.random.default_rng([seed, 1]), LANGUAGES)
    text, frame_id = caption(scene, language, np.random.default_rng([seed, 2]), split=split)
    return scene, language, text, frame_id


def make_clip(seed: int, spec: WorldSpec = EASY, language: str | None = None, split: str = "train") -> Clip:
    """The clip for `seed`: the same seed always gives the same scene, frames and caption. The scene does not depend
    on the language, so one seed gives the same clip captioned in every language. language=None picks one at random;
    split chooses the caption's sentence frames ("train" or "heldout")."""
    scene, language, text, frame_id = captioned_scene(seed, spec, language, split)
    frames = render(scene, spec.frames, spec.height, spec.width)
    return Clip(frames=frames, caption=text, language=language, scene=scene, frame_template_id=frame_id)
