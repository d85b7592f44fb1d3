"""A distilled LTX-2 file samples as Lightricks' distilled pipeline does, and a dev model refines with a LoRA of its
own: tiny random files in the released layouts (tests/ltx2/ltx2_model_files.py), the distilled one told apart by
its file name as Lightricks and ComfyUI name them (`ltx-2-19b-distilled*.safetensors`).

- distilled: with steps and cfg left out, generate draws exactly what ltx-pipelines' distilled stage 1 draws
  (its 8 fixed sigmas, one conditional pass a step: `simple_denoising_func` in `euler_denoising_loop`), on the
  reference transformer holding the same weights; a dev file keeps LTX-2's token-shift schedule and CFG 3.
- refine LoRA: applied in the refinement after the 2x upscale only; the run equals stage 1 without it, composed
  by hand with the LoRA on the refinement.
"""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import torch
from safetensors.torch import save_file

from aiprod_core.cli import main
from aiprod_core.families.ltx2.model import is_distilled_name
from aiprod_core.families.ltx2.upscaler import upsample_normalized
from aiprod_core.model import LTX2, load_model, loras_applied
from aiprod_core.pipeline import generate
from aiprod_core.sampling.ltx2_loop import sample_ltx2
from aiprod_core.sampling.ltx2_schedule import NO_GUIDANCE, LTX2Guidance, distilled_sigmas, ltx2_sigmas
from aiprod_core.sampling.samplers import noise_like

pytest.importorskip("ltx_core", reason="the files are written from ltx-core 1.0.0's modules")
from ltx2_files import reference_transformer, rel_err
from ltx2_model_files import CLIP, CONFIG, FPS, PROMPT, SHAPE, write_model
from ltx2_reference import VideoOnlyX0, reference_loop
from ltx_core.components.diffusion_steps import EulerDiffusionStep
from ltx_core.components.patchifiers import VideoLatentPatchifier
from ltx_core.components.schedulers import LTX2Scheduler
from ltx_core.tools import VideoLatentTools
from ltx_core.types import VideoLatentShape


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("ltx2_distilled"))


@pytest.fixture(scope="module")
def distilled_file(layouts):
    """The same tiny checkpoint under a distilled model's released name."""
    path = layouts.single["path"].replace("ltx-2-19b-dev", "ltx-2-19b-distilled-fp8")
    shutil.copyfile(layouts.single["path"], path)
    return path


@pytest.fixture(scope="module")
def dev(layouts):
    return load_model(**layouts.single)


@pytest.fixture(scope="module")
def distilled(layouts, distilled_file):
    return load_model(**{**layouts.single, "path": distilled_file})


def frames_of(model, latent):
    video = model.vae.decode(latent)[0]
    return ((video.float() + 1) / 2).clamp(0, 1).permute(1, 2, 3, 0)


def reference_distilled_stage_1(context: torch.Tensor, seed: int) -> torch.Tensor:
    """ltx-pipelines' distilled stage 1 on Lightricks' transformer with the file's weights, from our seed's noise."""
    loop, _, simple = reference_loop()  # first: it imports ltx-pipelines without its package init
    from ltx_pipelines.utils.constants import DISTILLED_SIGMA_VALUES

    tools = VideoLatentTools(VideoLatentPatchifier(patch_size=1), VideoLatentShape(*SHAPE), FPS)
    state = tools.create_initial_state("cpu", torch.float32)
    noise = noise_like(SHAPE, seed)
    state = dataclasses.replace(state, latent=noise.flatten(2).transpose(1, 2))  # [B, t*h*w, C]; every token noised
    audio = tools.create_initial_state("cpu", torch.float32)  # any state: the video-only call passes it through
    audio = dataclasses.replace(audio, latent=torch.zeros(1, 0, 8), denoise_mask=torch.zeros(1, 0, 1),
                                positions=torch.zeros(1, 1, 0, 2), clean_latent=torch.zeros(1, 0, 8))
    ref = VideoOnlyX0(reference_transformer(CONFIG, seed=0))  # write_model's transformer weights (seed 0)
    with torch.no_grad():
        video, _ = loop(torch.tensor(DISTILLED_SIGMA_VALUES), state, audio, EulerDiffusionStep(),
                        simple(context, torch.zeros(1, 1, 8), ref))
    return tools.unpatchify(tools.clear_conditioning(video)).latent


