"""LTX-2 as a model the product runs: loaded by `load_model` from a single file or ComfyUI's split files (tiny random
files in the released layouts, tests/ltx2/ltx2_model_files.py), and `generate` equal to the run composed by hand
from its components: LTX-2's own sampling loop (sampling.ltx2_loop.sample_ltx2, matched against Lightricks' loop
in test_ltx2_sampling.py) and the VAE's decode."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from aiprod_core.conditioning import MotionGuidance, first_frames_condition
from aiprod_core.families.ltx2.files import LTX2FileError
from aiprod_core.families.ltx2.upscaler import upsample_normalized
from aiprod_core.memory.placement import Placement
from aiprod_core.model import LTX2, load_model, model_family
from aiprod_core.pipeline import generate
from aiprod_core.sampling.loop import sample_latent
from aiprod_core.sampling.ltx2_loop import sample_ltx2
from aiprod_core.sampling.ltx2_schedule import (
    NO_GUIDANCE,
    LTX2Guidance,
    distilled_sigmas,
    latent_tokens,
    ltx2_sigmas,
)
from aiprod_core.sampling.samplers import noise_like

pytest.importorskip("ltx_core", reason="the files are written from ltx-core 1.0.0's modules")
from ltx2_files import rel_err
from ltx2_model_files import CLIP, FPS, PROMPT, SHAPE, write_model


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("ltx2_model"))


@pytest.fixture(scope="module")
def model(layouts):
    return load_model(**layouts.single)


def prompts(model, negative=""):
    ctx, mask = model.text_encoder.encode([PROMPT])
    neg, neg_mask = model.text_encoder.encode([negative])
    return ctx, mask, neg, neg_mask


def frames_of(model, latent):
    """The decode the pipeline does, by hand: [-1,1] video -> frames [T,H,W,3] in 0..1."""
    video = model.vae.decode(latent)[0]
    return ((video.float() + 1) / 2).clamp(0, 1).permute(1, 2, 3, 0)


def composed(model, guidance, seed, clean=None, keep=None, sigmas=None, fps=FPS):
    """The reference path: LTX-2's own loop on the transformer, from the seed's noise."""
    ctx, mask, neg, neg_mask = prompts(model)
    sigmas = ltx2_sigmas(2, latent_tokens(SHAPE)) if sigmas is None else sigmas
    return sample_ltx2(model.backbone, noise_like(SHAPE, seed), sigmas, ctx, mask, neg, neg_mask, guidance,
                       clean=clean, noise_mask=keep, extra_args={"fps": fps})


def test_single_and_split_files_load_the_same_model(layouts, model):
    split = load_model(**layouts.split)
    assert model.family is LTX2 and split.family is LTX2
    assert model_family(layouts.single["path"]) is LTX2 and model_family(layouts.split["path"]) is LTX2
    assert model.config.transformer == split.config.transformer and model.config.vae == split.config.vae
    g = torch.Generator().manual_seed(0)
    x, sigma = torch.randn(SHAPE, generator=g), torch.tensor([0.7])
    with torch.no_grad():
        a_ctx, a_mask = model.text_encoder.encode([PROMPT])
        b_ctx, b_mask = split.text_encoder.encode([PROMPT])
        assert torch.equal(a_ctx, b_ctx) and torch.equal(a_mask, b_mask)
        v_a = model.backbone(x, sigma, a_ctx, a_mask, fps=FPS)
        v_b = split.backbone(x, sigma, b_ctx, b_mask, fps=FPS)
        assert torch.equal(v_a, v_b) and v_a.abs().max() > 0
        assert torch.equal(model.vae.decode(x), split.vae.decode(x))
    assert model.config.frames == 121 and (model.config.height, model.config.width) == (512, 768)
    assert model.config.vae.latent_shape(**CLIP) == SHAPE[1:]


@pytest.mark.parametrize(("cfg", "stg"), [(3.0, 0.0), (3.0, 1.0), (1.0, 0.0)])
def test_generate_equals_ltx2s_own_loop_and_decode(model, cfg, stg):
    video = generate(model, PROMPT, **CLIP, steps=2, cfg=cfg, stg=stg, seed=5, progress=False)
    assert video.shape == (9, 64, 64, 3)
    guidance = LTX2Guidance(cfg=cfg, stg=stg, rescale=0.7, stg_blocks=(1,))  # the last of the tiny model's 2 blocks
    want = frames_of(model, composed(model, guidance, seed=5))
    assert rel_err(video, want) <= 1e-5
    other = generate(model, PROMPT, **CLIP, steps=2, cfg=cfg, stg=stg, seed=6, progress=False)
    assert (other - video).abs().max() > 1e-3, "the seed reaches the noise"


def test_the_frame_rate_reaches_the_transformer(model):
    video = generate(model, PROMPT, **CLIP, steps=2, cfg=1.0, seed=5, fps=12.0, progress=False)
    want = frames_of(model, composed(model, NO_GUIDANCE, seed=5, fps=12.0))
    assert rel_err(video, want) <= 1e-5
    at_24 = generate(model, PROMPT, **CLIP, steps=2, cfg=1.0, seed=5, progress=False)
    assert (at_24 - video).abs().max() > 1e-4, "RoPE places frames by the frame rate"


@pytest.mark.parametrize("strength", [1.0, 0.6])
def test_image_to_video_keeps_the_first_frame_as_ltx2s_loop_does(model, strength):
    image = torch.rand(64, 64, 3, generator=torch.Generator().manual_seed(2))
    video = generate(model, PROMPT, **CLIP, steps=2, cfg=3.0, seed=1, image=image, image_strength=strength,
                     progress=False)
    init, keep = first_frames_condition(model.vae, image, SHAPE, strength)
    assert keep[0, 0, 0].max() == 1 - strength and keep[0, 0, 1].min() == 1
    latent = composed(model, LTX2Guidance(cfg=3.0, stg=0.0, rescale=0.7, stg_blocks=(1,)), 1, clean=init, keep=keep)
    if strength == 1.0:
        assert torch.equal(latent[:, :, 0], init[:, :, 0]), "the kept latent frame ends as given"
    assert rel_err(video, frames_of(model, latent)) <= 1e-5


def test_upscale_refines_with_the_distilled_stage_two_sigmas(model):
    video = generate(model, PROMPT, **CLIP, steps=2, cfg=3.0, seed=3, upscale=True, progress=False)
    assert video.shape == (9, 128, 128, 3)
    first = composed(model, LTX2Guidance(cfg=3.0, stg=0.0, rescale=0.7, stg_blocks=(1,)), 3)
    stats = model.vae.per_channel_statistics
    up = upsample_normalized(model.upscaler, first, stats.get_buffer("mean-of-means"), stats.get_buffer("std-of-means"))
    ctx, mask, _, _ = prompts(model)
    refined = sample_ltx2(model.backbone, noise_like(tuple(up.shape), 3), distilled_sigmas(2), ctx, mask,
                          clean=up, extra_args={"fps": FPS})
    assert rel_err(video, frames_of(model, refined)) <= 1e-5


def test_our_loop_with_ltx2s_settings_is_ltx2s_loop(model):
    """The loop every family shares, given LTX-2's sigmas and guidance, steps exactly as sample_ltx2: from noise,
    with kept voxels, and continued from a latent (stage 2)."""
    ctx, mask, neg, neg_mask = prompts(model)
    g = torch.Generator().manual_seed(4)
    clean = torch.randn(SHAPE, generator=g)
    keep = torch.ones(1, 1, 2, 2, 2)
    keep[:, :, 0] = 0.25
    guidance = LTX2Guidance(cfg=2.5, stg=0.5, rescale=0.7, stg_blocks=(0,))
    for sigmas, init, kept in ((ltx2_sigmas(3, 8), None, None), (ltx2_sigmas(3, 8), clean, keep),
                               (distilled_sigmas(2), clean, None)):
        ours = sample_latent(model.backbone, ctx, mask, neg, neg_mask, SHAPE, seed=9, sigmas=sigmas, guidance=guidance,
                             init_latent=init, noise_mask=kept, extra_args={"fps": FPS})
        want = sample_ltx2(model.backbone, noise_like(SHAPE, 9), sigmas, ctx, mask, neg, neg_mask, guidance,
                           clean=init, noise_mask=kept, extra_args={"fps": FPS})
        assert rel_err(ours, want) <= 1e-5


def test_motion_guidance_steers_an_ltx2_model(model):
    flow = torch.zeros(8, 64, 64, 2)
    flow[..., 0] = 4.0  # everything moves right
    plain = generate(model, PROMPT, **CLIP, steps=2, cfg=1.0, seed=2, progress=False)
    guided = generate(model, PROMPT, **CLIP, steps=2, cfg=1.0, seed=2, progress=False,
                      motion=MotionGuidance(flow=flow, flow_strength=1.0, warp_guidance=1.0))
    assert guided.shape == plain.shape and (guided - plain).abs().max() > 1e-3
    off = generate(model, PROMPT, **CLIP, steps=2, cfg=1.0, seed=2, progress=False,
                   motion=MotionGuidance(flow=flow, flow_strength=0.0, warp_guidance=0.0))
    assert torch.equal(off, plain), "guidance switched off is the plain run"


def test_a_planned_run_streams_transformer_blocks_and_gemma_layers_and_draws_the_same_clip(model, tmp_path,
                                                                                         monkeypatch):
    monkeypatch.setenv("AIPROD_CACHE_DIR", str(tmp_path))  # a planned run caches its contexts on disk
    # planned for a 12 GB card, where Gemma 3 12B's layers go to the GPU, and "stream" streams every block of each;
    # run on the CPU, where the streamer's copies are no-ops, so the frames must not change
    clip = (CLIP["frames"], CLIP["height"], CLIP["width"])
    planned = Placement.build(model.config, clip, "cuda", vram_gb=12, offload="stream", compute=torch.float32)
    planned = dataclasses.replace(planned, device=torch.device("cpu"))
    gemma, transformer = model.text_encoder.gemma.model, model.backbone
    assert planned.stage("text_encoding").where == "gpu"
    assert planned.blocks("text_encoding", len(gemma.layers)).streamed
    assert planned.blocks("sampling", len(transformer.transformer_blocks)).streamed

    streamed = {}  # block list -> whether its last block ran with the streamer's hooks on it (beside this one)
    def watch(name):
        def hook(block, _args):
            streamed.setdefault(name, len(block._forward_pre_hooks) > 1)
        return hook
    handles = [gemma.layers[-1].register_forward_pre_hook(watch("gemma")),
               transformer.transformer_blocks[-1].register_forward_pre_hook(watch("transformer"))]
    try:
        got = generate(model, PROMPT, **CLIP, steps=2, cfg=3.0, seed=4, placement=planned, progress=False)
    finally:
        for h in handles:
            h.remove()
    assert streamed == {"gemma": True, "transformer": True}
    want = generate(model, PROMPT, **CLIP, steps=2, cfg=3.0, seed=4, progress=False)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="placement= and offload=, vram_gb= or weight_dtype="):
        generate(model, PROMPT, **CLIP, steps=1, placement=planned, vram_gb=8, progress=False)


def test_an_ltx2_lora_file_applies(model, tmp_path):
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(1)
    layer = "transformer_blocks.0.attn1.to_q"
    w = model.backbone.get_submodule(layer).weight
    path = tmp_path / "ltx2_lora.safetensors"
    save_file({f"diffusion_model.{layer}.lora_A.weight": torch.randn(4, w.shape[1], generator=g),
               f"diffusion_model.{layer}.lora_B.weight": torch.randn(w.shape[0], 4, generator=g),
               f"diffusion_model.{layer}.alpha": torch.tensor(4.0)}, str(path))
    plain = generate(model, PROMPT, **CLIP, steps=2, cfg=1.0, seed=2, progress=False)
    adapted = generate(model.with_lora_file(path, 1.0), PROMPT, **CLIP, steps=2, cfg=1.0, seed=2, progress=False)
    assert (adapted - plain).abs().max() > 1e-4


def test_what_is_missing_or_misplaced_is_named(layouts, model):
    s, split = layouts.single, layouts.split
    without_gemma = load_model(s["path"])
    assert without_gemma.text_encoder is None
    with pytest.raises(ValueError, match=r"without a text encoder.*Gemma"):
        generate(without_gemma, PROMPT, **CLIP, steps=1, progress=False)
    with pytest.raises(LTX2FileError, match=r"text_encoder=.*is an LTX-2 file, not Gemma"):
        load_model(s["path"], text_encoder=s["path"])
    with pytest.raises(LTX2FileError, match=r"upscaler=.*expected LTX-2's spatial upscaler"):
        load_model(s["path"], upscaler=split["vae"])
    with pytest.raises(LTX2FileError, match=r"vae=.*expected the LTX-2 video VAE"):
        load_model(s["path"], vae=s["upscaler"])
    with pytest.raises(LTX2FileError, match=r"text_projection=.*expected LTX-2's text projection"):
        load_model(split["path"], vae=split["vae"], text_projection=split["vae"])
    with pytest.raises(LTX2FileError, match=r"checkpoint=.*not the transformer"):
        load_model(s["upscaler"])
    with pytest.raises(LTX2FileError, match=r"holds no video VAE.*give vae="):
        load_model(split["path"], text_projection=split["text_projection"])
    with pytest.raises(ValueError, match=r"stg=1\.0: AIPROD's blocks cannot skip"):
        generate(load_model(), PROMPT, steps=1, stg=1.0, progress=False)
    with pytest.raises(ValueError, match="text_encoder= is for LTX-2 models"):
        load_model(None, text_encoder=s["text_encoder"])


def test_loads_in_bfloat16_and_draws_nearly_the_same_clip(layouts, model):
    half = load_model(**layouts.single, dtype=torch.bfloat16)
    assert next(half.backbone.parameters()).dtype == torch.bfloat16
    assert next(half.vae.parameters()).dtype == torch.bfloat16 and half.text_encoder.dtype == torch.bfloat16
    assert half.text_encoder.key != model.text_encoder.key, "cached contexts are told apart by dtype"
    want = generate(model, PROMPT, **CLIP, steps=2, cfg=3.0, seed=1, progress=False)
    got = generate(half, PROMPT, **CLIP, steps=2, cfg=3.0, seed=1, progress=False)
    assert (got - want).abs().mean() < 0.02  # measured 0.006; another seed differs by 0.27
