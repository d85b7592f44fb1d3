"""LTX-2 LoRA files in the published layout, applied by our code, against Lightricks' own loader fusing them.

The reference is built as ltx-pipelines' ModelLedger builds the transformer (SingleGPUModelBuilder with the
single file's and the LoRA's renaming maps), the LoRA fused by ltx-core's apply_loras. That fuse accepts bf16
or fp8 base weights only, so the base file is written in bf16 and both sides compute in float32 from it.
"""

from __future__ import annotations

import logging

import pytest
import torch
from ltx2_files import TINY_TRANSFORMER, reference_transformer, rel_err, write_single_file
from safetensors.torch import save_file

from aiprod_core.families.ltx2.lora import fuse_loras, ltx2_lora_from_state_dict, read_ltx2_lora
from aiprod_core.families.ltx2.transformer import is_audio_key, load_video_transformer
from aiprod_core.models.lora import LoRAError, apply_loras

pytest.importorskip("ltx_core", reason="the reference is ltx-core 1.0.0")
from ltx_core.components.patchifiers import VideoLatentPatchifier
from ltx_core.loader import LTXV_LORA_COMFY_RENAMING_MAP, SingleGPUModelBuilder, StateDictRegistry
from ltx_core.model.transformer import LTXV_MODEL_COMFY_RENAMING_MAP, LTXModelConfigurator, Modality
from ltx_core.tools import VideoLatentTools
from ltx_core.types import VideoLatentShape

GRID = (2, 2, 3)
FPS = 24.0
LTX2_0 = {"transformer": dict(TINY_TRANSFORMER)}
LTX2_3 = {"transformer": {**TINY_TRANSFORMER, "apply_gated_attention": True, "cross_attention_adaln": True,
                          "caption_proj_before_connector": True}}
CONFIGS = {"ltx2.0": LTX2_0, "ltx2.3": LTX2_3}
# ltx-trainer's targets (its t2v LoRA config, with the feed-forward), matched as PEFT matches them: by suffix, so
# the audio stream's layers are adapted too; plus top-level layers and LTX-2.3's gates
TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2", "to_gate_logits", "patchify_proj",
           "adaln_single.linear", "proj_out", "caption_projection.linear_1")
RANK = 4


def base_file(tmp_path, config):
    """The tiny reference's weights written as a released bf16 single file."""
    ref = reference_transformer(config)
    return write_single_file(tmp_path / "ltx2.safetensors", config, {"transformer": ref.state_dict()}, torch.bfloat16)


def random_lora(config, seed=0) -> dict[str, torch.Tensor]:
    """A rank-4 LoRA in ltx-trainer's saved layout: `diffusion_model.<path>.lora_A/.lora_B.weight`, no alpha."""
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in LTXModelConfigurator.from_config(config).state_dict().items()}
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in sorted(shapes.items()):
        path = key.removesuffix(".weight")
        if len(shape) != 2 or not key.endswith(".weight") or not path.endswith(TARGETS):
            continue
        fan_out, fan_in = shape
        out[f"diffusion_model.{path}.lora_A.weight"] = torch.randn(RANK, fan_in, generator=g) / fan_in**0.5
        out[f"diffusion_model.{path}.lora_B.weight"] = torch.randn(fan_out, RANK, generator=g) * 0.4 / RANK**0.5
    return out


def reference(path, lora_path=None, strength=1.0):
    """Lightricks' transformer from the file, with the LoRA fused as its pipelines fuse one."""
    # a caching registry: with none, the fuse writes into the loaded bf16 weights and leaves the unadapted ones
    # in bf16, where a float32 build needs every weight in float32
    builder = SingleGPUModelBuilder(model_class_configurator=LTXModelConfigurator, model_path=str(path),
                                    model_sd_ops=LTXV_MODEL_COMFY_RENAMING_MAP, registry=StateDictRegistry())
    if lora_path is not None:
        builder = builder.lora(str(lora_path), strength, LTXV_LORA_COMFY_RENAMING_MAP)
    return builder.build(device=torch.device("cpu"), dtype=torch.float32).eval()


def inputs(config, seed=1):
    g = torch.Generator().manual_seed(seed)
    t = config["transformer"]
    width = t["cross_attention_dim"] if t.get("caption_proj_before_connector") else t["caption_channels"]
    return torch.randn(1, 128, *GRID, generator=g), torch.tensor([0.6]), torch.randn(1, 5, width, generator=g)


