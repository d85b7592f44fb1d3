import pytest
import torch

from aiprod_core.cli import build_parser
from aiprod_core.config import preset
from aiprod_core.pipeline import build_model
from aiprod_core.train.reinit import reinitialise


def state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_reinit_replaces_only_the_named_components(one_thread):
    model = build_model(preset("tiny"), seed=3)
    vae, backbone, text = state(model.vae), state(model.backbone), state(model.text_encoder)
    model.vae.latent_mean.fill_(0.25)  # a fitted latent statistic must survive
    reinitialise(model, ["backbone", "text_encoder"], seed=7)
    new_backbone = state(model.backbone)
    assert any(not torch.equal(new_backbone[k], backbone[k]) for k in backbone)
    assert any(not torch.equal(v, text[k]) for k, v in model.text_encoder.state_dict().items() if v.is_floating_point())
    for k, v in model.vae.state_dict().items():
        if k != "latent_mean":
            assert torch.equal(v, vae[k]), k
    assert torch.all(model.vae.latent_mean == 0.25)
    again = reinitialise(build_model(preset("tiny"), seed=3), ["backbone"], seed=7)
    assert all(torch.equal(v, new_backbone[k]) for k, v in again.backbone.state_dict().items())  # seeded


def test_reinit_rejects_unknown_names(one_thread):
    model = build_model(preset("tiny"))
    with pytest.raises(ValueError, match="expected component names"):
        reinitialise(model, ["backbone", "decoder"])


def test_train_parser_takes_reinit():
    args = build_parser().parse_args(["train", "--out", "x", "--reinit", "backbone,text_encoder"])
    assert args.reinit == "backbone,text_encoder"
