"""The LTX-2 video VAE against Lightricks' `ltx_core` (test-only) at tiny random configs, loaded from files
written in the released layouts: the single-file checkpoint (`vae.` prefix, config JSON in the metadata key
`config`) and the split VAE file (no prefix)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from aiprod_core.checkpoint import CheckpointError
from aiprod_core.config import ConfigError
from aiprod_core.families.ltx2.vae import LTX2VideoVAE
from aiprod_core.families.ltx2.vae_config import LTX2_VIDEO_VAE, LTX2VAEConfig
from aiprod_core.families.ltx2.vae_loader import load_ltx2_video_vae

ltx_core = pytest.importorskip("ltx_core")
from ltx2_files import RELEASED_TINY_VAE, ReferenceVAE, rel_err  # noqa: E402
from ltx_core.model.video_vae.model_configurator import (  # noqa: E402
    VideoDecoderConfigurator,
    VideoEncoderConfigurator,
)
from ltx_core.model.video_vae.tiling import (  # noqa: E402
    SpatialTilingConfig,
    TemporalTilingConfig,
    TilingConfig,
)

TOL = 1e-4  # relative to the reference's largest value, fp32

# The other paths ltx_core can build: timestep conditioning (its configurator's default), noise injection,
# a causal decoder, plain strided compress convs, res_x_y width changes, a per-channel log-variance, and
# time-only / space-only decoder stages.
VARIANT_TINY = {
    "latent_channels": 8,
    "decoder_base_channels": 4,
    "patch_size": 4,
    "encoder_blocks": [
        ["res_x", 1],
        ["compress_space_res", {"multiplier": 2}],
        ["res_x_y", {"multiplier": 2}],
        ["compress_time", {}],
        ["compress_all_x_y", {"multiplier": 2}],
        ["compress_all", {}],
        ["res_x", {"num_layers": 1}],
    ],
    "decoder_blocks": [
        ["res_x", {"num_layers": 1, "inject_noise": True}],
        ["compress_all", {"multiplier": 1}],
        ["compress_all", {"residual": True, "multiplier": 2}],
        ["res_x_y", {"multiplier": 2}],
        ["compress_time", {"multiplier": 1}],
        ["compress_space", {"multiplier": 2}],
        ["res_x", {"num_layers": 2}],
    ],
    "causal_decoder": True,
    "latent_log_var": "per_channel",
    "spatial_padding_mode": "zeros",
}


def write_single_file(path, ref: ReferenceVAE, vae_cfg: dict) -> None:
    """A single-file checkpoint as released: other components beside `vae.`, config JSON in `config`."""
    tensors = ref.released_tensors("vae.")
    tensors["model.diffusion_model.patchify_proj.weight"] = torch.zeros(4, 8)
    tensors["audio_vae.encoder.conv_in.conv.weight"] = torch.zeros(2, 2, 3, 3)  # "audio_vae." is not "vae."
    config = {"transformer": {"num_layers": 48}, "vae": vae_cfg, "audio_vae": {}}
    save_file(tensors, str(path), metadata={"config": json.dumps(config)})


def write_split_file(path, ref: ReferenceVAE, vae_cfg: dict | None) -> None:
    """ComfyUI's split VAE file: the same keys without the prefix; metadata optional."""
    meta = {"config": json.dumps({"vae": vae_cfg})} if vae_cfg is not None else None
    save_file(ref.released_tensors(""), str(path), metadata=meta)


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    ref = ReferenceVAE(RELEASED_TINY_VAE, seed=0)
    path = tmp_path_factory.mktemp("ltx2_vae") / "ltx-2-tiny.safetensors"
    write_single_file(path, ref, RELEASED_TINY_VAE)
    return ref, path, load_ltx2_video_vae(path)


