"""Image-to-video and inpainting: a noise mask keeps part of a latent while the sampler generates the rest."""

import numpy as np
import pytest
import torch
from PIL import Image

from aiprod_core.cli import main
from aiprod_core.conditioning import first_frames_condition
from aiprod_core.config import preset
from aiprod_core.eval.image_to_video import image_to_video_adherence
from aiprod_core.model import build_model, load_model
from aiprod_core.pipeline import generate
from aiprod_core.sampling.loop import sample_latent
from aiprod_core.sampling.noise_mask import latent_noise_mask
from aiprod_core.video_io import read_video
from aiprod_core.world import EASY, make_clip, render


@pytest.fixture(scope="module")
def tiny():
    model = build_model(preset("tiny"), seed=1)
    torch.nn.init.normal_(model.backbone.proj_out.weight, std=0.05)  # zero-init output would hide differences
    return model


@pytest.fixture(scope="module")
def shipped():
    return load_model()


def _sample(model, shape, **kw):
    ctx, mask = model.text_encoder.encode(["a red circle"])
    return sample_latent(model.backbone, ctx, mask, None, None, shape, steps=4, cfg=1.0, seed=3, **kw)


def test_kept_positions_end_exactly_on_the_given_latent_and_steer_the_rest(tiny):
    shape = (1, 16, 3, 4, 4)
    init = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    keep = torch.ones(1, 1, 3, 4, 4)
    keep[:, :, 0] = 0
    out = _sample(tiny, shape, init_latent=init, noise_mask=keep)
    assert torch.allclose(out[:, :, 0], init[:, :, 0], atol=1e-5)
    other = _sample(tiny, shape, init_latent=-init, noise_mask=keep)
    assert (other[:, :, 1:] - out[:, :, 1:]).abs().mean() > 1e-3  # the generated frames read the kept one
    # a mask of ones keeps nothing: the same latent as no mask at all
    assert torch.equal(_sample(tiny, shape, init_latent=init, noise_mask=torch.ones(1, 1, 3, 4, 4)), _sample(tiny, shape))


def test_noise_mask_shapes_and_bad_masks():
    shape = (2, 16, 3, 4, 4)
    picture = torch.zeros(1, 32, 32)  # core's Set Latent Noise Mask: a picture-sized mask
    picture[:, :, 16:] = 1  # inpaint the right half
    m = latent_noise_mask(picture, shape)
    assert m.shape == (1, 1, 3, 4, 4) and m[..., :2].max() == 0 and m[..., 2:].min() == 1
    assert latent_noise_mask(picture[:, None], shape).equal(m)  # [B,1,H,W] as that node stores it
    with pytest.raises(ValueError, match=r"expected \[B,1,3,4,4\]"):
        latent_noise_mask(torch.ones(1, 1, 2, 4, 4), shape)
    with pytest.raises(ValueError, match=r"0\.\.1"):
        latent_noise_mask(torch.full((1, 1, 3, 4, 4), 2.0), shape)
    with pytest.raises(ValueError, match="init_latent"):
        sample_latent(None, None, None, None, None, shape, noise_mask=torch.ones(1, 1, 3, 4, 4))


def test_first_frames_are_fitted_and_encoded_alone(tiny):
    vae, shape = tiny.vae, (1, 16, 5, 8, 8)
    wide = torch.rand(48, 96, 3)  # resized and centre-cropped to 64x64
    init, keep = first_frames_condition(vae, wide, shape)
    assert keep[:, :, 0].max() == 0 and keep[:, :, 1:].min() == 1 and init[:, :, 1:].abs().max() == 0
    centre = torch.nn.functional.interpolate(wide[:, 24:72].permute(2, 0, 1)[None], size=(64, 64), mode="bilinear",
                                             antialias=True)[0].permute(1, 2, 0)
    with torch.no_grad():
        alone = vae.encode(centre.permute(2, 0, 1)[None, :, None] * 2 - 1)
    assert torch.allclose(init[:, :, :1], alone, atol=1e-4)
    # 1 + 4k frames fill k + 1 latent frames (up to the clip's); extra frames are left out
    _, keep5 = first_frames_condition(vae, torch.rand(7, 64, 64, 3), shape)
    assert int((keep5 == 0).sum()) == 2 * 8 * 8
    with pytest.raises(ValueError, match=r"expected frames \[T,H,W,3\]"):
        first_frames_condition(vae, torch.rand(64, 64), shape)
    # strength: how much of the picture is kept; 0 is text-to-video exactly
    _, half = first_frames_condition(vae, wide, shape, strength=0.75)
    assert torch.allclose(half[:, :, 0], torch.full_like(half[:, :, 0], 0.25))
    init0, keep0 = first_frames_condition(vae, wide, shape, strength=0.0)
    assert torch.equal(_sample(tiny, shape, init_latent=init0, noise_mask=keep0), _sample(tiny, shape))
    with pytest.raises(ValueError, match="strength 2"):
        first_frames_condition(vae, wide, shape, strength=2)