def reference_velocity(ref, x, sigma, context):
    tools = VideoLatentTools(VideoLatentPatchifier(patch_size=1), VideoLatentShape(1, 128, *GRID), FPS)
    positions = tools.create_initial_state("cpu", torch.float32).positions
    tokens = x.flatten(2).transpose(1, 2)
    video = Modality(latent=tokens, sigma=sigma, timesteps=sigma[:, None].expand(1, tokens.shape[1]),
                     positions=positions, context=context, context_mask=None)
    with torch.no_grad():
        return ref(video, None, None)[0].transpose(1, 2).reshape(x.shape)


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_published_lora_matches_the_reference_fuse(tmp_path, name, strength, caplog):
    config = CONFIGS[name]
    path = base_file(tmp_path, config)
    lora_sd = random_lora(config)
    assert any(is_audio_key(k.removeprefix("diffusion_model.")) for k in lora_sd)  # as PEFT adapts them
    lora_path = tmp_path / "lora.safetensors"
    save_file(lora_sd, str(lora_path))
    x, sigma, context = inputs(config)
    want = reference_velocity(reference(path, lora_path, strength), x, sigma, context)
    base = reference_velocity(reference(path), x, sigma, context)

    ours = load_video_transformer(path, torch.float32)
    with caplog.at_level(logging.INFO, logger="aiprod_core.families.ltx2.lora"):
        lora = read_ltx2_lora(lora_path, ours)
    assert "adapters of the audio stream left out" in caplog.text
    with torch.no_grad():
        assert rel_err(ours(x, sigma, context, fps=FPS), base) <= 1e-4  # the same base model
        with apply_loras(ours, [(lora, strength)]):
            got = ours(x, sigma, context, fps=FPS)
        after = ours(x, sigma, context, fps=FPS)
    err = rel_err(got, want)
    assert err <= 1e-4, f"{name}, strength {strength}: velocity off the reference's fused LoRA by {err:.2e}"
    assert rel_err(base, want) > 1e-2 * strength, "the LoRA must change the velocity for the test to say anything"
    assert torch.equal(after, ours(x, sigma, context, fps=FPS)) and rel_err(after, base) <= 1e-4  # removed

    fuse_loras(ours, [(lora, strength)])
    with torch.no_grad():
        fused = ours(x, sigma, context, fps=FPS)
    assert rel_err(fused, want) <= 1e-4, f"fused: {rel_err(fused, want):.2e}"


def test_other_layouts_of_the_same_lora_give_the_same_adapters(tmp_path):
    ours = load_video_transformer(base_file(tmp_path, LTX2_0))
    published = random_lora(LTX2_0)
    want = ltx2_lora_from_state_dict(published, ours)
    stems = {k.removesuffix(".lora_A.weight").removeprefix("diffusion_model.") for k in published
             if k.endswith(".lora_A.weight")}
    # ComfyUI's kohya names with alpha = rank, diffusers' prefix, and Lightricks' renamed (bare) keys
    kohya, diffusers, bare = {}, {}, {}
    for stem in stems:
        a, b = published[f"diffusion_model.{stem}.lora_A.weight"], published[f"diffusion_model.{stem}.lora_B.weight"]
        flat = "lora_unet_" + stem.replace(".", "_")
        kohya.update({f"{flat}.lora_down.weight": a, f"{flat}.lora_up.weight": b, f"{flat}.alpha": torch.tensor(4.0)})
        diffusers.update({f"transformer.{stem}.lora_A.weight": a, f"transformer.{stem}.lora_B.weight": b})
        bare.update({f"{stem}.lora_A.weight": a, f"{stem}.lora_B.weight": b})
    for sd in (kohya, diffusers, bare):
        got = ltx2_lora_from_state_dict(sd, ours)
        assert got.paths == want.paths and len(got.paths) > 10
        for p in want.paths:
            assert torch.equal(got[p].lora_A.weight, want[p].lora_A.weight)
            assert torch.equal(got[p].lora_B.weight, want[p].lora_B.weight)
            assert got[p].scale == want[p].scale == 1.0
    # with .alpha, ComfyUI's alpha/rank scale: alpha = 2 rank is the same LoRA at strength 2
    doubled = {**published, **{f"diffusion_model.{s}.alpha": torch.tensor(8.0) for s in stems}}
    x, sigma, context = inputs(LTX2_0)
    with torch.no_grad(), apply_loras(ours, [(ltx2_lora_from_state_dict(doubled, ours), 1.0)]):
        a = ours(x, sigma, context, fps=FPS)
    with torch.no_grad(), apply_loras(ours, [(want, 2.0)]):
        b = ours(x, sigma, context, fps=FPS)
    assert rel_err(a, b) <= 1e-6


def test_a_lora_for_another_model_is_refused_by_name(tmp_path):
    ours = load_video_transformer(base_file(tmp_path, LTX2_0))
    # a Wan 2.1 LoRA: ComfyUI's layout, another model's layer names
    wan = {"diffusion_model.blocks.0.self_attn.q.lora_A.weight": torch.zeros(4, 16),
           "diffusion_model.blocks.0.self_attn.q.lora_B.weight": torch.zeros(16, 4)}
    path = tmp_path / "wan.safetensors"
    save_file(wan, str(path))
    with pytest.raises(LoRAError) as e:
        read_ltx2_lora(path, ours)
    msg = str(e.value)
    assert "2 of its 2 keys name no layer" in msg and "blocks.0.self_attn.q" in msg
    assert "diffusion_model.transformer_blocks.0.attn1.to_q.lora_A.weight" in msg and str(path) in msg
    # LTX-2.3's gates on an LTX-2.0 model: most keys fit, one does not, so nothing is applied
    gates = random_lora(LTX2_3)
    with pytest.raises(LoRAError, match="to_gate_logits"):
        ltx2_lora_from_state_dict(gates, ours)
    # a LoRA of the audio stream alone would change nothing
    audio = {k: v for k, v in random_lora(LTX2_0).items() if is_audio_key(k.removeprefix("diffusion_model."))}
    with pytest.raises(LoRAError, match="all in LTX-2's audio stream"):
        ltx2_lora_from_state_dict(audio, ours)
    # the right names at the wrong width
    wrong = {"diffusion_model.transformer_blocks.0.attn1.to_q.lora_A.weight": torch.zeros(4, 7),
             "diffusion_model.transformer_blocks.0.attn1.to_q.lora_B.weight": torch.zeros(16, 4)}
    with pytest.raises(LoRAError, match="does not fit this model"):
        ltx2_lora_from_state_dict(wrong, ours)
