"""Whole LTX-2 sampling runs: our loop with our transformer against Lightricks' own denoising loop
(ltx-pipelines' `euler_denoising_loop` with its guider denoising functions, ltx-core's X0Model, noiser, Euler
step and conditioning), both from the same tiny released-layout file and the same noise.

ltx-pipelines' package __init__ imports every pipeline, and those need torchaudio; the loop and its helpers do
not, so they are imported with the package inits bypassed. The reference loop is the audio-video one: it is
given an empty audio state and the model's video-only call, the call our video-only transformer mirrors.
"""

from __future__ import annotations

import pytest
import torch
from ltx2_files import TINY_TRANSFORMER, reference_transformer, rel_err, write_single_file

from aiprod_core.families.ltx2.transformer import load_video_transformer
from aiprod_core.sampling.ltx2_loop import ltx2_start_latent, sample_ltx2
from aiprod_core.sampling.ltx2_schedule import NO_GUIDANCE, LTX2Guidance, distilled_sigmas, ltx2_sigmas

pytest.importorskip("ltx_core", reason="the reference is ltx-core 1.0.0")
from ltx2_reference import VideoOnlyX0, reference_loop
from ltx_core.components.diffusion_steps import EulerDiffusionStep
from ltx_core.components.guiders import MultiModalGuider, MultiModalGuiderParams
from ltx_core.components.noisers import GaussianNoiser
from ltx_core.components.patchifiers import VideoLatentPatchifier
from ltx_core.components.schedulers import LTX2Scheduler
from ltx_core.conditioning import VideoConditionByLatentIndex
from ltx_core.guidance.perturbations import (
    BatchedPerturbationConfig,
    Perturbation,
    PerturbationConfig,
    PerturbationType,
)
from ltx_core.model.transformer import Modality
from ltx_core.tools import VideoLatentTools
from ltx_core.types import LatentState, VideoLatentShape

GRID = (3, 2, 3)  # latent (t, h, w): 18 tokens
FPS = 25.0
LTX2_0 = {"transformer": dict(TINY_TRANSFORMER)}
LTX2_3 = {"transformer": {**TINY_TRANSFORMER, "apply_gated_attention": True, "cross_attention_adaln": True,
                          "caption_proj_before_connector": True}}
CONFIGS = {"ltx2.0": LTX2_0, "ltx2.3": LTX2_3}
STG_BLOCK = 1  # the tiny model has 2 blocks; the released ones perturb block 29 (LTX-2) or 28 (LTX-2.3)


def context_width(config):
    t = config["transformer"]
    return t["cross_attention_dim"] if t.get("caption_proj_before_connector") else t["caption_channels"]


def models(tmp_path, config, seed=0):
    """The reference with random weights, and ours loaded from the file the reference's weights were written to."""
    ref = reference_transformer(config, seed)
    path = write_single_file(tmp_path / "ltx2.safetensors", config, {"transformer": ref.state_dict()})
    return ref, load_video_transformer(path)


def prompts(config, batch, seed=3):
    g = torch.Generator().manual_seed(seed)
    width = context_width(config)
    return torch.randn(batch, 6, width, generator=g), torch.randn(batch, 4, width, generator=g)


class Run:
    """One reference run's state: the latent tools, the noise its noiser draws, and the audio left empty."""

    def __init__(self, batch, seed=7):
        self.batch, self.seed = batch, seed
        self.tools = VideoLatentTools(VideoLatentPatchifier(patch_size=1), VideoLatentShape(batch, 128, *GRID), FPS)
        n = GRID[0] * GRID[1] * GRID[2]
        # the noiser draws [B, N, C] tokens from this seed; ours gets the same draw as a [B, C, t, h, w] latent
        tokens = torch.randn(batch, n, 128, generator=torch.Generator().manual_seed(seed))
        self.noise = tokens.transpose(1, 2).reshape(batch, 128, *GRID)
        self.audio = LatentState(latent=torch.zeros(batch, 0, 8), denoise_mask=torch.zeros(batch, 0, 1),
                                 positions=torch.zeros(batch, 1, 0, 2), clean_latent=torch.zeros(batch, 0, 8))

    def state(self, sigma0, initial=None, conditionings=()):
        state = self.tools.create_initial_state("cpu", torch.float32, initial)
        for item in conditionings:
            state = item.apply_to(latent_state=state, latent_tools=self.tools)
        return GaussianNoiser(torch.Generator().manual_seed(self.seed))(state, noise_scale=sigma0)

    def run(self, sigmas, state, denoise_fn):
        loop, _, _ = reference_loop()
        with torch.no_grad():
            video, _ = loop(sigmas, state, self.audio, EulerDiffusionStep(), denoise_fn)
        return self.tools.unpatchify(self.tools.clear_conditioning(video)).latent


