import math

import pytest
import torch

from aiprod_core.sampling import (
    denoise_sigmas,
    guided_velocity,
    ltx_sigmas,
    noise_like,
    sample_euler,
    sample_heun,
    shifted_sigmas,
    start_latent,
    token_shift,
)


def ltx_reference(steps, tokens, terminal=0.1):
    """LTX2Scheduler / ComfyUI LTXVScheduler written out from the formula, in plain Python."""
    shift = 0.95 + (2.05 - 0.95) * (tokens - 1024) / 3072
    out = []
    for i in range(steps + 1):
        t = 1 - i / steps
        out.append(0.0 if t == 0 else math.exp(shift) / (math.exp(shift) + (1 / t - 1)))
    last = 1 - [s for s in out if s > 0][-1]
    return [0.0 if s == 0 else 1 - (1 - s) * (1 - terminal) / last for s in out]


@pytest.mark.parametrize("tokens", [1024, 4096])
@pytest.mark.parametrize("steps", [4, 20, 40])
def test_schedule_matches_ltx_formula(tokens, steps):
    got = ltx_sigmas(steps, tokens)
    ref = torch.tensor(ltx_reference(steps, tokens))
    assert torch.allclose(got, ref, atol=1e-6)
    assert got[0] == 1 and got[-1] == 0 and abs(got[-2].item() - 0.1) < 1e-6
    assert (got[1:] < got[:-1]).all()


def test_shift_values_and_small_clip_clamp():
    assert token_shift(1024) == pytest.approx(0.95)
    assert token_shift(4096) == pytest.approx(2.05)
    assert token_shift(320) == pytest.approx(0.95 + 1.1 * (320 - 1024) / 3072)
    assert token_shift(0) >= 0.5
    # a hand value: 2 steps at shift 0.95 without stretch, sigma(0.5) = e^.95 / (e^.95 + 1)
    assert shifted_sigmas(2, 0.95, terminal=None)[1].item() == pytest.approx(math.exp(0.95) / (math.exp(0.95) + 1), abs=1e-6)


def test_denoise_keeps_the_tail_of_a_longer_schedule():
    full = ltx_sigmas(8, 320)
    part = denoise_sigmas(lambda n: ltx_sigmas(n, 320), 4, 0.5)
    assert torch.equal(part, full[-5:])
    assert torch.equal(denoise_sigmas(lambda n: ltx_sigmas(n, 320), 4, 1.0), ltx_sigmas(4, 320))
    with pytest.raises(ValueError, match=r"denoise=1\.5"):
        denoise_sigmas(lambda n: ltx_sigmas(n, 320), 4, 1.5)


@pytest.mark.parametrize("sampler", [sample_euler, sample_heun])
def test_straight_flow_lands_on_the_data_point(sampler):
    # With one data point x0 the ideal velocity (x - x0) / s is constant along each path: any step count is exact.
    x0 = torch.randn(1, 2, 3, 4, 4)

    def velocity(x, s):
        return (x - x0) / s.view(-1, 1, 1, 1, 1)

    out = sampler(velocity, noise_like(tuple(x0.shape), 7), ltx_sigmas(5, 100))
    assert torch.allclose(out, x0, atol=1e-5)


def test_heun_is_more_accurate_than_euler_on_a_curved_flow():
    # Data N(0, a^2): velocity E[n - x0 | x_t] = x (s - (1-s) a^2) / ((1-s)^2 a^2 + s^2); exact map x1 -> a x1.
    a = 0.3

    def velocity(x, s):
        s = s.view(-1, 1)
        return x * (s - (1 - s) * a**2) / ((1 - s) ** 2 * a**2 + s**2)

    x1 = torch.randn(1, 64)
    sig = torch.linspace(1, 0, 11)
    err_euler = (sample_euler(velocity, x1, sig) - a * x1).abs().max()
    err_heun = (sample_heun(velocity, x1, sig) - a * x1).abs().max()
    assert err_heun < 0.4 * err_euler  # measured 0.27x; a plain Euler would give 1x


def test_seeded_noise_and_callback():
    assert torch.equal(noise_like((2, 3), 5), noise_like((2, 3), 5))
    assert not torch.equal(noise_like((2, 3), 5), noise_like((2, 3), 6))
    seen = []
    sample_euler(lambda x, s: x, torch.ones(1, 3), ltx_sigmas(6, 50), callback=lambda d: seen.append((d["i"], d["steps"])))
    assert seen == [(i, 6) for i in range(6)]


def test_callback_can_interrupt():
    class StopRequestedError(Exception):
        pass

    def cb(d):
        if d["i"] == 2:
            raise StopRequestedError

    with pytest.raises(StopRequestedError):
        sample_euler(lambda x, s: x, torch.ones(1, 3), ltx_sigmas(6, 50), callback=cb)


def test_start_latent():
    n, x0 = torch.randn(1, 4), torch.randn(1, 4)
    assert torch.equal(start_latent(n, torch.tensor(1.0)), n)
    assert torch.allclose(start_latent(n, torch.tensor(0.25), x0), 0.75 * x0 + 0.25 * n)
    with pytest.raises(ValueError, match="initial latent has shape"):
        start_latent(n, torch.tensor(0.5), torch.randn(1, 5))


class TextScaled(torch.nn.Module):
    """A real little model whose output depends on the text, to check the guidance arithmetic."""

    def forward(self, x, sigma, ctx, mask):
        pooled = (ctx * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1)
        return x * pooled.mean(-1).view(-1, 1) + sigma.view(-1, 1)


def test_cfg_combines_positive_and_negative():
    m = TextScaled()
    x, s = torch.randn(2, 3), torch.full((2,), 0.5)
    pos, pm = torch.randn(2, 5, 4), torch.ones(2, 5, dtype=torch.bool)
    neg, nm = torch.randn(2, 3, 4), torch.ones(2, 3, dtype=torch.bool)
    v = guided_velocity(m, pos, pm, neg, nm, cfg=4.0)(x, s)
    v_pos, v_neg = m(x, s, pos, pm), m(x, s, neg, nm)
    assert torch.allclose(v, v_neg + 4.0 * (v_pos - v_neg), atol=1e-6)
    assert torch.allclose(guided_velocity(m, pos, pm, neg, nm, cfg=1.0)(x, s), v_pos)
