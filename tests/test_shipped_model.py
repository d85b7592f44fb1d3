"""The embedded aiprod-v2-tiny model: present, small, loads by default, generates, follows colour words."""

import pytest

from aiprod_core.eval.adherence import prompt_adherence
from aiprod_core.pipeline import DEFAULT_MODEL, default_model_path, generate, load_model


@pytest.fixture(scope="module")
def model():
    return load_model()


def test_shipped_file_is_there_and_small():
    path = default_model_path()
    assert path is not None and path.name == DEFAULT_MODEL
    assert path.stat().st_size <= 25 * 2**20


def test_default_model_loads_and_generates(model):
    assert model.trained and model.source.endswith(DEFAULT_MODEL)
    video = generate(model, "a blue square moving up", steps=8, progress=False)
    assert video.shape == (17, 64, 64, 3)
    assert video.max() > 0.3  # an object is drawn on the black background
    big = generate(model, "a blue square moving up", frames=5, steps=4, refine_steps=2, upscale=True, progress=False)
    assert big.shape == (5, 128, 128, 3)


def test_prompts_are_followed_well_above_chance(model):
    # 24 clips on held-out caption frames, 2 per language. Chance: colour 1/6, shape 1/3, direction 1/5,
    # i.e. 0.7 of 3 attributes per clip; the model must get at least 1.5x that many right.
    r = prompt_adherence(model, per_language=2, steps=12, progress=False)
    correct = sum(r["generated"].values())
    assert correct >= 1.5 * (1 / 6 + 1 / 3 + 1 / 5), r["generated"]
