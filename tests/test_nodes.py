"""The node classes, run as ComfyUI runs them, without ComfyUI: real files in real model folders."""

import pytest
import torch

from aiprod_core.video_io import read_video


def test_every_node_is_registered_with_tooltips(pack):
    pkg, _ = pack
    assert all(k.startswith("AIPROD") for k in pkg.NODE_CLASS_MAPPINGS)
    assert set(pkg.NODE_DISPLAY_NAME_MAPPINGS) == set(pkg.NODE_CLASS_MAPPINGS)
    for cls in pkg.NODE_CLASS_MAPPINGS.values():
        inputs = cls.INPUT_TYPES()["required"]
        assert all(len(spec) == 2 and spec[1].get("tooltip") for spec in inputs.values()), cls
        assert callable(getattr(cls, cls.FUNCTION)) and cls.CATEGORY.startswith("AIPROD")
    assert pkg.WEB_DIRECTORY == "./web"


def test_text_to_video_with_lora_and_upscale(pack, node):
    pkg, _ = pack
    assert "tiny.safetensors" in pkg.NODE_CLASS_MAPPINGS["AIPRODCheckpointLoader"].INPUT_TYPES()["required"]["ckpt_name"][0]
    model, vae, te, up = node("AIPRODCheckpointLoader").load("tiny.safetensors")
    lora_model, no_te = node("AIPRODLoraLoader").load(model, "l.safetensors", 0.8)
    assert no_te is None and node("AIPRODLoraLoader").load(model, "l.safetensors", 0.8, te)[1] is te  # no text part
    enc = node("AIPRODTextEncode").encode(te, "一个红色的圆")
    assert enc["ui"]["text"] == ["Han"]
    empty = node("AIPRODTextEncode").encode(te, "")
    assert empty["ui"]["text"] == []  # an empty prompt has no script to name: the node shows no note ("Unknown")
    (pos,), (neg,) = enc["result"], empty["result"]
    (latent,) = node("AIPRODEmptyLatentVideo").make(vae, 64, 64, 9, 1)
    assert latent["samples"].shape == (1, 16, 3, 8, 8)
    sampler = node("AIPRODSampler")
    (a,) = sampler.sample(model, pos, neg, latent, 1, 3, 3.0, "euler", 0.0, 1.0)
    (b,) = sampler.sample(lora_model, pos, neg, latent, 1, 3, 3.0, "euler", 0.0, 1.0)
    (a2,) = sampler.sample(model, pos, neg, latent, 1, 3, 3.0, "euler", 0.0, 1.0)
    assert torch.equal(a["samples"], a2["samples"]) and not torch.allclose(a["samples"], b["samples"])
    (big,) = node("AIPRODLatentUpscale").upscale(up, vae, a)
    (refined,) = sampler.sample(model, pos, neg, big, 2, 2, 3.0, "heun", 0.0, 0.4)
    decoded = node("AIPRODVAEDecode").decode(vae, refined, 0, 0)
    (image,) = decoded["result"]
    assert image.shape == (9, 128, 128, 3) and image.min() >= 0 and image.max() <= 1
    # the inline player's clip: a real WebM at the model's frame rate, the same frames
    (clip,) = decoded["ui"]["aiprod_video"]
    frames, fps = read_video(pkg.nodes.host.temp_dir() / clip["filename"])
    assert frames.shape == (9, 128, 128, 3) and fps == model.config.fps
    # random weights decode to noise, which a lossy codec smooths: compare each frame's mean colour
    assert abs(frames.mean((1, 2)) / 255 - image.numpy().mean((1, 2))).max() < 0.03
    (again,) = node("AIPRODVAEEncode").encode(vae, image)
    assert again["samples"].shape == refined["samples"].shape


def test_component_loaders_read_the_all_in_one_file(pack, node):
    _, models = pack
    for folder in ("vae", "text_encoders", "latent_upscale_models"):
        (models / folder).mkdir(exist_ok=True)
        (models / folder / "tiny.safetensors").write_bytes((models / "diffusion_models" / "tiny.safetensors").read_bytes())
    (vae,) = node("AIPRODVAELoader").load("tiny.safetensors")
    (te,) = node("AIPRODTextEncoderLoader").load("tiny.safetensors")
    (up,) = node("AIPRODUpscalerLoader").load("tiny.safetensors")
    (model,) = node("AIPRODBackboneLoader").load("tiny.safetensors")
    assert vae.cfg.latent_channels == 16 and te.dim == 128 and up.cfg.mid_channels == 64
    assert model.config.backbone.pattern == "ACACAC"


def test_bad_inputs_say_what_to_change(node):
    model, vae, _, _ = node("AIPRODCheckpointLoader").load("tiny.safetensors")
    with pytest.raises(ValueError, match=r"no absolute path, no '\.\.'"):
        node("AIPRODCheckpointLoader").load("../loras/l.safetensors")
    with pytest.raises(FileNotFoundError, match="not found in"):
        node("AIPRODCheckpointLoader").load("nope.safetensors")
    with pytest.raises(ValueError, match=r"frames=16 is not 1 \+ 4k for this VAE; use 17 or 13"):
        node("AIPRODEmptyLatentVideo").make(vae, 64, 64, 16, 1)
    (latent,) = node("AIPRODEmptyLatentVideo").make(vae, 64, 64, 5, 1)
    wide = [[torch.zeros(1, 7, 4096), {"attention_mask": torch.ones(1, 7)}]]
    with pytest.raises(ValueError, match="4096 wide but this model's text encoder width is 128"):
        node("AIPRODSampler").sample(model, wide, wide, latent, 0, 1, 1.0, "euler", 0.0, 1.0)
    with pytest.raises(ValueError, match="expected a video latent"):
        node("AIPRODSampler").sample(model, wide, wide, {"samples": torch.zeros(1, 4, 8, 8)}, 0, 1, 1.0, "euler", 0.0, 1.0)
