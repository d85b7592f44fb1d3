"""Our LTX-2 video transformer, loaded from files in the released layout, against Lightricks' ltx-core.

The reference is the audio-video model with random weights at a tiny config; a video-only call to it (audio
None) must give the velocity our video-only model gives from the same file.
"""

from __future__ import annotations

import json

import pytest
import torch
from ltx2_files import TINY_TRANSFORMER, fp8_transformer, reference_transformer, rel_err, write_single_file
from safetensors.torch import save_file

from aiprod_core.families.ltx2.config import LTX2ConfigError, LTX2TransformerConfig
from aiprod_core.families.ltx2.files import LTX2FileError, open_ltx2
from aiprod_core.families.ltx2.rope import video_positions
from aiprod_core.families.ltx2.transformer import LTX2VideoTransformer, is_audio_key, load_video_transformer

ltx_core = pytest.importorskip("ltx_core")
from ltx_core.components.patchifiers import VideoLatentPatchifier, get_pixel_coords  # noqa: E402
from ltx_core.model.transformer import Modality  # noqa: E402
from ltx_core.types import VideoLatentShape  # noqa: E402

GRID = (3, 2, 3)  # latent (t, h, w): 18 tokens
FPS = 25.0

# LTX-2 (19B): split RoPE, float64 frequency grid, caption projection in the transformer.
LTX2_0 = {"transformer": dict(TINY_TRANSFORMER)}
# LTX-2.3 style: gated attention, AdaLN on the text cross-attention, projection before the connector.
LTX2_3 = {"transformer": {**TINY_TRANSFORMER, "apply_gated_attention": True, "cross_attention_adaln": True,
                          "caption_proj_before_connector": True}}
# Interleaved RoPE with a float32 grid (the reference's defaults).
INTERLEAVED = {"transformer": {**TINY_TRANSFORMER, "rope_type": "interleaved", "frequencies_precision": "float32"}}
CONFIGS = {"ltx2.0": LTX2_0, "ltx2.3": LTX2_3, "interleaved": INTERLEAVED}


def reference_transformer_on_meta(config):
    from ltx_core.model.transformer import LTXModelConfigurator

    return LTXModelConfigurator.from_config(config)


def reference_positions(grid, fps, batch):
    """Token positions the way ltx-core's VideoLatentTools builds them: [B, 3, N, 2]."""
    shape = VideoLatentShape(batch, 128, *grid)
    bounds = VideoLatentPatchifier(patch_size=1).get_patch_grid_bounds(shape)
    positions = get_pixel_coords(bounds, (8, 32, 32), causal_fix=True).float()
    positions[:, 0] = positions[:, 0] / fps
    return positions


def inputs(config, batch=2, seed=1):
    """A latent [B,128,t,h,w], sigma [B], context [B,L,D] and a mask [B,L] with padding in the second row."""
    g = torch.Generator().manual_seed(seed)
    t = config["transformer"]
    text = t["cross_attention_dim"] if t.get("caption_proj_before_connector") else t["caption_channels"]
    x = torch.randn(batch, 128, *GRID, generator=g)
    sigma = torch.tensor([0.7, 0.25])[:batch]
    context = torch.randn(batch, 5, text, generator=g)
    mask = torch.ones(batch, 5, dtype=torch.long)
    mask[-1, 3:] = 0
    return x, sigma, context, mask


def reference_velocity(ref, x, sigma, context, mask, per_token_sigma=None):
    """ltx-core's video velocity for a video-only call, reshaped to [B,C,t,h,w]."""
    b, c, *grid = x.shape
    tokens = x.flatten(2).transpose(1, 2)  # (B, N, C)
    timesteps = per_token_sigma if per_token_sigma is not None else sigma[:, None].expand(b, tokens.shape[1])
    video = Modality(latent=tokens, sigma=sigma, timesteps=timesteps,
                     positions=reference_positions(grid, FPS, b), context=context, context_mask=mask)
    with torch.no_grad():
        vx, ax = ref(video, None, None)
    assert ax is None
    return vx.transpose(1, 2).reshape(b, c, *grid)