def test_the_file_name_tells_a_distilled_model(layouts, dev, distilled, tmp_path):
    assert distilled.config.distilled and not dev.config.distilled
    assert is_distilled_name("ltx-2-19b-distilled.safetensors") and is_distilled_name("LTX-2-19B-Distilled-fp8.st")
    assert not is_distilled_name(tmp_path / "distilled" / "ltx-2-19b-dev.safetensors"), "the folder does not count"


def test_a_distilled_file_samples_ltx_pipelines_distilled_stage_one(distilled):
    video = generate(distilled, PROMPT, **CLIP, seed=5, progress=False)  # steps and cfg left to the model
    context, mask = distilled.text_encoder.encode([PROMPT])
    assert mask.all(), "the connector fills the prompt with registers: the reference runs it unmasked"
    want = frames_of(distilled, reference_distilled_stage_1(context, seed=5))
    err = rel_err(video, want)
    print(f"distilled run vs ltx-pipelines' distilled stage 1: {err:.2e} (max relative, frames)")
    assert err <= 1e-4, f"a distilled file's default run is off ltx-pipelines' distilled stage 1 by {err:.2e}"
    # the comparison can fail: the dev schedule, or guidance, on the same file draws another clip
    as_dev = dataclasses.replace(distilled, config=dataclasses.replace(distilled.config, distilled=False))
    assert rel_err(generate(as_dev, PROMPT, **CLIP, steps=8, cfg=1.0, seed=5, progress=False), want) > 1e-3
    assert rel_err(generate(distilled, PROMPT, **CLIP, cfg=3.0, seed=5, progress=False), want) > 1e-3


def test_a_distilled_model_keeps_steps_and_cfg_given_and_says_so(distilled):
    stage = LTX2.sampling(distilled, SHAPE, None, None)
    assert torch.equal(stage["sigmas"], distilled_sigmas(1)) and stage["guidance"] == NO_GUIDANCE
    assert "8 distilled sigmas without guidance" in LTX2.sampling_note(distilled, None, None)
    assert torch.equal(LTX2.sampling(distilled, SHAPE, 8, 1.0)["sigmas"], distilled_sigmas(1))
    other = LTX2.sampling(distilled, SHAPE, 4, 3.0)
    assert torch.equal(other["sigmas"], ltx2_sigmas(4, 8)) and other["guidance"].cfg == 3.0
    note = LTX2.sampling_note(distilled, 4, 3.0)
    assert "steps 4, cfg 3 as asked" in note and "leave them out" in note


def test_a_dev_file_samples_as_before(dev):
    stage = LTX2.sampling(dev, SHAPE, None, None)
    want = LTX2Scheduler().execute(steps=20, latent=torch.zeros(SHAPE))  # Lightricks' schedule for this latent
    assert rel_err(stage["sigmas"], want) <= 1e-6
    assert stage["guidance"] == LTX2Guidance(cfg=3.0, stg=0.0, rescale=0.7, stg_blocks=(1,))
    assert LTX2.sampling_note(dev, None, None) is None
    assert torch.equal(generate(dev, PROMPT, **CLIP, steps=2, seed=1, progress=False),
                       generate(dev, PROMPT, **CLIP, steps=2, cfg=3.0, seed=1, progress=False))


def write_lora(model, path):
    g = torch.Generator().manual_seed(1)
    tensors = {}
    for layer in ("transformer_blocks.0.attn1.to_q", "transformer_blocks.1.ff.net.2"):
        w = model.backbone.get_submodule(layer).weight
        tensors.update({f"diffusion_model.{layer}.lora_A.weight": torch.randn(4, w.shape[1], generator=g),
                        f"diffusion_model.{layer}.lora_B.weight": torch.randn(w.shape[0], 4, generator=g),
                        f"diffusion_model.{layer}.alpha": torch.tensor(4.0)})
    save_file(tensors, str(path))
    return path


