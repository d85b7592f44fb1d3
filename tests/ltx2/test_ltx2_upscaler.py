"""LTX-2's spatial latent upsampler: ours, loaded from a file in the released layout, against Lightricks' ltx-core.

Each file is written from a seeded random reference model exactly as the release is laid out (unprefixed keys, the
config as JSON under the metadata key `config`) and read back by both implementations.
"""

import json
import pickle
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file

from aiprod_core.checkpoint import CheckpointError
from aiprod_core.families.ltx2.upscaler import (
    LTX2LatentUpsampler,
    LTX2UpsamplerConfig,
    load_ltx2_upsampler,
    upsample_normalized,
)

ltx_upsampler = pytest.importorskip("ltx_core.model.upsampler", reason="the reference is ltx-core 1.0.0")
from ltx2_files import rel_err, write_upscaler  # noqa: E402
from ltx_core.loader.single_gpu_model_builder import SingleGPUModelBuilder  # noqa: E402
from ltx_core.model.video_vae.ops import PerChannelStatistics  # noqa: E402

# Tiny forms of the released config (in 128, mid 1024, 4 blocks): the plain PixelShuffle x2, the rational
# resampler at x2 (the form of ltx-2-spatial-upscaler-x2-1.0) and at x1.5 (where the blur and stride act).
TINY = {"_class_name": "LatentUpsampler", "in_channels": 16, "mid_channels": 32, "num_blocks_per_stage": 1,
        "dims": 3, "spatial_upsample": True, "temporal_upsample": False}
FORMS = {
    "plain_x2": {**TINY, "spatial_scale": 2.0, "rational_resampler": False},
    "rational_x2": {**TINY, "spatial_scale": 2.0, "rational_resampler": True},
    "rational_x1.5": {**TINY, "spatial_scale": 1.5, "rational_resampler": True},
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_matches_the_reference_read_from_the_same_file(tmp_path, form):
    config = FORMS[form]
    path = tmp_path / "upscaler.safetensors"
    write_upscaler(path, config)
    # the reference reads the file through its own loader, so the layout is one it accepts
    ref = SingleGPUModelBuilder(model_path=str(path), model_class_configurator=ltx_upsampler.LatentUpsamplerConfigurator)
    ref = ref.build(device=torch.device("cpu")).eval()
    ours = load_ltx2_upsampler(path)
    assert isinstance(ours, LTX2LatentUpsampler)
    assert sorted(ours.state_dict()) == sorted(ref.state_dict())

    z = torch.randn(2, 16, 3, 6, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want, got = ref(z), ours(z)
    scale = {"plain_x2": 2, "rational_x2": 2, "rational_x1.5": 1.5}[form]
    assert got.shape == (2, 16, 3, int(6 * scale), int(4 * scale)) == want.shape
    assert rel_err(got, want) <= 1e-4


def test_normalised_latents_go_through_the_vae_statistics_as_the_reference_does(tmp_path):
    path = tmp_path / "upscaler.safetensors"
    ref = write_upscaler(path, FORMS["rational_x2"], seed=3)
    ours = load_ltx2_upsampler(path)
    g = torch.Generator().manual_seed(2)
    stats = PerChannelStatistics(latent_channels=16)
    mean, std = torch.randn(16, generator=g), torch.rand(16, generator=g) + 0.5
    stats.get_buffer("mean-of-means").copy_(mean)
    stats.get_buffer("std-of-means").copy_(std)
    z = torch.randn(1, 16, 2, 4, 4, generator=g)
    with torch.no_grad():
        want = ltx_upsampler.upsample_video(z, SimpleNamespace(per_channel_statistics=stats), ref)
        got = upsample_normalized(ours, z, mean, std)
        plain = ours(z)
    assert rel_err(got, want) <= 1e-4
    assert rel_err(plain, want) > 1e-2  # the statistics matter: without them the answer differs


def test_keeps_the_file_dtype_or_casts_on_request(tmp_path):
    path = tmp_path / "bf16.safetensors"
    ref = write_upscaler(path, FORMS["rational_x2"])
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in ref.state_dict().items()}, str(path),
              metadata={"config": json.dumps(FORMS["rational_x2"])})
    assert load_ltx2_upsampler(path).final_conv.weight.dtype == torch.bfloat16
    ours = load_ltx2_upsampler(path, dtype=torch.float32)
    assert ours.final_conv.weight.dtype == torch.float32
    z = torch.randn(1, 16, 2, 4, 4)
    with torch.no_grad():
        assert ours(z.to(torch.bfloat16)).shape == (1, 16, 2, 8, 8)


def test_files_that_are_not_the_released_upsampler_are_refused_with_the_reason(tmp_path):
    ref = write_upscaler(tmp_path / "ok.safetensors", FORMS["rational_x2"])
    state = {k: v.contiguous() for k, v in ref.state_dict().items()}

    no_config = tmp_path / "no_config.safetensors"
    save_file(state, str(no_config), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="no 'config' metadata"):
        load_ltx2_upsampler(no_config)

    prefixed = tmp_path / "prefixed.safetensors"
    save_file({f"upscaler.{k}": v for k, v in state.items()}, str(prefixed),
              metadata={"config": json.dumps(FORMS["rational_x2"])})
    with pytest.raises(CheckpointError, match=r"missing \d+ keys.*\n.*unexpected"):
        load_ltx2_upsampler(prefixed)

    wrong_width = tmp_path / "wrong_width.safetensors"
    save_file(state, str(wrong_width), metadata={"config": json.dumps({**FORMS["rational_x2"], "mid_channels": 64})})
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_ltx2_upsampler(wrong_width)

    temporal = tmp_path / "temporal.safetensors"
    save_file(state, str(temporal), metadata={"config": json.dumps(
        {**FORMS["rational_x2"], "spatial_upsample": False, "temporal_upsample": True})})
    with pytest.raises(CheckpointError, match="only the 3D spatial upsampler"):
        load_ltx2_upsampler(temporal)

    pickled = tmp_path / "upscaler.safetensors.pt"
    pickled.write_bytes(pickle.dumps({"initial_conv.weight": [0.0]}, protocol=4))
    with pytest.raises(CheckpointError, match="pickle"):
        load_ltx2_upsampler(pickled)


def test_wrong_latent_shapes_are_named():
    ours = LTX2LatentUpsampler(LTX2UpsamplerConfig(in_channels=16, mid_channels=32, num_blocks_per_stage=1))
    with pytest.raises(ValueError, match=r"expected a raw latent \[B,16,t,h,w\]"):
        ours(torch.randn(1, 8, 2, 4, 4))
    with pytest.raises(ValueError, match="one value per latent channel"):
        upsample_normalized(ours, torch.randn(1, 16, 1, 2, 2), torch.zeros(8), torch.ones(8))