def guided_reference(ref, run, sigmas, context, neg, params, conditionings=()):
    _, guided, _ = reference_loop()
    video_guider = MultiModalGuider(params, negative_context=neg)
    audio_guider = MultiModalGuider(MultiModalGuiderParams())  # no audio: its passes are off
    fn = guided(video_guider, audio_guider, context, torch.zeros(run.batch, 1, 8), VideoOnlyX0(ref))
    return run.run(sigmas, run.state(1.0, conditionings=conditionings), fn)


GUIDED = [  # (config, batch, cfg, stg, rescale)
    ("ltx2.0", 1, 3.0, 1.0, 0.7),  # LTX-2's defaults
    ("ltx2.3", 1, 3.0, 1.0, 0.7),
    ("ltx2.0", 2, 4.5, 0.0, 0.0),  # CFG alone, a batch of two
]


@pytest.mark.parametrize(("name", "batch", "cfg", "stg", "rescale"), GUIDED)
def test_four_dev_steps_with_guidance_match_the_reference_loop(tmp_path, name, batch, cfg, stg, rescale):
    config = CONFIGS[name]
    ref, ours = models(tmp_path, config)
    context, neg = prompts(config, batch)
    run = Run(batch)
    # modality_scale 3 as LTX-2's pipelines set it: with no audio its pass equals the conditional one
    params = MultiModalGuiderParams(cfg_scale=cfg, stg_scale=stg, rescale_scale=rescale, modality_scale=3.0,
                                    stg_blocks=[STG_BLOCK])
    want = guided_reference(ref, run, LTX2Scheduler().execute(steps=4), context, neg, params)
    guidance = LTX2Guidance(cfg=cfg, stg=stg, rescale=rescale, stg_blocks=(STG_BLOCK,))
    got = sample_ltx2(ours, run.noise, ltx2_sigmas(4), context, None, neg, None, guidance, extra_args={"fps": FPS})
    assert got.shape == (batch, 128, *GRID)
    err = rel_err(got, want)
    assert err <= 1e-4, f"{name}: final latent off the reference loop's by {err:.2e} (max relative, float32)"
    # the comparison can fail: each guidance term moves the result well past the tolerance
    plain = sample_ltx2(ours, run.noise, ltx2_sigmas(4), context, extra_args={"fps": FPS})
    assert rel_err(plain, want) > 1e-2
    if stg:
        no_stg = LTX2Guidance(cfg=cfg, stg=0.0, rescale=rescale)
        assert rel_err(sample_ltx2(ours, run.noise, ltx2_sigmas(4), context, None, neg, None, no_stg,
                                   extra_args={"fps": FPS}), want) > 1e-3


@pytest.mark.parametrize("name", list(CONFIGS))
def test_skipped_self_attention_matches_the_reference_perturbation(tmp_path, name):
    config = CONFIGS[name]
    ref, ours = models(tmp_path, config)
    context, _ = prompts(config, 2)
    run = Run(2)
    state = run.state(1.0)
    x = run.noise * 0.6
    sigma = torch.tensor([0.6, 0.6])
    tokens = x.flatten(2).transpose(1, 2)
    video = Modality(latent=tokens, sigma=sigma, timesteps=sigma[:, None].expand(2, tokens.shape[1]),
                     positions=state.positions, context=context, context_mask=None)
    skip = BatchedPerturbationConfig([PerturbationConfig([Perturbation(PerturbationType.SKIP_VIDEO_SELF_ATTN,
                                                                       [STG_BLOCK])])] * 2)
    with torch.no_grad():
        want = ref(video, None, skip)[0].transpose(1, 2).reshape(x.shape)
        got = ours(x, sigma, context, fps=FPS, skip_self_attention=[STG_BLOCK])
        unperturbed = ours(x, sigma, context, fps=FPS)
    assert rel_err(got, want) <= 1e-4
    assert rel_err(unperturbed, want) > 1e-3
    with pytest.raises(ValueError, match=r"blocks 0\.\.1"):
        ours(x, sigma, context, fps=FPS, skip_self_attention=[29])


