"""Hybrid backbone: shapes, init, text masking, RoPE math, conv locality, checkpointing, presets."""

from __future__ import annotations

import math

import pytest
import torch

from aiprod_core.config import BackboneConfig, preset
from aiprod_core.models.backbone import AttentionBlock, ConvBlock, HybridBackbone
from aiprod_core.models.rope import (
    apply_rope,
    rope_angles,
    rope_axis_pairs,
    rope_cos_sin,
    rope_tables,
    video_positions,
)


def _tiny(seed: int = 0, **overrides) -> HybridBackbone:
    torch.manual_seed(seed)
    cfg = preset("tiny").backbone
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return HybridBackbone(cfg).eval()


def _perturb_head(model: HybridBackbone) -> None:
    """Give the zero-initialised output layer weights, so that everything upstream shows in the output."""
    with torch.no_grad():
        torch.nn.init.normal_(model.proj_out.weight, std=0.5)


def _tiny_with_head(seed: int = 0, **overrides) -> HybridBackbone:
    """A tiny backbone whose output shows every path into it (its output layer perturbed)."""
    model = _tiny(seed, **overrides)
    _perturb_head(model)
    return model


def _inputs(b: int = 2, grid=(3, 4, 6), length: int = 7, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    cfg = preset("tiny").backbone
    x = torch.randn(b, cfg.in_channels, *grid, generator=g)
    sigma = torch.rand(b, generator=g)
    ctx = torch.randn(b, length, cfg.text_dim, generator=g)
    mask = torch.ones(b, length, dtype=torch.bool)
    mask[1, 4:] = False  # the second prompt is padded after 4 tokens
    return x, sigma, ctx, mask


def test_output_shape_tiny_non_cubic_grid():
    model = _tiny()
    x, sigma, ctx, mask = _inputs(grid=(3, 4, 6))
    out = model(x, sigma, ctx, mask)
    assert out.shape == x.shape
    # an unmasked call and a 0/1 integer mask are accepted too
    assert model(x, sigma, ctx).shape == x.shape
    assert model(x, sigma, ctx, mask.long()).shape == x.shape


def test_output_shape_small_config_on_a_tiny_clip():
    torch.manual_seed(0)
    cfg = preset("small").backbone
    model = HybridBackbone(cfg).eval()
    x = torch.randn(1, cfg.in_channels, 2, 3, 2)
    out = model(x, torch.tensor([0.5]), torch.randn(1, 5, cfg.text_dim))
    assert out.shape == x.shape


def test_tiny_preset_parameter_count():
    n = sum(p.numel() for p in _tiny().parameters())
    assert 1e6 <= n <= 3e6, n


def test_zero_init_output_then_nonzero_after_perturbing_proj_out():
    model = _tiny()
    x, sigma, ctx, mask = _inputs()
    with torch.no_grad():
        assert model(x, sigma, ctx, mask).abs().max().item() == 0.0
        _perturb_head(model)
        out = model(x, sigma, ctx, mask)
    assert out.abs().mean().item() > 1e-2
    assert torch.isfinite(out).all()


def test_masked_text_tokens_do_not_change_output_valid_ones_do():
    model = _tiny_with_head()
    x, sigma, ctx, mask = _inputs()
    with torch.no_grad():
        ref = model(x, sigma, ctx, mask)
        padded = ctx.clone()
        padded[1, 4:] = 100 * torch.randn_like(padded[1, 4:])  # only masked-out positions change
        same = model(x, sigma, padded, mask)
        edited = ctx.clone()
        edited[1, 2] += 1.0  # a valid token of the second prompt
        changed = model(x, sigma, edited, mask)
    torch.testing.assert_close(same, ref, rtol=1e-5, atol=1e-5)
    assert (changed[1] - ref[1]).abs().max() > 1e-3
    # samples do not leak into each other
    torch.testing.assert_close(changed[0], ref[0], rtol=1e-5, atol=1e-5)


def test_padding_a_prompt_does_not_change_the_output():
    # the padded batch row 1 (4 valid tokens of 7) must equal the same prompt given unpadded
    model = _tiny_with_head()
    x, sigma, ctx, mask = _inputs()
    with torch.no_grad():
        padded = model(x, sigma, ctx, mask)[1]
        alone = model(x[1:], sigma[1:], ctx[1:, :4])[0]
        # both rows padded after 4 tokens: the shared padding tail is dropped, same result
        mask2 = mask.clone()
        mask2[0, 4:] = False
        both = model(x, sigma, ctx, mask2)[1]
    torch.testing.assert_close(padded, alone, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(both, alone, rtol=1e-4, atol=1e-5)


def test_pooled_text_conditions_conv_only_path():
    # with pooled text the caption reaches every block through AdaLN; without it, only A blocks see it
    x, sigma, ctx, mask = _inputs()
    edited = ctx.clone()
    edited[0, 1] += 1.0
    for pooled, expect_change in ((True, True), (False, False)):
        model = _tiny_with_head(pattern="AC", pooled_text=pooled)
        model.blocks[0].attn2.to_out.weight.data.zero_()  # cut the cross-attention route
        model.blocks[0].attn2.to_out.bias.data.zero_()
        with torch.no_grad():
            delta = (model(x, sigma, edited, mask) - model(x, sigma, ctx, mask)).abs().max().item()
        assert (delta > 1e-4) == expect_change, (pooled, delta)


def test_fully_masked_context_gives_finite_output_that_ignores_the_text():
    model = _tiny_with_head()
    x, sigma, ctx, mask = _inputs()
    mask[0] = False  # empty prompt in row 0
    no_text = torch.zeros_like(mask)  # empty prompts in every row
    with torch.no_grad():
        out = model(x, sigma, ctx, mask)
        out2 = model(x, sigma, torch.randn_like(ctx), mask)
        out3 = model(x, sigma, ctx, no_text)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out2[0], out[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out3[0], out[0], rtol=1e-5, atol=1e-5)
    assert torch.isfinite(out3).all()


def test_sigma_changes_output():
    model = _tiny_with_head()
    x, sigma, ctx, mask = _inputs()
    with torch.no_grad():
        a = model(x, sigma, ctx, mask)
        b = model(x, sigma * 0.5, ctx, mask)
    assert (a - b).abs().max() > 1e-3


def test_bad_inputs_say_what_was_expected():
    model = _tiny()
    x, sigma, ctx, mask = _inputs()
    with pytest.raises(ValueError, match=r"expected \[B, 16, t, h, w\]"):
        model(x[:, :8], sigma, ctx, mask)
    with pytest.raises(ValueError, match="text_dim"):
        model(x, sigma, ctx[..., :64], mask)
    with pytest.raises(ValueError, match="context_mask"):
        model(x, sigma, ctx, mask[:, :3])
    with pytest.raises(ValueError, match="sigma"):
        model(x, sigma[:1], ctx, mask)


def test_rope_axis_split_and_hand_derived_angles():
    assert rope_axis_pairs(32) == (5, 5, 6)
    assert sum(rope_axis_pairs(64)) == 32
    # head_dim 6: one pair per axis, frequency pi/2 (theta**0 * pi/2); a position at max_pos has
    # fraction 1, so angle (2*1 - 1) * pi/2 = pi/2; position 0 gives -pi/2; half of max_pos gives 0
    ang = rope_angles(torch.tensor([[20, 0, 1024]]), 6, (20, 2048, 2048), 10000.0)
    torch.testing.assert_close(ang, torch.tensor([[math.pi / 2, -math.pi / 2, 0.0]]))
    # the grid's only token sits at (0, 0, 0): every angle is -pi/2, so cos = 0, sin = -1
    cos, sin_rot = rope_cos_sin(1, 1, 1, 6, (20, 2048, 2048), 10000.0)
    torch.testing.assert_close(cos, torch.zeros(1, 6), atol=1e-6, rtol=0)
    torch.testing.assert_close(sin_rot, torch.tensor([[1.0, 1, 1, -1, -1, -1]]), atol=1e-6, rtol=0)
    # pairs are (i, i + 3); the pair (1, 0) turned by -pi/2 is (0, -1): e_0 -> -e_3, e_3 -> e_0
    eye = torch.eye(6)
    torch.testing.assert_close(apply_rope(eye[0:1], cos, sin_rot), -eye[3:4], atol=1e-6, rtol=0)
    torch.testing.assert_close(apply_rope(eye[3:4], cos, sin_rot), eye[0:1], atol=1e-6, rtol=0)


def test_rope_preserves_norms_and_depends_only_on_offset():
    g = torch.Generator().manual_seed(0)
    d, max_pos, theta = 48, (20.0, 2048.0, 2048.0), 10000.0
    q, k = torch.randn(2, d, generator=g, dtype=torch.float64).unbind(0)

    def rotated(v, pos):
        cos, sin_rot = rope_tables(torch.tensor([pos]), d, max_pos, theta, dtype=torch.float64)
        return apply_rope(v[None], cos, sin_rot)[0]

    a = rotated(q, (3, 5, 7))
    torch.testing.assert_close(a.norm(), q.norm())
    # the same 3D offset (2, -3, 4) from two different origins gives the same score
    s1 = rotated(q, (3, 5, 7)) @ rotated(k, (5, 2, 11))
    s2 = rotated(q, (9, 40, 1)) @ rotated(k, (11, 37, 5))
    s3 = rotated(q, (3, 5, 7)) @ rotated(k, (5, 2, 12))  # a different offset
    torch.testing.assert_close(s1, s2, atol=1e-9, rtol=1e-9)
    assert (s1 - s3).abs() > 1e-3


def test_video_positions_follow_the_token_order():
    # tokens are x.flatten(2) of [B,C,t,h,w], i.e. row-major (t, h, w)
    pos = video_positions(2, 3, 4)
    idx = torch.arange(2 * 3 * 4)
    expect = torch.stack([idx // 12, idx // 4 % 3, idx % 4], dim=-1)
    assert torch.equal(pos, expect)


def test_bfloat16_forward_keeps_dtype_and_stays_close_to_float32():
    model = _tiny_with_head()
    x, sigma, ctx, mask = _inputs()
    with torch.no_grad():
        ref = model(x, sigma, ctx, mask)
        out = model.to(torch.bfloat16)(x.bfloat16(), sigma, ctx, mask)  # float32 text is cast
    assert out.dtype == torch.bfloat16
    rel = (out.float() - ref).norm() / ref.norm()
    assert rel < 0.05, rel


def test_rope_tables_are_cached_per_grid():
    model = _tiny()
    r1 = model.rope((3, 4, 6), torch.device("cpu"))
    assert model.rope((3, 4, 6), torch.device("cpu"))[0] is r1[0]
    assert r1[0].shape == (3 * 4 * 6, model.cfg.head_dim)


def test_conv_block_mixes_only_the_kernel_neighbourhood_in_thw_order():
    torch.manual_seed(0)
    cfg = preset("tiny").backbone
    block = ConvBlock(cfg).eval()
    grid = (4, 5, 6)
    n = math.prod(grid)
    x = torch.randn(1, n, cfg.width)
    temb = torch.randn(1, 6 * cfg.width)
    idx = (1 * 5 + 2) * 6 + 3  # token (t=1, h=2, w=3)
    x2 = x.clone()
    x2[0, idx] += 1.0
    with torch.no_grad():
        diff = block(x2, temb, None, None, None, grid) - block(x, temb, None, None, None, grid)
    changed = diff.abs().amax(-1).view(grid) > 1e-6
    expect = torch.zeros(grid, dtype=torch.bool)
    expect[0:3, 1:4, 2:5] = True  # 3x3x3 around (1, 2, 3)
    assert torch.equal(changed, expect)


def test_gradient_checkpointing_same_gradients_and_recomputes():
    x, sigma, ctx, mask = _inputs()
    grads, calls = [], []
    for ckpt in (False, True):
        model = _tiny().train()
        _perturb_head(model)
        model.gradient_checkpointing = ckpt
        count = [0]
        model.blocks[0].register_forward_pre_hook(lambda *_, c=count: c.__setitem__(0, c[0] + 1))
        model(x, sigma, ctx, mask).pow(2).mean().backward()
        grads.append({k: p.grad.clone() for k, p in model.named_parameters()})
        calls.append(count[0])
    assert calls == [1, 2]  # checkpointing reruns the block's forward during backward
    assert grads[0].keys() == grads[1].keys()
    for k in grads[0]:
        torch.testing.assert_close(grads[1][k], grads[0][k], rtol=1e-5, atol=1e-6, msg=k)
    assert grads[0]["blocks.0.attn1.to_q.weight"].abs().max() > 0


def test_forward_is_deterministic_given_a_seed():
    x, sigma, ctx, mask = _inputs()
    outs = []
    for seed in (3, 3, 4):
        model = _tiny_with_head(seed)
        with torch.no_grad():
            outs.append(model(x, sigma, ctx, mask))
    assert torch.equal(outs[0], outs[1])
    assert not torch.allclose(outs[0], outs[2])


def test_base_preset_size_and_blocks_on_meta_device():
    cfg = preset("base").backbone
    with torch.device("meta"):
        model = HybridBackbone(cfg)
    n = sum(p.numel() for p in model.parameters())
    assert 1.4e9 <= n <= 1.6e9, n
    kinds = "".join("A" if isinstance(b, AttentionBlock) else "C" for b in model.blocks)
    assert kinds == cfg.pattern
    assert (kinds.count("A"), kinds.count("C")) == (30, 18)
    # LoRA targets are plain Linears at the expected paths
    names = dict(model.named_modules())
    for path in ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out", "attn2.to_q", "ff.proj_in"):
        assert isinstance(names[f"blocks.0.{path}"], torch.nn.Linear), path
    assert isinstance(names["blocks.2.ff.proj_out"], torch.nn.Linear)


def test_invalid_config_is_rejected():
    with pytest.raises(ValueError, match="pattern"):
        HybridBackbone(BackboneConfig(pattern="AXC"))


def test_absolute_positions_start_at_zero_and_break_translation_symmetry():
    """RoPE and convolutions see only relative positions: on a uniform input, tokens far from the borders get the
    same output. Absolute-position features let the model tell them apart; they are zero at init, so a backbone
    extended with them computes what it did before."""
    from aiprod_core.models.backbone import position_features

    feats = position_features((2, 3, 4), 4, "cpu", torch.float32)
    assert feats.shape == (24, 24) and feats.abs().max() <= 1
    # token order is (t, h, w): the last token is the last frame's bottom-right corner
    assert torch.allclose(feats[-1, :12], position_features((2, 3, 4), 4, "cpu", torch.float32)[-1, :12])
    assert not torch.allclose(feats[0], feats[1]) and torch.allclose(feats[0, 4:8], feats[1, 4:8])  # same t and h

    plain = _tiny(absolute_positions=0)
    _perturb_head(plain)
    extended = _tiny(absolute_positions=4)
    missing, unexpected = extended.load_state_dict(plain.state_dict(), strict=False)
    assert set(missing) == {"pos_embed.weight", "pos_embed.bias"} and not unexpected
    x = torch.ones(1, 16, 2, 24, 24)  # uniform content
    sigma, ctx = torch.tensor([0.5]), torch.randn(1, 5, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before, after = plain(x, sigma, ctx), extended(x, sigma, ctx)
        assert torch.equal(before, after)
        # in the interior only the edges of attention's window differ: nearly the same output
        assert (before[..., 11, 11] - before[..., 12, 13]).abs().max() < 0.02
        torch.nn.init.normal_(extended.pos_embed.weight, std=0.5)
        moved = extended(x, sigma, ctx)
    assert (moved[..., 11, 11] - moved[..., 12, 13]).abs().max() > 0.2
