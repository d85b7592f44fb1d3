"""`aiprod export`: another precision, and the average of a fine-tune with the checkpoint it started from."""

from __future__ import annotations

import torch

from aiprod_core.checkpoint import load_checkpoint, save_checkpoint
from aiprod_core.cli import main
from aiprod_core.config import preset
from aiprod_core.model import build_model


def write(path, seed: int, name: str = "tiny"):
    model = build_model(preset(name))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # two different models (a preset is built the same every time)
        for p in model.backbone.parameters():
            p.add_(torch.randn(p.shape, generator=g), alpha=0.01)
    save_checkpoint(path, model.config, {"backbone": model.backbone, "vae": model.vae,
                                         "text_encoder": model.text_encoder})
    return path


def test_an_average_weighs_each_tensor_by_the_share(tmp_path):
    tuned, base = write(tmp_path / "tuned.safetensors", 1), write(tmp_path / "base.safetensors", 2)
    out = tmp_path / "avg.safetensors"
    assert main(["export", str(tuned), "--average-with", str(base), "--share", "0.25", "--dtype", "fp32",
                 "-o", str(out)]) == 0
    _, a = load_checkpoint(tuned)
    _, b = load_checkpoint(base)
    _, got = load_checkpoint(out)
    assert got.keys() == a.keys()
    moved = 0
    for c in a:
        for k, v in a[c].items():
            want = 0.25 * v + 0.75 * b[c][k] if v.is_floating_point() else v
            assert torch.allclose(got[c][k], want, atol=1e-6), (c, k)
            moved += not torch.equal(v, b[c][k])
    assert moved > 50  # the two backbones differ, so the average says something


def test_an_average_with_another_config_is_refused(tmp_path, capsys):
    tuned, other = write(tmp_path / "tuned.safetensors", 1), write(tmp_path / "other.safetensors", 2, "small")
    assert main(["export", str(tuned), "--average-with", str(other), "-o", str(tmp_path / "x.safetensors")]) == 2
    assert "its weights do not match the model's" in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()
    assert main(["export", str(tuned), "--average-with", str(other), "--share", "1.5",
                 "-o", str(tmp_path / "x.safetensors")]) == 2
