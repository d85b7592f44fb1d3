"""The synthetic world: coloured shapes moving on black, captioned in twelve languages, with the exact flow.

It is the tiny model's training data and the reference that prompt-adherence metrics score against:
  scenes          what a clip shows (WorldSpec menus, Scene/SceneObject) and how it is drawn (render)
  clips           a seed's scene, captioned and rendered (make_clip, captioned_scene)
  captions        a scene's caption in a language: sentence frames, train/held-out splits, attribute words
  languages/      one data table per language: vocabulary, sentence frames, plain frames
  grammar         the one engine that writes every language's captions from its table
  plain_captions  plain prompts as people type them ("red circle, moving left")
  words           made-up words mixed into training captions
  flow            the exact optical flow of a clip, from its scene

The world sits beside text, models and flow: it imports none of train, eval, sampling or anything above.
"""

from .captions import LANGUAGES, SPLITS, attribute_words, caption, frame_ids, heldout_frames, plain_frames
from .clips import captioned_scene, make_clip
from .flow import world_flow
from .plain_captions import casual, normal_form
from .scenes import (
    ALL_SHAPES,
    BASIC_MOTIONS,
    COLOUR_RGB,
    COLOURS,
    DIAGONALS,
    EASY,
    HARD,
    MOTIONS,
    SHAPES,
    Clip,
    Scene,
    SceneObject,
    WorldSpec,
    object_path,
    render,
    sample_scene,
    to_uint8,
)
from .words import add_distractors, made_up_word

__all__ = [
    "ALL_SHAPES", "BASIC_MOTIONS", "COLOURS", "COLOUR_RGB", "DIAGONALS", "EASY", "HARD", "LANGUAGES", "MOTIONS",
    "SHAPES", "SPLITS", "Clip", "Scene", "SceneObject", "WorldSpec", "add_distractors", "attribute_words", "caption",
    "captioned_scene", "casual", "frame_ids", "heldout_frames", "made_up_word", "make_clip", "normal_form",
    "object_path", "plain_frames", "render", "sample_scene", "to_uint8", "world_flow",
]