def write_reference(tmp_path, config, name="ltx2.safetensors", dtype=None, prefixed=True, seed=0):
    ref = reference_transformer(config, seed)
    path = write_single_file(tmp_path / name, config, {"transformer": ref.state_dict()}, dtype, prefixed)
    return ref, path


@pytest.mark.parametrize("name", list(CONFIGS))
def test_video_velocity_matches_reference_fp32(tmp_path, name):
    config = CONFIGS[name]
    ref, path = write_reference(tmp_path, config)
    ours = load_video_transformer(path, torch.float32)
    x, sigma, context, mask = inputs(config)
    with torch.no_grad():
        got = ours(x, sigma, context, mask, fps=FPS)
    want = reference_velocity(ref, x, sigma, context, mask)
    err = rel_err(got, want)
    assert want.abs().max() > 0.1, "the reference's velocity is near zero: the comparison would say nothing"
    assert err <= 1e-4, f"{name}: max relative error {err:.2e} against ltx-core in float32"


def test_attention_chunks_give_the_same_velocity(tmp_path):
    _, path = write_reference(tmp_path, LTX2_3)
    ours = load_video_transformer(path)
    x, sigma, context, mask = inputs(LTX2_3)
    with torch.no_grad():
        whole = ours(x, sigma, context, mask, fps=FPS)
        ours.set_attention_chunk(5)  # 18 tokens: chunks of 5, 5, 5, 3
        chunked = ours(x, sigma, context, mask, fps=FPS)
    assert rel_err(chunked, whole) <= 1e-6


def test_full_size_model_has_the_reference_video_keys_and_shapes():
    # the released 19B (LTX-2.0) and 22B (LTX-2.3) widths, 4 of their 48 layers, built on the meta device
    full = {**TINY_TRANSFORMER, "num_layers": 4, "num_attention_heads": 32, "attention_head_dim": 128,
            "cross_attention_dim": 4096, "caption_channels": 3840, "audio_num_attention_heads": 32,
            "audio_attention_head_dim": 64, "audio_in_channels": 128, "audio_out_channels": 128,
            "audio_cross_attention_dim": 2048}
    for extra in ({},
                  {"apply_gated_attention": True, "cross_attention_adaln": True, "caption_proj_before_connector": True}):
        config = {"transformer": {**full, **extra}}
        with torch.device("meta"):
            ref = reference_transformer_on_meta(config)
            ours = LTX2VideoTransformer(LTX2TransformerConfig.from_metadata(config))
        want = {k: tuple(v.shape) for k, v in ref.state_dict().items() if not is_audio_key(k)}
        assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == want
        assert ours.cfg.width == 4096


def test_per_voxel_sigma_matches_reference(tmp_path):
    # image-to-video: the first latent frame is clean (sigma 0), the rest at the step's sigma
    ref, path = write_reference(tmp_path, LTX2_3)
    ours = load_video_transformer(path)
    x, sigma, context, mask = inputs(LTX2_3)
    per_voxel = sigma[:, None, None, None].expand(-1, *GRID).clone()
    per_voxel[:, 0] = 0.0
    with torch.no_grad():
        got = ours(x, per_voxel, context, mask, fps=FPS)
    want = reference_velocity(ref, x, sigma, context, mask, per_token_sigma=per_voxel.flatten(1))
    err = rel_err(got, want)
    assert err <= 1e-4, f"max relative error {err:.2e} with per-voxel sigma"


