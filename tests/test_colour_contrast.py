"""The colour-contrast text objective: English captions with their colour word swapped, and a loss that falls when
the encoder's states of a caption and its twin are pushed apart."""

from __future__ import annotations

import torch

from aiprod_core.config import preset
from aiprod_core.model import build_model
from aiprod_core.train.objectives import colour_contrast_loss, colour_swapped
from aiprod_core.train.options import RunOptions, TrainOptions
from aiprod_core.train.phases import Phase
from aiprod_core.train.trainer import Trainer


def test_one_english_colour_word_is_swapped_keeping_its_capital():
    g = torch.Generator().manual_seed(0)
    twins = {colour_swapped("A red circle moving left.", g) for _ in range(40)}
    assert len(twins) == 5 and all(t.startswith("A ") and " red " not in t for t in twins)
    assert colour_swapped("red circle, moving left", g).split()[0] in ("yellow", "green", "blue", "purple", "white")
    for caption in ("un cercle rouge", "a red circle and a blue square", "", "a bored circle"):
        assert colour_swapped(caption, g) is None  # no colour, two of them, or red only inside a word


def test_the_loss_is_zero_past_the_margin_and_pulls_close_states_apart():
    a = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]], requires_grad=True)
    mask = torch.ones(1, 2, dtype=torch.bool)
    far = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]])
    assert colour_contrast_loss(a, mask, far, mask).item() == 0.0
    near = torch.tensor([[[1.0, 0.1], [1.0, 0.1]]])
    loss = colour_contrast_loss(a, mask, near, mask)
    loss.backward()
    assert loss.item() > 0.4 and a.grad[0, 0, 1] > 0  # a step of descent moves a away from near, along its 2nd axis


def test_a_phase_with_colour_contrast_trains_the_encoder_on_it(tmp_path):
    ph = [Phase("contrast", steps=3, batch=8, warmup=1, colour_contrast=1.0, languages=["en"],
                world={"frames": 5, "height": 32, "width": 32})]
    model = build_model(preset("tiny"))
    trainer = Trainer(model, ph, TrainOptions(RunOptions(tmp_path, validate=False, progress=False, log_every=1)))
    trainer.run()
    rows = [r for r in trainer.history if "colour_contrast" in r]
    assert rows and all(r["colour_contrast"] >= 0 for r in rows) and any(r["colour_contrast"] > 0 for r in rows)