def test_generate_starts_from_the_picture(shipped):
    clip = make_clip(7, EASY)
    picture = torch.from_numpy(clip.frames[0]).float()  # the world renders 0..1
    free = generate(shipped, clip.caption, steps=10, progress=False)
    started = generate(shipped, clip.caption, steps=10, progress=False, image=picture)
    assert (started[0] - picture).abs().mean() < 0.02 < (free[0] - picture).abs().mean()
    assert started[1:].max() > 0.3  # the rest of the clip is drawn, not left black
    # the low-VRAM path (blocks streamed; on the CPU the copies are no-ops) gives the same clip
    assert torch.equal(generate(shipped, clip.caption, steps=10, progress=False, image=picture, offload="stream"), started)
    # upscaled and refined, the clip starts from the picture at twice the size (the world's own 128 px render)
    big = generate(shipped, clip.caption, steps=6, refine_steps=2, upscale=True, progress=False, image=picture)
    # (the VAE's own error at 128 px is about 0.003; refined without keeping it, 0.006)
    assert (big[0] - torch.from_numpy(render(clip.scene, 17, 128, 128)[0])).abs().mean() < 0.0045


def test_cli_image_to_video(tmp_path, capsys):
    clip = make_clip(8, EASY)
    pic = tmp_path / "first.png"
    first = (clip.frames[0] * 255).round().astype(np.uint8)
    Image.fromarray(first).save(pic)
    out = tmp_path / "clip.mp4"
    assert main(["generate", clip.caption, "--image", str(pic), "--steps", "8", "-o", str(out), "-q"]) == 0
    frames, _ = read_video(out)
    assert np.abs(frames[0].astype(float) - first).mean() < 8  # of 255, through the video codec
    assert main(["generate", "x", "--image", str(tmp_path / "missing.png"), "-o", str(tmp_path / "no.mp4")]) == 2
    assert "missing.png" in capsys.readouterr().err and not (tmp_path / "no.mp4").exists()
    (tmp_path / "bad.png").write_bytes(b"not a picture")
    assert main(["generate", "x", "--image", str(tmp_path / "bad.png"), "-o", str(tmp_path / "no.mp4")]) == 2
    assert "could not be read as an image" in capsys.readouterr().err
    assert main(["generate", "x", "--image", str(pic), "--image-strength", "2", "-o", str(tmp_path / "no.mp4")]) == 2
    assert "expected 0..1" in capsys.readouterr().err and not (tmp_path / "no.mp4").exists()


def test_image_to_video_node_through_the_sampler(pack, node):
    model, vae, te, _ = node("AIPRODCheckpointLoader").load("tiny.safetensors")
    (pos,), (neg,) = node("AIPRODTextEncode").encode(te, "a red circle")["result"], node("AIPRODTextEncode").encode(te, "")["result"]
    image = torch.rand(1, 40, 40, 3)
    (latent,) = node("AIPRODImageToVideo").make(vae, image, 64, 64, 9, 2)
    assert latent["samples"].shape == (2, 16, 3, 8, 8) and latent["noise_mask"].shape == (1, 1, 3, 8, 8)
    (out,) = node("AIPRODSampler").sample(model, pos, neg, latent, 1, 3, 3.0, "euler", 0.0, 1.0)
    assert torch.allclose(out["samples"][:, :, 0], latent["samples"][:, :, 0], atol=1e-5)
    assert not torch.allclose(out["samples"][0, :, 1:], out["samples"][1, :, 1:])  # two clips from one picture
    with pytest.raises(ValueError, match="multiple of"):
        node("AIPRODImageToVideo").make(vae, image, 60, 64, 9, 1)


def test_image_to_video_eval_runs_both_ways(tiny):
    r = image_to_video_adherence(tiny, clips=2, per_preset=1, steps=2, progress=False)
    world, cam = r["world_clips"], r["camera_presets"]
    assert set(world) == {"text", "text_and_image", "extension", "extension_world_render"}
    assert set(cam) == {"text", "text_and_image", "world_render"}
    # the picture is kept whatever the weights (a random-init model draws nothing like it from text)
    assert world["text_and_image"]["first_frame_error"] < world["text"]["first_frame_error"]
    assert world["extension"]["kept_frames_error"] < world["text"]["first_frame_error"]  # so are a clip's last frames
    assert cam["world_render"]["two_objects"] > 0.5


def test_evaluations_that_bring_their_own_flows_refuse_settings_that_carry_one(tiny):
    from aiprod_core.eval.motion import motion_adherence
    from aiprod_core.sampling.motion import MotionGuidance

    carrying = MotionGuidance(flow=torch.zeros(16, 64, 64, 2), flow_strength=0.5)
    with pytest.raises(ValueError, match="guides each camera clip with its preset's; pass the settings alone"):
        image_to_video_adherence(tiny, clips=1, per_preset=0, steps=1, progress=False, motion=carrying)
    with pytest.raises(ValueError, match="guides each clip with its own; pass the settings alone"):
        motion_adherence(tiny, clips=1, per_preset=0, steps=1, progress=False, motion=carrying)


def test_core_set_latent_noise_mask_inpaints_an_encoded_clip(pack, node):
    model, vae, te, _ = node("AIPRODCheckpointLoader").load("tiny.safetensors")
    (pos,), (neg,) = node("AIPRODTextEncode").encode(te, "a red circle")["result"], node("AIPRODTextEncode").encode(te, "")["result"]
    (encoded,) = node("AIPRODVAEEncode").encode(vae, torch.rand(9, 64, 64, 3))
    mask = torch.zeros(64, 64)
    mask[:, 32:] = 1  # redraw the right half
    latent = {**encoded, "noise_mask": mask.reshape(-1, 1, 64, 64)}  # as core's Set Latent Noise Mask stores it
    (out,) = node("AIPRODSampler").sample(model, pos, neg, latent, 1, 3, 3.0, "euler", 0.0, 1.0)
    kept, redrawn = (out["samples"] - encoded["samples"]).abs().split(4, dim=-1)
    assert kept.max() < 1e-5 and redrawn.mean() > 0.1