def test_bf16_file_matches_reference_in_bf16(tmp_path):
    ref, path = write_reference(tmp_path, LTX2_0, dtype=torch.bfloat16)
    ours = load_video_transformer(path, torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in ours.parameters())
    x, sigma, context, mask = inputs(LTX2_0)
    exact = reference_velocity(ref, x, sigma, context, mask)  # float32 weights, before bf16 rounding
    ref = ref.to(torch.bfloat16)
    with torch.no_grad():
        got = ours(x.bfloat16(), sigma, context.bfloat16(), mask, fps=FPS)
    want = reference_velocity(ref, x.bfloat16(), sigma, context.bfloat16(), mask)
    assert got.dtype == torch.bfloat16
    err, ours_off, ref_off = rel_err(got, want), rel_err(got, exact), rel_err(want, exact)
    assert err <= 2e-2, f"max relative error {err:.2e} against ltx-core, both in bfloat16"
    # rounding, not a different computation: ours is as close to the float32 result as the reference is
    assert ours_off <= 1.5 * ref_off, f"bf16 error against float32: ours {ours_off:.2e}, ltx-core {ref_off:.2e}"


@pytest.mark.parametrize("fmt", ["scaled", "comfy_legacy", "cast"])
def test_fp8_file_matches_reference_with_the_same_rounded_weights(tmp_path, fmt):
    ref = reference_transformer(LTX2_0)
    stored, dequantized = fp8_transformer(ref.state_dict(), fmt)
    path = write_single_file(tmp_path / f"fp8_{fmt}.safetensors", LTX2_0, {"transformer": stored})
    ref.load_state_dict(dequantized, assign=True)
    ours = load_video_transformer(path, torch.float32)
    x, sigma, context, mask = inputs(LTX2_0)
    with torch.no_grad():
        got = ours(x, sigma, context, mask, fps=FPS)
    want = reference_velocity(ref, x, sigma, context, mask)
    err = rel_err(got, want)
    assert err <= 1e-4, f"{fmt}: max relative error {err:.2e} against ltx-core with the fp8-rounded weights"
    if fmt != "cast":
        # the scales matter: without them every weight would be off by its scale
        unscaled = {k: v.float() if v.dtype == torch.float8_e4m3fn else v for k, v in stored.items()
                    if not k.endswith(("_scale", "scale_weight")) and k != "scaled_fp8"}
        ref.load_state_dict(unscaled, assign=True)
        assert rel_err(got, reference_velocity(ref, x, sigma, context, mask)) > 1e-2


def test_unprefixed_split_file_loads_the_same(tmp_path):
    # ComfyUI's diffusion_models split: the transformer's keys with no prefix, the config still in metadata
    ref, path = write_reference(tmp_path, LTX2_0, "split.safetensors", prefixed=False)
    assert open_ltx2(path).names == ["transformer"]
    ours = load_video_transformer(path)
    x, sigma, context, mask = inputs(LTX2_0)
    with torch.no_grad():
        err = rel_err(ours(x, sigma, context, mask, fps=FPS), reference_velocity(ref, x, sigma, context, mask))
    assert err <= 1e-4, f"max relative error {err:.2e} from the unprefixed file"


def test_audio_weights_are_not_loaded(tmp_path):
    ref, path = write_reference(tmp_path, LTX2_0)
    file_keys = open_ltx2(path).components["transformer"]
    audio = [k for k in file_keys if is_audio_key(k)]
    # the file does hold the audio stream and the audio<->video attention ...
    for part in ("audio_patchify_proj.", "av_ca_a2v_gate_adaln_single.", "transformer_blocks.0.audio_attn1.",
                 "transformer_blocks.1.audio_to_video_attn.", "transformer_blocks.1.video_to_audio_attn.",
                 "transformer_blocks.0.scale_shift_table_a2v_ca_video", "audio_caption_projection."):
        assert any(k.startswith(part) for k in audio), part
    # ... and our module holds exactly the rest, so no audio tensor is in memory
    ours = load_video_transformer(path)
    names = set(ours.state_dict())
    assert names == {k for k in file_keys if not is_audio_key(k)}
    assert not any(is_audio_key(k) for k in names)
    ref_params = sum(p.numel() for p in ref.parameters())
    ours_params = sum(p.numel() for p in ours.parameters())
    assert ours_params == sum(v.numel() for k, v in ref.state_dict().items() if not is_audio_key(k))
    assert ours_params < ref_params


