import json
import subprocess
import sys

import pytest
import torch

from aiprod_core.checkpoint import save_checkpoint
from aiprod_core.cli import main
from aiprod_core.config import preset
from aiprod_core.model import build_model, load_model
from aiprod_core.pipeline import generate
from aiprod_core.sampling.loop import sample_latent
from aiprod_core.video_io import read_video


@pytest.fixture(scope="module")
def tiny():
    model = build_model(preset("tiny"), seed=1)
    # Random init leaves proj_out at zero: perturb it so outputs depend on the prompt and the seed.
    torch.manual_seed(2)
    for p in model.backbone.parameters():
        if p.abs().sum() == 0 and p.ndim >= 1:
            p.data.normal_(0, 0.02)
    return model


def test_generate_shape_and_reproducible(tiny):
    a = generate(tiny, "a red circle", steps=3, seed=5, progress=False)
    b = generate(tiny, "a red circle", steps=3, seed=5, progress=False)
    c = generate(tiny, "a red circle", steps=3, seed=6, progress=False)
    d = generate(tiny, "un cercle bleu", steps=3, seed=5, progress=False)
    assert a.shape == (17, 64, 64, 3) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b)
    assert not torch.equal(a, c) and not torch.equal(a, d)


def test_upscale_doubles_the_size(tiny):
    v = generate(tiny, "a square", frames=9, steps=2, refine_steps=2, upscale=True, progress=False)
    assert v.shape == (9, 128, 128, 3)


def test_partial_denoise_starts_from_the_given_latent(tiny):
    ctx, mask = tiny.text_encoder.encode(["x"])
    init = torch.randn(1, 16, 2, 4, 4)
    out = sample_latent(tiny.backbone, ctx, mask, None, None, tuple(init.shape), steps=2, denoise=0.05, init_latent=init, cfg=1.0)
    far = sample_latent(tiny.backbone, ctx, mask, None, None, tuple(init.shape), steps=2, cfg=1.0)
    assert (out - init).abs().mean() < 0.5 * (far - init).abs().mean()
    with pytest.raises(ValueError, match="needs an initial latent"):
        sample_latent(tiny.backbone, ctx, mask, None, None, tuple(init.shape), steps=2, denoise=0.5)


def test_checkpoint_loads_into_the_same_model(tiny, tmp_path):
    p = tmp_path / "tiny.safetensors"
    parts = {"backbone": tiny.backbone, "vae": tiny.vae, "text_encoder": tiny.text_encoder, "upscaler": tiny.upscaler}
    save_checkpoint(p, tiny.config, parts)
    loaded = load_model(p)
    assert loaded.trained and loaded.source == str(p)
    a = generate(tiny, "a green triangle", frames=5, steps=2, seed=3, progress=False)
    b = generate(loaded, "a green triangle", frames=5, steps=2, seed=3, progress=False)
    assert torch.equal(a, b)


def test_cli_writes_a_video_that_reads_back(tmp_path, capsys):
    out = tmp_path / "clip.mp4"
    rc = main(["generate", "un carré jaune", "-o", str(out), "--preset", "tiny", "--steps", "2",
               "--frames", "9", "--height", "32", "--width", "48", "-q"])
    assert rc == 0
    frames, fps = read_video(out)
    assert frames.shape == (9, 32, 48, 3) and fps == 8
    assert "wrote" in capsys.readouterr().out


def test_cli_bad_size_is_a_clear_error(tmp_path, capsys):
    rc = main(["generate", "x", "-o", str(tmp_path / "c.mp4"), "--preset", "tiny", "--frames", "16", "-q"])
    assert rc == 2
    assert "frames=16 is not 1 + 4k for this VAE; use 17 or 13" in capsys.readouterr().err
    assert not (tmp_path / "c.mp4").exists()
    rc = main(["generate", "x", "-o", str(tmp_path / "c.mp4"), "--model", str(tmp_path / "missing.safetensors")])
    assert rc == 2 and "no such file" in capsys.readouterr().err


def test_info_base_preset_through_the_console_entry():
    out = subprocess.run(
        [sys.executable, "-m", "aiprod_core.cli", "info", "--preset", "base", "--json"],
        capture_output=True, text=True, check=True,
    ).stdout
    info = json.loads(out)
    b = info["components"]["backbone"]
    assert (b["attention_blocks"], b["conv_blocks"]) == (30, 18)
    assert 1.4e9 < b["params"] < 1.6e9
    assert info["clip"]["latent_shape"] == [128, 16, 16, 24] and info["clip"]["tokens"] == 6144