def test_a_refine_lora_applies_after_the_upscale_only(dev, tmp_path):
    path = write_lora(dev, tmp_path / "ltx-2-19b-distilled-lora-384.safetensors")
    got = generate(dev, PROMPT, **CLIP, steps=2, cfg=3.0, seed=3, upscale=True, refine_loras=[(path, 0.8)],
                   progress=False)
    # by hand: stage 1 without the LoRA, the upscale, then the distilled stage 2 with it
    ctx, mask = dev.text_encoder.encode([PROMPT])
    neg, neg_mask = dev.text_encoder.encode([""])
    guidance = LTX2Guidance(cfg=3.0, stg=0.0, rescale=0.7, stg_blocks=(1,))
    first = sample_ltx2(dev.backbone, noise_like(SHAPE, 3), ltx2_sigmas(2, 8), ctx, mask, neg, neg_mask, guidance,
                        extra_args={"fps": FPS})
    stats = dev.vae.per_channel_statistics
    up = upsample_normalized(dev.upscaler, first, stats.get_buffer("mean-of-means"), stats.get_buffer("std-of-means"))
    lora, _ = LTX2.read_lora(dev, path)
    with loras_applied(dev.backbone, [(lora, 0.8)]):
        refined = sample_ltx2(dev.backbone, noise_like(tuple(up.shape), 3), distilled_sigmas(2), ctx, mask, clean=up,
                              extra_args={"fps": FPS})
    err = rel_err(got, frames_of(dev, refined))
    print(f"refine LoRA run vs composed by hand: {err:.2e} (max relative, frames)")
    assert err <= 1e-5, f"the refine LoRA run is off the hand-composed one by {err:.2e}"
    plain = generate(dev, PROMPT, **CLIP, steps=2, cfg=3.0, seed=3, upscale=True, progress=False)
    both = generate(dev.with_lora_file(path, 0.8), PROMPT, **CLIP, steps=2, cfg=3.0, seed=3, upscale=True,
                    progress=False)
    assert (got - plain).abs().max() > 1e-4, "the LoRA reaches the refinement"
    assert (got - both).abs().max() > 1e-4, "and not stage 1"
    with pytest.raises(ValueError, match="pass upscale=True"):
        generate(dev, PROMPT, **CLIP, steps=1, refine_loras=[(path, 1.0)], progress=False)


def test_the_cli_says_what_a_distilled_model_samples(layouts, distilled_file, tmp_path, capsys):
    s = layouts.single
    assert main(["info", "--model", distilled_file]) == 0
    out = capsys.readouterr().out
    assert "distilled: samples its 8 distilled sigmas (1, 0.99375" in out
    assert main(["info", "--model", s["path"]]) == 0
    assert "dev (not distilled)" in capsys.readouterr().out
    video = ["--text-encoder", s["text_encoder"], "--frames", "9", "--height", "64", "--width", "64", "-q"]
    assert main(["generate", "a red ball", "--model", distilled_file, *video, "-o", str(tmp_path / "d.mp4")]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is distilled: sampling its 8 distilled sigmas without guidance" in err, err
    assert main(["generate", "a red ball", "--model", distilled_file, *video, "--steps", "2", "--cfg", "3",
                 "-o", str(tmp_path / "d2.mp4")]) == 0
    assert "sampling with steps 2, cfg 3 as asked" in capsys.readouterr().err
    assert main(["generate", "a red ball", "--model", distilled_file, *video, "--distilled", "no", "--steps", "1",
                 "-o", str(tmp_path / "d3.mp4")]) == 0
    assert "distilled" not in capsys.readouterr().err


def test_the_cli_refuses_a_refine_lora_without_upscale_and_distilled_for_aiprod(layouts, dev, tmp_path, capsys):
    s = layouts.single
    path = write_lora(dev, tmp_path / "lora.safetensors")
    assert main(["generate", "a red ball", "--model", s["path"], "--text-encoder", s["text_encoder"],
                 "--refine-lora", f"{path}:0.5", "--steps", "500", "-q", "-o", str(tmp_path / "x.mp4")]) == 2
    assert "--refine-lora applies in the refinement after the 2x upscale; add --upscale" in capsys.readouterr().err
    assert main(["generate", "a red ball", "--distilled", "yes", "--steps", "500", "-q",
                 "-o", str(tmp_path / "y.mp4")]) == 2
    assert "--distilled is for LTX-2 models" in capsys.readouterr().err
    out = tmp_path / "up.mp4"
    assert main(["generate", "a red ball", "--model", s["path"], "--text-encoder", s["text_encoder"], "--upscaler",
                 s["upscaler"], "--upscale", "--refine-lora", f"{path}:0.5", "--steps", "1", "--frames", "9",
                 "--height", "64", "--width", "64", "-q", "-o", str(out)]) == 0
    assert out.stat().st_size > 0