def test_positions_match_reference():
    for grid, fps in (((3, 2, 4), 25.0), ((1, 1, 1), 24.0), ((5, 3, 2), 50.0)):
        ours = video_positions(*grid, fps=fps)  # (N, 3, 2)
        theirs = reference_positions(grid, fps, 1)[0].permute(1, 0, 2)  # (3, N, 2) -> (N, 3, 2)
        assert torch.equal(ours, theirs), (grid, fps)


def test_component_table_sorts_a_released_file(tmp_path):
    ref = reference_transformer(LTX2_0)
    state = dict(ref.state_dict())
    connector = {"video_embeddings_connector.learnable_registers": torch.zeros(4, 16),
                 "audio_embeddings_connector.learnable_registers": torch.zeros(4, 8)}
    path = tmp_path / "all.safetensors"
    tensors = {"model.diffusion_model." + k: v for k, v in {**state, **connector}.items()}
    tensors["vae.per_channel_statistics.mean-of-means"] = torch.zeros(128)
    tensors["text_embedding_projection.aggregate_embed.weight"] = torch.zeros(3, 6)
    save_file(tensors, str(path), metadata={"config": json.dumps(LTX2_0)})
    file = open_ltx2(path)
    assert file.names == ["audio_connector", "text_projection", "transformer", "video_connector", "video_vae"]
    assert set(file.components["transformer"]) == set(state)
    assert list(file.state_dict("video_connector")) == ["learnable_registers"]


def test_a_file_that_is_not_ltx2_is_refused(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"proj_in.weight": torch.zeros(2, 2), "blocks.0.attn1.to_q.weight": torch.zeros(2, 2)}, str(path))
    with pytest.raises(LTX2FileError) as e:
        open_ltx2(path)
    msg = str(e.value)
    assert "not an LTX-2 file" in msg and "blocks.0.attn1.to_q.weight" in msg and "model.diffusion_model." in msg


def test_a_file_without_the_transformer_is_refused_by_name(tmp_path):
    path = tmp_path / "vae.safetensors"
    save_file({"vae.decoder.conv_in.weight": torch.zeros(2)}, str(path), metadata={"config": json.dumps({"vae": {}})})
    with pytest.raises(LTX2FileError, match=r"holds the LTX-2 components \['video_vae'\] but no transformer"):
        load_video_transformer(path)


def test_a_transformer_without_config_or_with_an_unsupported_one_is_refused(tmp_path):
    ref = reference_transformer(LTX2_0)
    bare = tmp_path / "bare.safetensors"
    save_file({"model.diffusion_model." + k: v for k, v in ref.state_dict().items()}, str(bare))
    with pytest.raises(LTX2FileError, match="no 'config' metadata"):
        load_video_transformer(bare)
    odd = {"transformer": {**TINY_TRANSFORMER, "qk_norm": "layer_norm"}}
    with pytest.raises(LTX2ConfigError, match="qk_norm='layer_norm' is not supported"):
        LTX2TransformerConfig.from_metadata(odd)
    wrong = write_single_file(tmp_path / "wrong.safetensors", {"transformer": {**TINY_TRANSFORMER, "num_layers": 3}},
                              {"transformer": ref.state_dict()})
    with pytest.raises(LTX2FileError, match=r"missing \['transformer_blocks.2."):
        load_video_transformer(wrong)


def test_config_round_trips_through_the_released_names():
    for config in CONFIGS.values():
        cfg = LTX2TransformerConfig.from_metadata(config)
        assert LTX2TransformerConfig.from_metadata({"transformer": cfg.to_dict()}) == cfg
