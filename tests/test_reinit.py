import pytest
import torch

from aiprod_core.cli import build_parser
from aiprod_core.config import preset
from aiprod_core.model import build_model
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


def test_absolute_positions_added_to_a_saved_model_train_and_reload(tmp_path, one_thread):
    """A model saved without absolute positions gains them from the train command: same output at the start,
    then trained weights that load back with the new config."""
    import dataclasses
    import json

    from aiprod_core.checkpoint import save_checkpoint
    from aiprod_core.cli import main
    from aiprod_core.model import load_model
    from aiprod_core.train.reinit import add_absolute_positions

    cfg = preset("tiny")
    cfg = dataclasses.replace(cfg, upscaler=None, backbone=dataclasses.replace(cfg.backbone, absolute_positions=0))
    old = build_model(cfg, seed=1)
    torch.nn.init.normal_(old.backbone.proj_out.weight, std=0.1)
    path = tmp_path / "old.safetensors"
    save_checkpoint(path, cfg, {"backbone": old.backbone, "vae": old.vae, "text_encoder": old.text_encoder})

    model = load_model(path)
    x, sigma, ctx = torch.randn(1, 16, 2, 4, 4), torch.tensor([0.7]), torch.randn(1, 3, 128)
    with torch.no_grad():
        before = model.backbone(x, sigma, ctx)
        add_absolute_positions(model, 4)
        assert torch.equal(model.backbone(x, sigma, ctx), before)
    assert model.config.backbone.absolute_positions == 4
    backbone = model.backbone
    assert add_absolute_positions(model, 4).backbone is backbone  # asked for what it has: nothing changes
    with pytest.raises(ValueError, match=r"already has absolute-position features \(4 per axis\), not 8"):
        add_absolute_positions(model, 8)

    phases = tmp_path / "p.json"
    phases.write_text(json.dumps([{"name": "p", "steps": 2, "batch": 1, "warmup": 1,
                                   "world": {"frames": 5, "height": 32, "width": 32}}]))
    out = tmp_path / "run"
    args = ["train", "--model", str(path), "--absolute-positions", "4", "--phases", str(phases), "--out", str(out),
            "--no-validation", "-q", "--name", "new"]
    assert main(args) == 0
    trained = load_model(out / "new.safetensors")
    assert trained.config.backbone.absolute_positions == 4
    assert trained.backbone.pos_embed.weight.abs().sum() > 0  # trained away from zero
