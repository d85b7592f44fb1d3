"""The flow nodes and the sampler's flow inputs, run as ComfyUI runs them, without ComfyUI."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from aiprod_core.checkpoint import save_checkpoint
from aiprod_core.config import preset
from aiprod_core.model import build_model

ROOT = Path(__file__).resolve().parent.parent
FLOW_NODES = ("AIPRODFlowExtractor", "AIPRODCameraMotion", "AIPRODFlowVisualize")


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    mp = pytest.MonkeyPatch()
    mp.setenv("AIPROD_MODELS_DIR", str(models))
    model = build_model(preset("tiny"), seed=4)
    torch.nn.init.normal_(model.backbone.proj_out.weight, std=0.02)
    parts = {"backbone": model.backbone, "vae": model.vae, "text_encoder": model.text_encoder}
    save_checkpoint(models / "diffusion_models" / "tiny.safetensors", model.config, parts)
    spec = importlib.util.spec_from_file_location("aiprod_pack_flow", ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
    pkg = importlib.util.module_from_spec(spec)
    sys.modules["aiprod_pack_flow"] = pkg
    spec.loader.exec_module(pkg)
    yield pkg
    mp.undo()


def node(pkg, node_id):
    return pkg.NODE_CLASS_MAPPINGS[node_id]()


def moving_square(frames=9, size=64, step=2) -> torch.Tensor:
    """IMAGE [T,H,W,3]: a textured square moving `step` px right per frame on a dark textured background."""
    rng = np.random.default_rng(0)
    bg = rng.random((size, size, 3)).astype(np.float32) * 0.2
    patch = rng.random((16, 16, 3)).astype(np.float32) * 0.5 + 0.5
    out = np.repeat(bg[None], frames, 0)
    for t in range(frames):
        x = 10 + step * t
        out[t, 24:40, x : x + 16] = patch
    return torch.from_numpy(out)


def test_flow_nodes_are_registered_with_tooltips(pack):
    for nid in FLOW_NODES:
        cls = pack.NODE_CLASS_MAPPINGS[nid]
        assert pack.NODE_DISPLAY_NAME_MAPPINGS[nid].startswith("AIPROD ")
        assert cls.CATEGORY == "AIPROD/flow" and callable(getattr(cls, cls.FUNCTION))
        assert all(spec[1].get("tooltip") for spec in cls.INPUT_TYPES()["required"].values())
    optional = pack.NODE_CLASS_MAPPINGS["AIPRODSampler"].INPUT_TYPES()["optional"]
    assert set(optional) == {"flow", "flow_strength", "flow_start", "flow_end", "warp_guidance", "warp_end"}
    assert optional["flow"][0] == "AIPROD_FLOW" and all(s[1].get("tooltip") for s in optional.values())


def test_extract_visualize_and_guided_sampling(pack):
    image = moving_square()
    flow, preview, mask = node(pack, "AIPRODFlowExtractor").extract(image, "dis-medium", True)
    assert flow.shape == (8, 64, 64, 2) and preview.shape == (8, 64, 64, 3) and mask.shape == (8, 64, 64)
    inside = flow[:, 28:36, 20:30]  # the square's middle in the early frames
    assert abs(float(inside[..., 0].median()) - 2) < 0.5 and abs(float(inside[..., 1].median())) < 0.5
    assert float(preview[:, 28:36, 20:30].mean()) > float(preview[:, 2:8, 50:60].mean())  # moving = brighter
    (again,) = node(pack, "AIPRODFlowVisualize").show(flow, 0.0)
    assert torch.allclose(again, preview)
    (cam,) = node(pack, "AIPRODCameraMotion").make("pan-left", 1.0, 9, 64, 64)
    assert cam.shape == (8, 64, 64, 2) and (cam[..., 0] > 0).all()

    model, vae, te, _ = node(pack, "AIPRODCheckpointLoader").load("tiny.safetensors")
    (pos,), (neg,) = node(pack, "AIPRODTextEncode").encode(te, "a red square")["result"], node(pack, "AIPRODTextEncode").encode(te, "")["result"]
    (latent,) = node(pack, "AIPRODEmptyLatentVideo").make(vae, 64, 64, 9, 1)
    sampler = node(pack, "AIPRODSampler")
    args = (model, pos, neg, latent, 3, 2, 1.0, "euler", 0.0, 1.0)
    (plain,) = sampler.sample(*args)
    (zero,) = sampler.sample(*args, flow=cam, flow_strength=0.0, warp_guidance=0.0)
    (guided,) = sampler.sample(*args, flow=cam, flow_strength=1.0, flow_start=0.0, flow_end=1.0)
    (noise_only,) = sampler.sample(*args, flow=cam, flow_strength=1.0, flow_start=0.0, flow_end=1.0, warp_guidance=0.0)
    (extracted,) = sampler.sample(*args, flow=flow)
    assert torch.equal(plain["samples"], zero["samples"])
    assert not torch.allclose(noise_only["samples"], guided["samples"])
    assert not torch.allclose(plain["samples"], guided["samples"]) and guided["samples"].shape == plain["samples"].shape
    assert not torch.allclose(extracted["samples"], guided["samples"])


def test_flow_nodes_refuse_bad_input(pack):
    with pytest.raises(ValueError, match="at least 2 frames"):
        node(pack, "AIPRODFlowExtractor").extract(moving_square(frames=1), "dis-fast", False)
    with pytest.raises(ValueError, match="at least 2 frames"):
        node(pack, "AIPRODCameraMotion").make("zoom-in", 1.0, 1, 64, 64)
    bad = torch.zeros(4, 8, 8, 2)
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        node(pack, "AIPRODFlowVisualize").show(bad, 0.0)
    model, vae, te, _ = node(pack, "AIPRODCheckpointLoader").load("tiny.safetensors")
    (pos,) = node(pack, "AIPRODTextEncode").encode(te, "x")["result"]
    (latent,) = node(pack, "AIPRODEmptyLatentVideo").make(vae, 64, 64, 9, 1)
    with pytest.raises(ValueError, match="NaN"):
        node(pack, "AIPRODSampler").sample(model, pos, pos, latent, 0, 1, 1.0, "euler", 0.0, 1.0, flow=bad)