@pytest.mark.parametrize("name", list(CONFIGS))
def test_distilled_stage_one_without_guidance_matches_the_reference_loop(tmp_path, name):
    # the distilled pipeline: its fixed sigmas, one conditional pass per step (simple_denoising_func)
    config = CONFIGS[name]
    ref, ours = models(tmp_path, config)
    context, _ = prompts(config, 1)
    run = Run(1)
    _, _, simple = reference_loop()
    sigmas = distilled_sigmas(1)
    want = run.run(sigmas, run.state(1.0), simple(context, torch.zeros(1, 1, 8), VideoOnlyX0(ref)))
    got = sample_ltx2(ours, run.noise, sigmas, context, guidance=NO_GUIDANCE, extra_args={"fps": FPS})
    err = rel_err(got, want)
    assert err <= 1e-4, f"{name}: 8 distilled steps off the reference loop's by {err:.2e}"


def test_distilled_stage_two_from_a_latent_matches_the_reference_loop(tmp_path):
    # after the upsampler: the latent re-noised to 0.909375, then the 3 remaining distilled steps
    ref, ours = models(tmp_path, LTX2_0)
    context, _ = prompts(LTX2_0, 1)
    run = Run(1)
    upsampled = torch.randn(1, 128, *GRID, generator=torch.Generator().manual_seed(11))
    sigmas = distilled_sigmas(2)
    _, _, simple = reference_loop()
    start = run.state(sigmas[0], initial=upsampled)
    assert torch.equal(ltx2_start_latent(run.noise, sigmas[0], upsampled),
                       start.latent.transpose(1, 2).reshape(upsampled.shape))
    want = run.run(sigmas, start, simple(context, torch.zeros(1, 1, 8), VideoOnlyX0(ref)))
    got = sample_ltx2(ours, run.noise, sigmas, context, clean=upsampled, extra_args={"fps": FPS})
    assert rel_err(got, want) <= 1e-4


@pytest.mark.parametrize(("name", "strength"), [("ltx2.0", 1.0), ("ltx2.3", 1.0), ("ltx2.0", 0.6)])
def test_image_to_video_keeps_the_first_latent_frame_as_the_reference_does(tmp_path, name, strength):
    config = CONFIGS[name]
    ref, ours = models(tmp_path, config)
    context, neg = prompts(config, 1)
    run = Run(1)
    image = torch.randn(1, 128, 1, *GRID[1:], generator=torch.Generator().manual_seed(5))  # the encoded first frame
    condition = VideoConditionByLatentIndex(latent=image, strength=strength, latent_idx=0)
    params = MultiModalGuiderParams(cfg_scale=3.0, stg_scale=1.0, rescale_scale=0.7, stg_blocks=[STG_BLOCK])
    want = guided_reference(ref, run, LTX2Scheduler().execute(steps=4), context, neg, params, [condition])
    clean = torch.zeros(1, 128, *GRID)
    clean[:, :, :1] = image
    mask = torch.ones(1, 1, *GRID)
    mask[:, :, 0] = 1.0 - strength
    guidance = LTX2Guidance(cfg=3.0, stg=1.0, rescale=0.7, stg_blocks=(STG_BLOCK,))
    got = sample_ltx2(ours, run.noise, ltx2_sigmas(4), context, None, neg, None, guidance, clean=clean,
                      noise_mask=mask, extra_args={"fps": FPS})
    err = rel_err(got, want)
    assert err <= 1e-4, f"{name}, strength {strength}: image-to-video off the reference loop's by {err:.2e}"
    if strength == 1.0:
        assert torch.equal(got[:, :, :1], image), "the kept frame must come back exactly"
    else:
        assert rel_err(got[:, :, :1], image) > 1e-2


def test_the_loop_refuses_what_it_cannot_run():
    x = torch.zeros(1, 128, *GRID)

    def model(x, sigma, context, mask):
        return torch.zeros_like(x)

    with pytest.raises(ValueError, match="negative prompt"):
        sample_ltx2(model, x, ltx2_sigmas(2), torch.zeros(1, 2, 4), guidance=LTX2Guidance(stg=0.0))
    with pytest.raises(ValueError, match=r"\[steps \+ 1\]"):
        sample_ltx2(model, x, torch.tensor([1.0]), torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match="noise mask"):
        sample_ltx2(model, x, ltx2_sigmas(2), torch.zeros(1, 2, 4), noise_mask=torch.ones(1, 1, 2, 2, 3))
    # a model with no STG option runs everything else; the velocity 0 leaves the start as it is
    assert torch.equal(sample_ltx2(model, x + 1, torch.tensor([1.0, 0.5, 0.0]), torch.zeros(1, 2, 4)), x + 1)
