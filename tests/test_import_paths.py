"""Names that moved out of aiprod_core.pipeline and aiprod_core.models.lora still import from there for one
release, each with a DeprecationWarning, and are the objects of their new modules; the documented entry points
import without one."""

import importlib
import subprocess
import sys
import warnings

import pytest
import torch

from aiprod_core.conditioning import MotionGuidance
from aiprod_core.model import load_model
from aiprod_core.sampling.loop import sample_latent
from aiprod_core.text import EmbeddingCache, encode_cached

MOVED = {
    "VideoModel": "aiprod_core.model", "build_model": "aiprod_core.model", "components_from": "aiprod_core.model",
    "load_component": "aiprod_core.model", "default_model_path": "aiprod_core.model",
    "loras_applied": "aiprod_core.model", "DEFAULT_MODEL": "aiprod_core.model", "WEIGHTS_DIR": "aiprod_core.model",
    "first_frames_condition": "aiprod_core.conditioning", "fit_frames": "aiprod_core.conditioning",
    "continuation_frames": "aiprod_core.conditioning", "join_clips": "aiprod_core.conditioning",
    "EXTEND_CONTEXT": "aiprod_core.conditioning", "decode_latent": "aiprod_core.models.vae",
    "preview_factors": "aiprod_core.eval.preview",
}


@pytest.mark.parametrize("name", sorted(MOVED))
def test_a_moved_name_still_imports_from_pipeline_with_a_warning(name):
    pipeline = importlib.import_module("aiprod_core.pipeline")
    with pytest.warns(DeprecationWarning, match=rf"pipeline\.{name} moved to {MOVED[name]}\.{name}"):
        old = getattr(pipeline, name)
    assert old is getattr(importlib.import_module(MOVED[name]), name)


def test_the_documented_entry_points_import_without_a_warning():
    code = ("import warnings; warnings.simplefilter('error'); "
            "from aiprod_core.pipeline import load_model, generate, MotionGuidance; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_unknown_names_are_still_attribute_errors():
    import aiprod_core.pipeline as pipeline

    with pytest.raises(AttributeError, match="no attribute 'sample_latents'"):
        pipeline.sample_latents  # noqa: B018


def test_the_old_sample_latent_takes_the_old_motion_keywords():
    import aiprod_core.pipeline as pipeline
    from aiprod_core.flow.camera import camera_flow

    m = load_model()
    ctx, mask = encode_cached(m.text_encoder, ["a red circle"], EmbeddingCache())
    shape, kw = (1, 16, 3, 8, 8), dict(steps=2, cfg=1.0, seed=5)
    flow = camera_flow("zoom-in", 9, 64, 64)
    new = sample_latent(m.backbone, ctx, mask, None, None, shape, motion=MotionGuidance(flow=flow, flow_end=0.5), **kw)
    with pytest.warns(DeprecationWarning, match="sampling.loop.sample_latent"):
        old_sample_latent = pipeline.sample_latent
    assert torch.equal(old_sample_latent(m.backbone, ctx, mask, None, None, shape, flow=flow, flow_end=0.5, **kw), new)
    assert not torch.equal(sample_latent(m.backbone, ctx, mask, None, None, shape, **kw), new)


def test_the_adapted_text_encoder_still_imports_from_models_lora_with_a_warning():
    import aiprod_core.models.lora as models_lora
    import aiprod_core.text.lora as text_lora

    for name in ("AdaptedTextEncoder", "adapted_text_encoder"):
        with pytest.warns(DeprecationWarning, match=rf"text\.lora\.{name}"):
            assert getattr(models_lora, name) is getattr(text_lora, name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from aiprod_core.models.lora import LoRA, apply_loras  # noqa: F401  the names that stayed warn about nothing


WORLD_MOVED = {
    ("world", "WorldSpec"): "aiprod_core.world.scenes", ("world", "render"): "aiprod_core.world.scenes",
    ("world", "_shape_sdf"): "aiprod_core.world.scenes", ("world", "make_clip"): "aiprod_core.world.clips",
    ("world", "captioned_scene"): "aiprod_core.world.clips", ("world_flow", "world_flow"): "aiprod_core.world.flow",
    ("captions", "LANGUAGES"): "aiprod_core.world.captions", ("captions", "caption"): "aiprod_core.world.captions",
    ("captions", "_grammar"): "aiprod_core.world.captions",
    ("plain_captions", "PLAIN_FRAMES"): "aiprod_core.world.plain_captions",
    ("plain_captions", "casual"): "aiprod_core.world.plain_captions",
    ("distractors", "add_distractors"): "aiprod_core.world.words",
    ("distractors", "made_up_word"): "aiprod_core.world.words",
}


@pytest.mark.parametrize(("old", "name"), sorted(WORLD_MOVED))
def test_a_world_name_still_imports_from_train_with_a_warning(old, name):
    module = importlib.import_module(f"aiprod_core.train.{old}")
    new = WORLD_MOVED[old, name]
    with pytest.warns(DeprecationWarning, match=rf"train\.{old}\.{name} moved to {new}\.{name}"):
        moved = getattr(module, name)
    assert moved is getattr(importlib.import_module(new), name)


def test_the_world_imports_without_a_warning_and_without_the_layers_above():
    code = ("import sys, warnings; warnings.simplefilter('error'); import aiprod_core.world; "
            "print(sorted(m for m in sys.modules if m.split('.')[:2] in (['aiprod_core', 'train'], "
            "['aiprod_core', 'eval'], ['aiprod_core', 'sampling'], ['aiprod_core', 'model'])))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr[-2000:] + r.stdout


def test_an_unknown_name_in_an_old_world_module_is_an_attribute_error():
    import aiprod_core.train.world as old

    with pytest.raises(AttributeError, match="no attribute 'make_clips'"):
        old.make_clips  # noqa: B018
