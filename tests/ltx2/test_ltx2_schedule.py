"""LTX-2's schedule, distilled sigmas, guidance and Euler step against Lightricks' ltx-core (and ltx-pipelines,
which holds the distilled sigmas and the default guidance)."""

import importlib.metadata
import importlib.util

import pytest
import torch

from aiprod_core.sampling.ltx2_schedule import (
    LTX2_3_VIDEO_GUIDANCE,
    LTX2_VIDEO_GUIDANCE,
    LTX2Guidance,
    distilled_sigmas,
    euler_step,
    guide_denoised,
    guide_velocity,
    latent_tokens,
    ltx2_sigmas,
)
from aiprod_core.sampling.samplers import sample_euler, start_latent
from aiprod_core.sampling.schedules import ltx_sigmas

pytest.importorskip("ltx_core", reason="the reference is ltx-core 1.0.0")
from ltx_core.components.diffusion_steps import EulerDiffusionStep
from ltx_core.components.guiders import MultiModalGuider, MultiModalGuiderParams
from ltx_core.components.noisers import GaussianNoiser
from ltx_core.components.schedulers import LTX2Scheduler
from ltx_core.types import LatentState


def pipeline_constants():
    """ltx_pipelines.utils.constants, loaded on its own: the package's __init__ imports every pipeline, and
    those need torchaudio and the rest of ltx-pipelines' dependencies, which the constants do not."""
    try:
        dist = importlib.metadata.distribution("ltx-pipelines")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("ltx-pipelines 1.0.0 (pip install --no-deps ltx-pipelines==1.0.0) holds the reference tables")
    spec = importlib.util.spec_from_file_location("ltx_pipelines_constants",
                                                  dist.locate_file("ltx_pipelines/utils/constants.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# (steps, latent shape [B,C,t,h,w]): LTX-2's defaults, a small clip below 1024 tokens, big clips past 4096
CASES = [(40, (1, 1, 16, 16, 24)), (30, (1, 1, 4, 8, 12)), (8, (1, 1, 2, 4, 4)), (20, (1, 1, 16, 32, 48)),
         (3, (1, 1, 5, 6, 7)), (2, (1, 1, 1, 1, 1))]


@pytest.mark.parametrize(("steps", "shape"), CASES)
def test_sigmas_match_the_reference_scheduler(steps, shape):
    want = LTX2Scheduler().execute(steps=steps, latent=torch.empty(shape))
    got = ltx2_sigmas(steps, latent_tokens(shape))
    assert got.dtype == torch.float32 and got.shape == (steps + 1,)
    assert (got - want).abs().max().item() <= 1e-6
    assert got[-2].item() == pytest.approx(0.1, abs=1e-6) and got[-1] == 0 and got[0] == 1


def test_default_tokens_and_the_unstretched_schedule_match_the_reference():
    assert (ltx2_sigmas(40) - LTX2Scheduler().execute(steps=40)).abs().max().item() <= 1e-6
    # our float64 schedule is the same formula: it parts from float32 only where the stretch divides by a small number
    assert (ltx2_sigmas(40) - ltx_sigmas(40, 4096)).abs().max().item() <= 1e-6
    assert (ltx2_sigmas(20, 24576) - ltx_sigmas(20, 24576)).abs().max().item() <= 1e-4
    want = LTX2Scheduler().execute(steps=12, latent=torch.empty(1, 1, 3, 10, 10), stretch=False)
    assert (ltx2_sigmas(12, 300, terminal=None) - want).abs().max().item() <= 1e-6


def test_distilled_sigmas_are_the_reference_tables():
    c = pipeline_constants()
    assert distilled_sigmas(1).tolist() == torch.tensor(c.DISTILLED_SIGMA_VALUES).tolist()
    assert distilled_sigmas(2).tolist() == torch.tensor(c.STAGE_2_DISTILLED_SIGMA_VALUES).tolist()
    with pytest.raises(ValueError, match="stage 1"):
        distilled_sigmas(3)


def _as_ours(p: MultiModalGuiderParams) -> LTX2Guidance:
    return LTX2Guidance(cfg=p.cfg_scale, stg=p.stg_scale, rescale=p.rescale_scale, stg_blocks=tuple(p.stg_blocks))


def test_default_guidance_is_the_reference_pipelines():
    c = pipeline_constants()
    assert _as_ours(c.LTX_2_PARAMS.video_guider_params) == LTX2_VIDEO_GUIDANCE
    assert _as_ours(c.LTX_2_3_PARAMS.video_guider_params) == LTX2_3_VIDEO_GUIDANCE


GUIDANCES = [(3.0, 1.0, 0.7), (3.0, 1.0, 0.0), (4.5, 0.0, 0.3), (1.0, 2.0, 1.0), (1.0, 0.0, 0.0), (7.0, 0.5, 0.45)]


@pytest.mark.parametrize(("cfg", "stg", "rescale"), GUIDANCES)
def test_guidance_matches_the_reference_guider(cfg, stg, rescale):
    g = torch.Generator().manual_seed(int(cfg * 10 + stg * 100 + rescale * 1000))
    cond, uncond, perturbed = (torch.randn(2, 8, 3, 4, 5, generator=g) for _ in range(3))
    # a video-only model: the audio-isolated pass equals the conditional one, so its term vanishes
    ref = MultiModalGuider(MultiModalGuiderParams(cfg_scale=cfg, stg_scale=stg, rescale_scale=rescale,
                                                  modality_scale=3.0, stg_blocks=[29]))
    want = ref.calculate(cond, uncond if ref.do_unconditional_generation() else 0.0,
                         perturbed if ref.do_perturbed_generation() else 0.0, cond)
    ours = LTX2Guidance(cfg=cfg, stg=stg, rescale=rescale)
    got = guide_denoised(cond, uncond, perturbed, ours)
    assert ((got - want).abs().max() / want.abs().max()).item() <= 1e-6

    # the same guidance for a velocity model: through x0 = x - sigma v and back
    x, sigma = torch.randn(2, 8, 3, 4, 5, generator=g), torch.tensor([0.8, 0.3])
    s = sigma.view(-1, 1, 1, 1, 1)
    v = {k: (x - x0) / s for k, x0 in (("c", cond), ("u", uncond), ("p", perturbed))}
    got_v = guide_velocity(x, sigma, v["c"], v["u"], v["p"], ours)
    assert ((x - s * got_v - want).abs().max() / want.abs().max()).item() <= 1e-5
    if rescale == 0:  # without the rescale, guiding the velocity directly is the same
        direct = v["c"] + (cfg - 1) * (v["c"] - v["u"]) + stg * (v["c"] - v["p"])
        assert torch.allclose(got_v, direct, rtol=1e-5, atol=1e-5)


def test_guidance_asks_for_the_passes_it_needs():
    cond = torch.randn(1, 4, 1, 2, 2)
    with pytest.raises(ValueError, match="unconditional"):
        guide_denoised(cond, None, cond, LTX2Guidance(cfg=3.0, stg=1.0))
    with pytest.raises(ValueError, match="perturbed"):
        guide_denoised(cond, cond, None, LTX2Guidance(cfg=3.0, stg=1.0))
    assert torch.equal(guide_denoised(cond, guidance=LTX2Guidance(cfg=1.0, stg=0.0, rescale=0.9)), cond)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_euler_step_matches_the_reference_and_our_sampler(dtype):
    g = torch.Generator().manual_seed(5)
    x, x0 = torch.randn(1, 8, 2, 4, 4, generator=g).to(dtype), torch.randn(1, 8, 2, 4, 4, generator=g).to(dtype)
    sigmas = ltx2_sigmas(8, 256)
    for i in range(len(sigmas) - 1):
        want = EulerDiffusionStep().step(x, x0, sigmas, i)
        got = euler_step(x, x0, sigmas[i], sigmas[i + 1])
        assert got.dtype == dtype and torch.equal(got, want)
    # our k-diffusion-style sampler takes the same step from the velocity (x - x0) / sigma
    x, x0 = x.float(), x0.float()
    i = 2
    ours = sample_euler(lambda x_, s: (x_ - x0) / s.view(-1, 1, 1, 1, 1), x, sigmas[i : i + 2])
    want = EulerDiffusionStep().step(x, x0, sigmas, i)
    assert ((ours - want).abs().max() / want.abs().max()).item() <= 1e-6
    with pytest.raises(ValueError, match="sigma=0"):
        euler_step(x, x0, 0.0, 0.0)


def test_renoising_for_stage_two_matches_the_reference_noiser():
    """Stage 2 starts from the upsampled latent re-noised to the first stage-2 sigma."""
    latent = torch.randn(1, 8, 2, 4, 4, generator=torch.Generator().manual_seed(7))
    sigma0 = distilled_sigmas(2)[0]
    state = LatentState(latent=latent, denoise_mask=torch.ones_like(latent), positions=None, clean_latent=latent)
    want = GaussianNoiser(torch.Generator().manual_seed(11))(state, noise_scale=sigma0).latent
    noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(11))
    got = start_latent(noise, sigma0, latent)
    assert ((got - want).abs().max() / want.abs().max()).item() <= 1e-6


def test_latent_tokens_wants_a_video_latent_shape():
    assert latent_tokens((1, 128, 16, 16, 24)) == 6144
    with pytest.raises(ValueError, match=r"\[B,C,t,h,w\]"):
        latent_tokens((128, 16, 16))
    with pytest.raises(ValueError, match="at least 1"):
        ltx2_sigmas(8, 0)
