"""Running the model in bf16: the weights' dtype picked per device, a bf16 model under the float32 sampler."""

import pytest
import torch
import torch.nn.functional as F

from aiprod_core.cli import main
from aiprod_core.memory.engine import precision_dtype
from aiprod_core.model import load_component, load_model
from aiprod_core.pipeline import generate
from aiprod_core.sampling.loop import sample_latent
from aiprod_core.video_io import read_video

PROMPT = "a red circle moving to the left"


@pytest.fixture(scope="module")
def models():
    return load_model(), load_model(dtype=torch.bfloat16)


def test_precision_picks_bf16_on_gpus_only_unless_asked():
    cpu = torch.device("cpu")
    assert precision_dtype("auto", cpu) == torch.float32  # CPUs without native bf16 would slow down
    assert precision_dtype("bf16", cpu) == torch.bfloat16
    assert precision_dtype("fp32", cpu) == torch.float32
    with pytest.raises(ValueError, match="expected one of"):
        precision_dtype("fp16", cpu)


def test_load_model_casts_the_gpu_stages_and_keeps_the_text_encoder(models):
    _, half = models
    assert {p.dtype for p in half.backbone.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in half.vae.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in half.upscaler.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in half.text_encoder.parameters()} == {torch.float32}
    mixed = load_model(dtype=torch.bfloat16, vae_dtype=torch.float32)
    assert next(mixed.vae.parameters()).dtype == torch.float32
    _, vae = load_component(mixed.source, "vae", torch.bfloat16)
    assert next(vae.parameters()).dtype == torch.bfloat16


def test_a_bf16_backbone_answers_a_float32_sampler_in_float32(models):
    full, half = models
    ctx, mask = full.text_encoder.encode([PROMPT])
    shape = (1, *full.config.vae.latent_shape(9, 64, 64))
    a = sample_latent(full.backbone, ctx, mask, None, None, shape, steps=4, cfg=1.0)
    b = sample_latent(half.backbone, ctx, mask, None, None, shape, steps=4, cfg=1.0)
    assert a.dtype == b.dtype == torch.float32
    err = (a - b).abs().mean() / a.abs().mean()
    assert 0 < err < 0.05, err  # bf16 ran, at bf16's precision


@pytest.mark.parametrize("upscale", [False, True])
def test_a_bf16_model_generates_the_same_clip_within_bf16_precision(models, upscale):
    full, half = models
    kw = dict(steps=8, seed=1, progress=False, upscale=upscale, frames=9)
    a, b = generate(full, PROMPT, **kw), generate(half, PROMPT, **kw)
    assert a.dtype == b.dtype == torch.float32 and a.shape == b.shape
    err = (a - b).abs().mean().item()
    assert 0 < err < 0.01, err  # pixels in 0..1


def test_a_float32_lora_applies_to_a_bf16_model(models, tmp_path):
    from aiprod_core.models.lora import LoRA, save_lora

    full, half = models
    lora = LoRA.create(full.backbone, rank=4)
    for p in lora.parameters():
        torch.nn.init.normal_(p, std=0.3)  # lora_B starts at zero: make it do something
    save_lora(tmp_path / "l.safetensors", lora)
    kw = dict(steps=4, seed=2, progress=False, frames=9)
    plain = generate(half, PROMPT, **kw)
    a = generate(full.with_lora_file(tmp_path / "l.safetensors"), PROMPT, **kw)
    b = generate(half.with_lora_file(tmp_path / "l.safetensors"), PROMPT, **kw)
    assert (a - b).abs().mean() < 0.3 * (b - plain).abs().mean()  # the LoRA acts; bf16 changes it little


def test_the_command_runs_in_bf16_when_asked(tmp_path, capsys):
    paths = {}
    for precision in ("auto", "fp32", "bf16"):
        paths[precision] = tmp_path / f"{precision}.webp"  # lossless
        assert main(["generate", PROMPT, "-o", str(paths[precision]), "--frames", "9", "--steps", "6", "-q",
                     "--precision", precision]) == 0
    frames = {k: read_video(p)[0].astype(float) for k, p in paths.items()}
    assert (frames["auto"] == frames["fp32"]).all()  # auto is float32 on the CPU
    diff = abs(frames["bf16"] - frames["fp32"]).mean()
    assert 0 < diff < 3, diff  # 0..255


def test_a_lora_trains_on_a_frozen_bf16_backbone_like_on_a_float32_one(tmp_path):
    from aiprod_core.checkpoint import read_safetensors
    from aiprod_core.models.lora import LoRA
    from aiprod_core.train.options import LoRAOptions, RunOptions, TrainOptions, TrainPlacement
    from aiprod_core.train.phases import Phase
    from aiprod_core.train.trainer import Trainer

    ph = [Phase("lora", steps=4, batch=2, warmup=1, lr=2e-3, world={"frames": 5, "height": 32, "width": 32})]
    out, losses = {}, {}
    for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        model = load_model(dtype=dtype, vae_dtype=torch.float32)
        opts = TrainOptions(RunOptions(tmp_path / name, validate=False, progress=False, checkpoint_every=0, log_every=1),
                            lora=LoRAOptions(4), placement=TrainPlacement(precision="bf16"))
        trainer = Trainer(model, ph, opts)
        out[name] = read_safetensors(trainer.run())[0]
        losses[name] = torch.tensor([h["loss"] for h in trainer.history])
        assert next(model.backbone.parameters()).dtype == (dtype or torch.float32)  # still frozen as loaded
    torch.manual_seed(0)  # the trainer's seed: the adapters both runs started from
    start = LoRA.create(load_model().backbone, 4).comfy_state_dict()
    delta = {k: torch.cat([(out[k][n].float() - start[n].float()).flatten() for n in start]) for k in out}
    # Adam's first steps move each weight by about lr whatever its gradient's size, so compare directions
    assert F.cosine_similarity(delta["bf16"], delta["fp32"], dim=0) > 0.95
    assert not torch.equal(delta["bf16"], delta["fp32"])  # bf16 ran
    assert torch.allclose(losses["bf16"], losses["fp32"], rtol=0.02), losses
