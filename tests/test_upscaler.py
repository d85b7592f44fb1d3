"""2x latent upscaler: layout, shapes, VAE statistics handling, trainability, input checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from aiprod_core.config import UpscalerConfig, VAEConfig, preset
from aiprod_core.models.upscaler import LatentUpscaler, upsample_latent
from aiprod_core.models.vae import CausalVideoVAE

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def upscaler() -> LatentUpscaler:
    torch.manual_seed(0)
    return LatentUpscaler(preset("tiny").upscaler).eval()


def _latent(t: int = 3, h: int = 8, w: int = 6, c: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randn(1, c, t, h, w, generator=torch.Generator().manual_seed(seed))


def test_layout_and_param_count(upscaler: LatentUpscaler) -> None:
    cfg = upscaler.cfg
    assert len(upscaler.res_blocks) == len(upscaler.post_upsample_res_blocks) == cfg.blocks_per_stage
    assert isinstance(upscaler.upsampler[0], torch.nn.Conv2d)
    assert upscaler.upsampler[0].out_channels == 4 * cfg.mid_channels
    assert isinstance(upscaler.upsampler[1], torch.nn.PixelShuffle)
    n = sum(p.numel() for p in upscaler.parameters())
    # 16 -> 64 mid, 2 + 2 res blocks: 27*16*64*2 + 4*(2*27*64*64) + 9*64*256 plus biases/norms ~ 1.09 M.
    assert 1_000_000 <= n <= 1_200_000, n


@torch.no_grad()
def test_shapes(upscaler: LatentUpscaler) -> None:
    z = _latent(3, 8, 6)
    out = upscaler(z)
    assert out.shape == (1, 16, 3, 16, 12)
    assert torch.isfinite(out).all()
    # A batch of two gives each item what it gets alone (GroupNorm is per sample).
    z2 = torch.cat([z, _latent(3, 8, 6, seed=1)])
    assert (upscaler(z2)[:1] - out).abs().max() <= 1e-4


@torch.no_grad()
def test_upsampler_runs_per_frame(upscaler: LatentUpscaler) -> None:
    seen = []
    hook = upscaler.upsampler.register_forward_hook(lambda m, i, o: seen.append((i[0].shape, o.shape)))
    try:
        upscaler(torch.randn(2, 16, 3, 4, 5))
    finally:
        hook.remove()
    assert seen == [((6, 64, 4, 5), (6, 64, 8, 10))]  # B*t frames through Conv2d + PixelShuffle(2)


@torch.no_grad()
def test_upsample_latent_round_trips_vae_stats(upscaler: LatentUpscaler) -> None:
    torch.manual_seed(0)
    vae = CausalVideoVAE(preset("tiny").vae)
    z = _latent()
    # Identity statistics: same as the bare upscaler.
    assert (upsample_latent(upscaler, vae, z) - upscaler(z)).abs().max() <= 1e-5
    mean = torch.linspace(-0.5, 0.5, 16).view(1, -1, 1, 1, 1)
    std = torch.linspace(0.3, 3.0, 16).view(1, -1, 1, 1, 1)
    vae.latent_mean.copy_(mean.flatten())
    vae.latent_std.copy_(std.flatten())
    out = upsample_latent(upscaler, vae, z)
    expected = (upscaler(z * std + mean) - mean) / std
    assert out.shape == (1, 16, 3, 16, 12)
    assert (out - expected).abs().max() <= 1e-4
    assert (out - upscaler(z)).abs().max() > 1e-2  # the statistics are really applied


def test_trains_towards_nearest_upsampling() -> None:
    torch.manual_seed(0)
    up = LatentUpscaler(UpscalerConfig(latent_channels=4, mid_channels=8, blocks_per_stage=1))
    z = _latent(2, 4, 4, c=4)
    target = F.interpolate(z, scale_factor=(1, 2, 2), mode="nearest")
    opt = torch.optim.Adam(up.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        loss = F.mse_loss(up(z), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first = losses[0]
    assert loss.item() < 0.5 * first, (first, loss.item())


def test_bad_inputs(upscaler: LatentUpscaler) -> None:
    with pytest.raises(ValueError, match=r"expected a latent \[B,16,t,h,w\] with 16 channels"):
        upscaler(torch.zeros(1, 8, 2, 4, 4))
    with pytest.raises(ValueError, match=r"upscaler input has shape \(16, 2, 4, 4\)"):
        upscaler(torch.zeros(16, 2, 4, 4))
    torch.manual_seed(0)
    small_vae = CausalVideoVAE(VAEConfig(latent_channels=8, channels=(8, 8, 8)))
    with pytest.raises(ValueError, match="upscaler takes 16 latent channels but the VAE has 8"):
        upsample_latent(upscaler, small_vae, torch.zeros(1, 8, 1, 2, 2))
