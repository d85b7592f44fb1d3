"""Causal video VAE: shapes, causality, chunked and tiled decoding, input checks, latent statistics."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from aiprod_core.config import ConfigError, VAEConfig, preset
from aiprod_core.models.vae import CausalVideoVAE

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny() -> CausalVideoVAE:
    torch.manual_seed(0)
    return CausalVideoVAE(preset("tiny").vae).eval()


def _video(frames: int, h: int = 64, w: int = 64, b: int = 1, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, frames, h, w, generator=g) * 2 - 1


def _latent(t: int, h: int, w: int, b: int = 1, c: int = 16, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, t, h, w, generator=g)


def test_tiny_param_count(tiny: CausalVideoVAE) -> None:
    n = sum(p.numel() for p in tiny.parameters())
    assert 1_000_000 <= n <= 3_000_000, f"tiny VAE has {n} params; the design says ~1-3 M"


@torch.no_grad()
def test_tiny_shapes_round_trip(tiny: CausalVideoVAE) -> None:
    cfg = tiny.cfg
    assert (cfg.spatial_compression, cfg.temporal_compression) == (8, 4)
    video = _video(17)
    mean, logvar = tiny.encode_moments(video)
    assert mean.shape == logvar.shape == (1, *cfg.latent_shape(17, 64, 64)) == (1, 16, 5, 8, 8)
    # One shared log-variance channel broadcast to all latent channels.
    assert torch.equal(logvar, logvar[:, :1].expand_as(logvar))
    z = tiny.encode(video)
    assert torch.equal(z, mean)  # zero mean / unit std statistics at init
    out = tiny.decode(z)
    assert out.shape == video.shape
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("frames", [1, 5, 9])
@torch.no_grad()
def test_frame_counts(tiny: CausalVideoVAE, frames: int) -> None:
    z = tiny.encode(_video(frames, 32, 48))
    assert z.shape == (1, 16, 1 + (frames - 1) // 4, 4, 6)
    assert tiny.decode(z).shape == (1, 3, frames, 32, 48)


@torch.no_grad()
def test_small_preset_shapes() -> None:
    cfg = preset("small").vae
    torch.manual_seed(0)
    vae = CausalVideoVAE(cfg).eval()
    assert (cfg.spatial_compression, cfg.temporal_compression) == (32, 8)
    z = vae.encode(_video(9))
    assert z.shape == (1, 128, 2, 2, 2)
    out = vae.decode(z)
    assert out.shape == (1, 3, 9, 64, 64)
    assert (vae.decode(z, temporal_chunk=1) - out).abs().max() <= 1e-4


@torch.no_grad()
def test_encoder_is_causal(tiny: CausalVideoVAE) -> None:
    video = _video(13, 32, 32)
    ref = tiny.encode(video)
    for k in (1, 3, 4, 5, 12):
        changed = video.clone()
        changed[:, :, k] = -changed[:, :, k]
        out = tiny.encode(changed)
        first = -(-k // tiny.temporal_compression)  # ceil(k / tc): the latent frame that holds frame k
        assert torch.equal(out[:, :, :first], ref[:, :, :first]), f"frame {k} leaked into latents < {first}"
        assert (out[:, :, first] - ref[:, :, first]).abs().max() > 1e-3, f"frame {k} missed latent {first}"


@torch.no_grad()
def test_first_frame_encoded_alone(tiny: CausalVideoVAE) -> None:
    video = _video(9)
    alone = tiny.encode(video[:, :, :1])
    assert (tiny.encode(video)[:, :, :1] - alone).abs().max() <= 1e-5


@torch.no_grad()
def test_chunked_decode_equals_whole(tiny: CausalVideoVAE) -> None:
    z = _latent(6, 6, 4, b=2)
    whole = tiny.decode(z)
    assert whole.shape == (2, 3, 21, 48, 32)
    for chunk in (1, 2, 4, 5):
        chunked = tiny.decode(z, temporal_chunk=chunk)
        assert chunked.shape == whole.shape
        err = (chunked - whole).abs().max().item()
        assert err <= 1e-4, f"temporal_chunk={chunk}: max abs diff {err:.2e} from whole decode"


@pytest.mark.parametrize(
    "cfg",
    [
        VAEConfig(latent_channels=8, channels=(8, 16, 16), down=("time", "space"), layers_per_level=2),
        VAEConfig(latent_channels=4, patch_size=1, channels=(8, 16), down=("all",), mid_attention=False),
    ],
    ids=["time-space", "no-attention"],
)
@torch.no_grad()
def test_other_layouts(cfg: VAEConfig) -> None:
    torch.manual_seed(0)
    vae = CausalVideoVAE(cfg).eval()
    tc, sc = cfg.temporal_compression, cfg.spatial_compression
    frames, size = 1 + 3 * tc, 2 * sc
    z = vae.encode(_video(frames, size, size))
    assert z.shape == (1, cfg.latent_channels, 4, 2, 2)
    whole = vae.decode(z)
    assert whole.shape == (1, 3, frames, size, size)
    for chunk in (1, 3):
        assert (vae.decode(z, temporal_chunk=chunk) - whole).abs().max() <= 1e-4


@torch.no_grad()
def test_batch_items_are_independent(tiny: CausalVideoVAE) -> None:
    video = _video(9, 32, 32, b=2)
    z = tiny.encode(video)
    assert (z[1:] - tiny.encode(video[1:])).abs().max() <= 1e-5
    out = tiny.decode(z, temporal_chunk=1)
    assert (out[1:] - tiny.decode(z[1:])).abs().max() <= 1e-4


def _rel_err(a: torch.Tensor, ref: torch.Tensor) -> float:
    return ((a - ref).abs().mean() / ref.abs().mean()).item()


@torch.no_grad()
def test_tiled_decode_close_to_whole(tiny: CausalVideoVAE) -> None:
    z = _latent(1, 16, 16)
    whole = tiny.decode(z)
    tiled = tiny.decode(z, spatial_tile=12, tile_overlap=4)  # spans [0,12) and [4,16) on each axis
    assert tiled.shape == whole.shape == (1, 3, 1, 128, 128)
    # Latent rows/cols 0..3 are decoded by the first tile only and lie 8 latent px from its edge,
    # beyond the decoder's ~5 px receptive field: there the result must be exact.
    assert (tiled[..., :32, :32] - whole[..., :32, :32]).abs().max() <= 1e-4
    # Everywhere: seams from the tile borders stay small (measured ~0.04 relative mean error);
    # a misplaced tile or wrong blend weights gives ~1.
    err = _rel_err(tiled, whole)
    assert err < 0.1, f"tile 12 / overlap 4: relative mean error {err:.3f} from whole decode"
    small = tiny.decode(z, spatial_tile=8, tile_overlap=4)  # 3 x 3 tiles, measured ~0.12
    err = _rel_err(small, whole)
    assert err < 0.25, f"tile 8 / overlap 4: relative mean error {err:.3f} from whole decode"
    shifted = torch.roll(small, shifts=8, dims=-1)  # what an off-by-one-latent-pixel tile would give
    assert _rel_err(shifted, whole) > 0.5


@torch.no_grad()
def test_chunked_and_tiled_together(tiny: CausalVideoVAE) -> None:
    z = _latent(3, 10, 8)
    tiled = tiny.decode(z, spatial_tile=6, tile_overlap=2)
    both = tiny.decode(z, temporal_chunk=1, spatial_tile=6, tile_overlap=2)
    assert both.shape == (1, 3, 9, 80, 64)
    assert (both - tiled).abs().max() <= 1e-4
    assert _rel_err(both, tiny.decode(z)) < 0.25


@torch.no_grad()
def test_tile_larger_than_latent_is_whole(tiny: CausalVideoVAE) -> None:
    z = _latent(3, 8, 8)
    assert (tiny.decode(z, spatial_tile=8) - tiny.decode(z)).abs().max() <= 1e-5


def test_bad_video_inputs(tiny: CausalVideoVAE) -> None:
    with pytest.raises(ConfigError, match=r"frames=16 is not 1 \+ 4k for this VAE; use 17 or 13"):
        tiny.encode(_video(16))
    with pytest.raises(ConfigError, match=r"height=60 is not a multiple of 8.*use 56 or 64"):
        tiny.encode(_video(17, 60, 64))
    with pytest.raises(ConfigError, match=r"width=20 is not a multiple of 8"):
        tiny.encode(_video(1, 64, 20))
    with pytest.raises(ValueError, match=r"video has 4 channels.*expected 3"):
        tiny.encode(torch.zeros(1, 4, 17, 64, 64))
    with pytest.raises(ValueError, match=r"expected 5 dims \[B,3,F,H,W\]"):
        tiny.encode(torch.zeros(17, 64, 64, 3))


def test_bad_latent_inputs(tiny: CausalVideoVAE) -> None:
    with pytest.raises(ValueError, match=r"latent has 8 channels.*this VAE expects 16"):
        tiny.decode(torch.zeros(1, 8, 2, 4, 4))
    with pytest.raises(ValueError, match=r"expected 5 dims \[B,16,t,h,w\]"):
        tiny.decode(torch.zeros(16, 2, 4, 4))
    with pytest.raises(ValueError, match=r"spatial_tile=2 must be larger than tile_overlap=2"):
        tiny.decode(torch.zeros(1, 16, 1, 4, 4), spatial_tile=2)
    with pytest.raises(ValueError, match=r"temporal_chunk=-1 must be >= 0"):
        tiny.decode(torch.zeros(1, 16, 1, 4, 4), temporal_chunk=-1)


def test_bad_config() -> None:
    with pytest.raises(ConfigError, match="channels has 2 entries"):
        CausalVideoVAE(VAEConfig(channels=(8, 16), down=("all", "all")))


@torch.no_grad()
def test_latent_stats_saved_and_used() -> None:
    torch.manual_seed(0)
    vae = CausalVideoVAE(preset("tiny").vae).eval()
    sd = vae.state_dict()
    assert torch.equal(sd["latent_mean"], torch.zeros(16))
    assert torch.equal(sd["latent_std"], torch.ones(16))
    video = _video(5)
    raw = vae.encode(video)
    plain = vae.decode(raw)
    mean = torch.linspace(-1, 1, 16)
    std = torch.linspace(0.5, 2, 16)
    vae.latent_mean.copy_(mean)
    vae.latent_std.copy_(std)
    z = vae.encode(video)
    assert not torch.allclose(z, raw)
    assert torch.allclose(z, (raw - mean.view(1, -1, 1, 1, 1)) / std.view(1, -1, 1, 1, 1), atol=1e-5)
    # decode undoes the statistics, so the reconstruction does not depend on them.
    assert (vae.decode(z) - plain).abs().max() <= 1e-4
    # The statistics travel with the state dict.
    other = CausalVideoVAE(preset("tiny").vae)
    other.load_state_dict(vae.state_dict())
    assert torch.equal(other.latent_mean, mean) and torch.equal(other.latent_std, std)


@torch.no_grad()
def test_sampled_encode(tiny: CausalVideoVAE) -> None:
    video = _video(5)
    mean, logvar = tiny.encode_moments(video)
    a = tiny.encode(video, sample=True, generator=torch.Generator().manual_seed(3))
    b = tiny.encode(video, sample=True, generator=torch.Generator().manual_seed(3))
    c = tiny.encode(video, sample=True, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    noise = (a - mean) / torch.exp(0.5 * logvar)
    assert 0.8 < noise.std().item() < 1.2  # the spread is the posterior's


def test_gradients_flow_through_chunked_decode() -> None:
    torch.manual_seed(0)
    vae = CausalVideoVAE(VAEConfig(channels=(8, 16, 16)))
    video = _video(5, 16, 16)
    out = vae.decode(vae.encode(video), temporal_chunk=1)
    F.mse_loss(out, video).backward()
    grads = [p.grad for p in vae.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert vae.encoder.conv_in.conv.weight.grad.abs().sum() > 0


def test_chunked_encoding_equals_whole_encoding_in_less_memory(one_thread):
    """Latent frames a few at a time (the causal caches carry the past, the temporal attention its keys and values)
    give the whole clip's latents; the peak follows the chunk."""
    from bench.measure import measure_peak

    torch.manual_seed(0)
    vae = CausalVideoVAE(preset("tiny").vae).eval()
    assert vae.cfg.mid_attention
    tc = vae.temporal_compression
    video = torch.rand(1, 3, 1 + 8 * tc, 64, 64) * 2 - 1
    with torch.no_grad():
        whole = vae.encode(video)
        for chunk in (1, 3, 4):
            assert (vae.encode(video, temporal_chunk=chunk) - whole).abs().max() <= 1e-5
        _, whole_peak = measure_peak(lambda: vae.encode(video))
        _, chunk_peak = measure_peak(lambda: vae.encode(video, temporal_chunk=1))
    assert chunk_peak <= 0.5 * whole_peak, (chunk_peak, whole_peak)