def test_info_tiny_clip_size(capsys):
    assert main(["info", "--preset", "tiny", "--frames", "33", "--height", "128", "--width", "64", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["clip"]["latent_shape"] == [16, 9, 16, 8] and info["clip"]["tokens"] == 9 * 16 * 8
    assert 0.5e6 < info["components"]["backbone"]["params"] < 4e6


def test_export_to_fp16_halves_the_file_and_still_generates(tiny, tmp_path):
    src, dst = tmp_path / "m.safetensors", tmp_path / "m16.safetensors"
    parts = {"backbone": tiny.backbone, "vae": tiny.vae, "text_encoder": tiny.text_encoder, "upscaler": tiny.upscaler}
    save_checkpoint(src, tiny.config, parts)
    assert main(["export", str(src), "-o", str(dst), "--dtype", "fp16"]) == 0
    assert dst.stat().st_size < 0.55 * src.stat().st_size
    a = generate(load_model(src), "a blue square", frames=5, steps=3, seed=1, progress=False)
    b = generate(load_model(dst), "a blue square", frames=5, steps=3, seed=1, progress=False)
    assert (a - b).abs().mean() < 5e-3


def _random_lora_file(model, path, seed=0):
    """A LoRA of the backbone and the text encoder whose up-projections are not zero, so it changes the clip."""
    from aiprod_core.models.lora import TEXT_PREFIX, TEXT_TARGETS, LoRA, save_lora

    torch.manual_seed(seed)
    lora = LoRA.create(model.backbone, rank=2)
    text_lora = LoRA.create(model.text_encoder, rank=2, targets=TEXT_TARGETS, prefix=TEXT_PREFIX)
    for lo in (lora, text_lora):
        for n, p in lo.named_parameters():
            if "lora_B" in n:
                p.data.normal_(0, 0.3)
    save_lora(path, lora, text_lora=text_lora)
    return lora, text_lora


def test_generate_applies_a_lora_file_and_strength_scales_it(tiny, tmp_path):
    path = tmp_path / "style.safetensors"
    lora, text_lora = _random_lora_file(tiny, path)
    kw = dict(frames=5, steps=2, seed=3, progress=False)
    base = generate(tiny, "a green triangle", **kw)
    adapted = tiny.with_lora_file(path)
    assert adapted.loras and adapted.text_encoder is not tiny.text_encoder and not tiny.loras  # the base is unchanged
    with_file = generate(adapted, "a green triangle", **kw)
    assert (with_file - base).abs().mean() > 1e-3
    assert torch.equal(with_file, generate(tiny.with_lora(lora, 1.0, text_lora), "a green triangle", **kw))
    assert torch.equal(base, generate(tiny.with_lora_file(path, 0.0), "a green triangle", **kw))
    assert torch.equal(base, generate(tiny, "a green triangle", **kw))  # no hook outlives the run
    # each part counts: the text adapters alone change the clip too
    text_only = generate(tiny.with_text_loras([(text_lora, 1.0)]), "a green triangle", **kw)
    assert (text_only - base).abs().mean() > 1e-4 and (text_only - with_file).abs().mean() > 1e-4
    # two halves stack to the whole
    halves = generate(tiny.with_lora_file(path, 0.5).with_lora_file(path, 0.5), "a green triangle", **kw)
    assert torch.allclose(halves, with_file, atol=1e-4)


def test_cli_generate_with_a_lora(tiny, tmp_path, capsys):
    model_path, lora_path = tmp_path / "tiny.safetensors", tmp_path / "style.safetensors"
    save_checkpoint(model_path, tiny.config, {"backbone": tiny.backbone, "vae": tiny.vae, "text_encoder": tiny.text_encoder})
    _random_lora_file(tiny, lora_path)
    args = ["generate", "a red square", "--model", str(model_path), "--steps", "2", "--frames", "5", "-q"]
    outs = {}
    for name, extra in (("base", []), ("lora", ["--lora", str(lora_path)]), ("off", ["--lora", f"{lora_path}:0"])):
        outs[name] = tmp_path / f"{name}.mp4"
        assert main([*args, "-o", str(outs[name]), *extra]) == 0
    frames = {k: read_video(v)[0].astype("float32") for k, v in outs.items()}
    assert (frames["base"] == frames["off"]).all()
    assert abs(frames["base"] - frames["lora"]).mean() > 1
    capsys.readouterr()
    assert main([*args, "-o", str(tmp_path / "x.mp4"), "--lora", f"{lora_path}:strong"]) == 2
    assert "strength 'strong' is not a number" in capsys.readouterr().err
    assert main([*args, "-o", str(tmp_path / "x.mp4"), "--lora", str(tmp_path / "none.safetensors")]) == 2
    assert "no such file" in capsys.readouterr().err and not (tmp_path / "x.mp4").exists()