def _video(frames=9, h=64, w=64, seed=1):
    return torch.rand(1, 3, frames, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _latent(t, h, w, c=8, seed=2):
    return torch.randn(1, c, t, h, w, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def test_encode_matches_reference(released):
    ref, _, vae = released
    video = _video(17, 64, 96)
    expected = ref.encoder(video)
    z = vae.encode(video)
    assert z.shape == (1, 8, 3, 2, 3)
    assert rel_err(z, expected) <= TOL
    mean, logvar = vae.encode_moments(video)  # the raw mean is the normalised one un-normalised
    assert rel_err(mean, ref.encoder.per_channel_statistics.un_normalize(expected)) <= TOL
    assert logvar.shape == mean.shape and bool((logvar == logvar[:, :1]).all())  # one shared channel


# (spatial tile, overlap, temporal tile, overlap) in latent units for the encoder (x32 pixels, x8 frames).
ENCODE_TILINGS = [(3, 2, 3, 2), (0, 2, 3, 2), (3, 2, 0, 2)]


@pytest.mark.parametrize(("tile", "overlap", "chunk", "t_overlap"), ENCODE_TILINGS)
@torch.no_grad()
def test_tiled_encode_matches_reference_tiled_encode(released, tile, overlap, chunk, t_overlap):
    ref, _, vae = released
    video = _video(25, 128, 96, seed=7)
    tiling = TilingConfig(spatial_config=SpatialTilingConfig(tile * 32, overlap * 32) if tile else None,
                          temporal_config=TemporalTilingConfig(chunk * 8, t_overlap * 8) if chunk else None)
    expected = ref.encoder.tiled_encode(video, tiling)
    ours = vae.encode(video, temporal_chunk=chunk, spatial_tile=tile, tile_overlap=overlap,
                      temporal_overlap=t_overlap)
    assert ours.shape == (1, 8, 4, 4, 3)
    assert rel_err(ours, expected) <= TOL
    print(f"encode tiles {tile}/{overlap} px, {chunk}/{t_overlap} t: vs ltx_core tiled {rel_err(ours, expected):.1e}, "
          f"vs ltx_core whole {rel_err(ours, ref.encoder(video)):.2e}")


@torch.no_grad()
def test_decode_matches_reference(released):
    ref, _, vae = released
    z = _latent(3, 2, 3)
    expected = ref.decoder(z)
    video = vae.decode(z)
    assert video.shape == (1, 3, 17, 64, 96)
    assert rel_err(video, expected) <= TOL


# (spatial tile, spatial overlap, temporal tile, temporal overlap) in latent units (x32 pixels, x8 frames),
# and the latent's (t, h, w): on a 4x3 latent the shorter side gets proportionally smaller tiles.
TILINGS = [(2, 1, 3, 1, (5, 4, 3)), (2, 1, 2, 1, (5, 4, 3)), (3, 1, 4, 2, (5, 4, 3)), (2, 0, 2, 0, (5, 4, 4))]


@pytest.mark.parametrize(("tile", "overlap", "chunk", "t_overlap", "shape"), TILINGS)
@torch.no_grad()
def test_tiled_decode_matches_reference_tiled_decode(released, tile, overlap, chunk, t_overlap, shape):
    ref, _, vae = released
    z = _latent(*shape, seed=3)
    tiling = TilingConfig(spatial_config=SpatialTilingConfig(tile * 32, overlap * 32),
                          temporal_config=TemporalTilingConfig(chunk * 8, t_overlap * 8))
    expected = torch.cat(list(ref.decoder.tiled_decode(z, tiling)), dim=2)
    ours = vae.decode(z, temporal_chunk=chunk, spatial_tile=tile, tile_overlap=overlap, temporal_overlap=t_overlap)
    assert rel_err(ours, expected) <= TOL
    # Tiles see less context than the whole clip, and this decoder is non-causal: the blend is an
    # approximation of the whole decode (measured, not bounded: random weights exaggerate it).
    whole = ref.decoder(z)
    print(f"tiles {tile}/{overlap} px, {chunk}/{t_overlap} t: vs ltx_core tiled {rel_err(ours, expected):.1e}, "
          f"vs ltx_core whole {rel_err(ours, whole):.2e}")
    assert torch.isfinite(ours).all()


@torch.no_grad()
def test_tiles_bound_what_the_networks_see(released):
    """Peak memory follows the tile: no network call sees more than one tile of latent or video."""
    _, _, vae = released
    seen = []

    def largest(shapes):
        return tuple(max(d) for d in zip(*shapes, strict=True))

    hooks = [m.register_forward_pre_hook(lambda _, args: seen.append(tuple(args[0].shape[2:])))
             for m in (vae.decoder.conv_in, vae.encoder.conv_in)]
    try:
        vae.decode(_latent(9, 6, 4, seed=8), temporal_chunk=3, spatial_tile=3, tile_overlap=1, temporal_overlap=1)
        assert len(seen) == 4 * 3 * 3 and largest(seen) == (4, 3, 2)  # a frame early in time; short side scaled
        seen.clear()
        vae.encode(_video(33, 128, 96, seed=9), temporal_chunk=3, spatial_tile=3)
        assert len(seen) == 3 * 2 and largest(seen) == (25, 24, 24)  # frames, and pixels patchified by 4
    finally:
        for h in hooks:
            h.remove()


@torch.no_grad()
def test_loads_in_bfloat16(released):
    ref, path, _ = released
    vae = load_ltx2_video_vae(path, dtype=torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in vae.parameters())
    z = _latent(2, 2, 2, seed=14)
    assert vae.decode(z).dtype == torch.bfloat16
    assert rel_err(vae.decode(z).float(), ref.decoder(z)) < 5e-2  # bf16 weights and activations


@torch.no_grad()
def test_spatial_only_and_temporal_only_tiling(released):
    ref, _, vae = released
    z = _latent(5, 4, 3, seed=4)
    # ltx_core's tiled_decode needs a temporal config; one tile long enough for the clip is "no time tiling".
    spatial = TilingConfig(spatial_config=SpatialTilingConfig(64, 32), temporal_config=TemporalTilingConfig(64, 0))
    expected = torch.cat(list(ref.decoder.tiled_decode(z, spatial)), dim=2)
    assert rel_err(vae.decode(z, spatial_tile=2, tile_overlap=1), expected) <= TOL
    temporal = TilingConfig(temporal_config=TemporalTilingConfig(16, 8))
    expected = torch.cat(list(ref.decoder.tiled_decode(z, temporal)), dim=2)
    assert rel_err(vae.decode(z, temporal_chunk=2, temporal_overlap=1), expected) <= TOL
    # Tiles as large as the latent are the whole decode.
    assert rel_err(vae.decode(z, temporal_chunk=5, spatial_tile=4), ref.decoder(z)) <= TOL


@torch.no_grad()
def test_split_file_without_prefix_loads_the_same(released, tmp_path):
    ref, _, vae = released
    path = tmp_path / "ltx-2-tiny_video_vae.safetensors"
    write_split_file(path, ref, RELEASED_TINY_VAE)
    split = load_ltx2_video_vae(path)
    for k, v in vae.state_dict().items():
        assert torch.equal(split.state_dict()[k], v), k
    z = _latent(2, 2, 2, seed=5)
    assert rel_err(split.decode(z), ref.decoder(z)) <= TOL


@torch.no_grad()
def test_decode_only_reads_no_encoder(released):
    ref, path, _ = released
    vae = load_ltx2_video_vae(path, encoder=False)
    assert vae.encoder is None and not any(k.startswith("encoder.") for k in vae.state_dict())
    z = _latent(2, 2, 2, seed=6)
    assert rel_err(vae.decode(z), ref.decoder(z)) <= TOL
    with pytest.raises(RuntimeError, match="without its encoder"):
        vae.encode(_video())


@torch.no_grad()
def test_timestep_conditioned_causal_variant_matches_reference(tmp_path):
    ref = ReferenceVAE(VARIANT_TINY, seed=10)
    path = tmp_path / "variant.safetensors"
    write_single_file(path, ref, VARIANT_TINY)
    vae = load_ltx2_video_vae(path)
    assert vae.cfg.timestep_conditioning and vae.cfg.causal_decoder  # the configurator's default, and set
    video = _video(9, 64, 64, seed=11)
    assert rel_err(vae.encode(video), ref.encoder(video)) <= TOL
    z = _latent(2, 2, 2, seed=12)
    # The decoder mixes noise into the latent and its blocks: the same generator draws the same noise.
    expected = ref.decoder(z, generator=torch.Generator().manual_seed(3))
    assert rel_err(vae.decode(z, generator=torch.Generator().manual_seed(3)), expected) <= TOL
    expected = ref.decoder(z, timestep=torch.tensor([0.3]), generator=torch.Generator().manual_seed(4))
    ours = vae.decode(z, timestep=0.3, generator=torch.Generator().manual_seed(4))
    assert rel_err(ours, expected) <= TOL
    tiling = TilingConfig(spatial_config=SpatialTilingConfig(64, 32), temporal_config=TemporalTilingConfig(16, 8))
    z = _latent(3, 3, 3, seed=13)
    expected = torch.cat(list(ref.decoder.tiled_decode(z, tiling, generator=torch.Generator().manual_seed(5))), 2)
    ours = vae.decode(z, temporal_chunk=2, spatial_tile=2, tile_overlap=1, temporal_overlap=1,
                      generator=torch.Generator().manual_seed(5))
    assert rel_err(ours, expected) <= TOL


@pytest.mark.parametrize("vae_cfg", [LTX2_VIDEO_VAE, VARIANT_TINY, RELEASED_TINY_VAE])
def test_state_dict_layout_matches_reference(vae_cfg):
    """Every key and shape ltx_core builds for a config, ours builds too (full size on the meta device)."""
    with torch.device("meta"):
        enc = VideoEncoderConfigurator.from_config({"vae": vae_cfg})
        dec = VideoDecoderConfigurator.from_config({"vae": vae_cfg})
        ours = LTX2VideoVAE(LTX2VAEConfig.from_dict(vae_cfg))
    expected = {f"encoder.{k}": v.shape for k, v in enc.state_dict().items()}
    expected |= {f"decoder.{k}": v.shape for k, v in dec.state_dict().items()}
    expected = {k.replace("encoder.per_channel_statistics", "per_channel_statistics"): v
                for k, v in expected.items() if not k.startswith("decoder.per_channel_statistics")}
    assert {k: v.shape for k, v in ours.state_dict().items()} == expected


def test_config_round_trips_and_reports_compression():
    cfg = LTX2VAEConfig.from_dict(LTX2_VIDEO_VAE)
    assert LTX2VAEConfig.from_dict(cfg.to_dict()) == cfg
    assert (cfg.temporal_compression, cfg.spatial_compression) == (8, 32)
    assert (cfg.encoder_padding, cfg.decoder_padding) == ("zeros", "reflect")
    assert not cfg.timestep_conditioning and not cfg.causal_decoder
    assert LTX2VAEConfig.from_dict({}).timestep_conditioning  # ltx_core's default when the key is absent


def test_bad_configs_say_what_to_use():
    with pytest.raises(ConfigError, match="supported blocks"):
        LTX2VAEConfig.from_dict({**RELEASED_TINY_VAE, "decoder_blocks": [["attn_res_x", {"num_layers": 1}]]})
    with pytest.raises(ConfigError, match="mirror"):
        LTX2VAEConfig.from_dict({**RELEASED_TINY_VAE, "decoder_blocks": RELEASED_TINY_VAE["decoder_blocks"][:3]})
    with pytest.raises(ConfigError, match="spatial_padding_mode is 'mirror'"):
        LTX2VAEConfig.from_dict({**RELEASED_TINY_VAE, "spatial_padding_mode": "mirror"})
    with pytest.raises(ConfigError, match="dims"):
        LTX2VAEConfig.from_dict({**RELEASED_TINY_VAE, "dims": 2})


def test_bad_inputs_say_what_to_use(released):
    _, _, vae = released
    with pytest.raises(ConfigError, match="use 9 or 17"):
        vae.encode(_video(frames=16))
    with pytest.raises(ConfigError, match="multiple of 32"):
        vae.encode(_video(frames=9, h=48))
    with pytest.raises(ValueError, match=r"\[B,8,t,h,w\]"):
        vae.decode(torch.zeros(1, 4, 2, 2, 2))
    with pytest.raises(ValueError, match="spatial_tile=1"):
        vae.decode(_latent(2, 2, 2), spatial_tile=1, tile_overlap=0)


def test_key_mismatches_are_named(released, tmp_path):
    ref, _, _ = released
    tensors = ref.released_tensors("vae.")
    dropped = "vae.decoder.conv_out.conv.bias"
    broken = {k: v for k, v in tensors.items() if k != dropped}
    broken["vae.decoder.extra.weight"] = torch.zeros(1)
    broken["vae.encoder.conv_in.conv.weight"] = torch.zeros(8, 48, 3, 3, 1)
    path = tmp_path / "broken.safetensors"
    save_file(broken, str(path), metadata={"config": json.dumps({"vae": RELEASED_TINY_VAE})})
    with pytest.raises(CheckpointError) as e:
        load_ltx2_video_vae(path)
    msg = str(e.value)
    assert "missing 1 keys" in msg and dropped in msg
    assert "unexpected 1 keys" in msg and "vae.decoder.extra.weight" in msg
    assert "vae.encoder.conv_in.conv.weight: expected (8, 48, 3, 3, 3), found (8, 48, 3, 3, 1)" in msg
    # A split file without metadata is taken for the released full-size VAE; the tiny weights do not fit it.
    path = tmp_path / "no_meta.safetensors"
    write_split_file(path, ref, None)
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_ltx2_video_vae(path)
    assert load_ltx2_video_vae(path, config=LTX2VAEConfig.from_dict(RELEASED_TINY_VAE)).cfg.latent_channels == 8
    # The diffusers layout of the same VAE is named as such.
    path = tmp_path / "diffusers.safetensors"
    save_file({"decoder.mid_block.resnets.0.conv1.conv.weight": torch.zeros(1), "latents_mean": torch.zeros(8)},
              str(path))
    with pytest.raises(CheckpointError, match="diffusers layout"):
        load_ltx2_video_vae(path)
    # A file with no VAE at all.
    path = tmp_path / "transformer_only.safetensors"
    save_file({"model.diffusion_model.x": torch.zeros(1)}, str(path))
    with pytest.raises(CheckpointError, match="holds no LTX-2 video VAE"):
        load_ltx2_video_vae(path)
