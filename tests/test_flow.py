"""Optical flow: extraction on frames and files with known motion, camera presets, the colour wheel, noise
warping (statistics of every frame), guided sampling, bad input, and the CLI."""

import dataclasses
import importlib.util
import json
import logging
import math

import cv2
import numpy as np
import pytest
import torch

from aiprod_core.cli import main
from aiprod_core.conditioning import MotionGuidance
from aiprod_core.config import preset
from aiprod_core.flow.camera import PRESETS, camera_field, camera_flow, dominant_preset, parse_camera
from aiprod_core.flow.extract import extract_flow, extract_flow_from_file
from aiprod_core.flow.ops import check_flow, fit_flow, resize_flow
from aiprod_core.flow.visualize import flow_to_image
from aiprod_core.flow.warp import latent_flow, transport, warp_frame, warp_noise
from aiprod_core.model import build_model, load_model
from aiprod_core.sampling import noise_like, sample_euler
from aiprod_core.sampling.loop import sample_latent
from aiprod_core.sampling.noise_guidance import sample_noise_guided, step_range
from aiprod_core.sampling.warp_guidance import warp_guided_velocity, warp_x0
from aiprod_core.text import EmbeddingCache, encode_cached
from aiprod_core.video_io import read_video, write_video

SHIFT = (3, -2)  # content moves 3 px right and 2 px up per frame


def textured_clip(frames=5, h=96, w=128, shift=SHIFT, seed=0) -> np.ndarray:
    """uint8 [T,H,W,3]: a smooth random texture translated by `shift` pixels per frame (exact flow known)."""
    rng = np.random.default_rng(seed)
    pad = 40
    tex = cv2.GaussianBlur((rng.random((h + 2 * pad, w + 2 * pad, 3)) * 255).astype(np.uint8), (0, 0), 2.0)
    tex = cv2.normalize(tex, None, 0, 255, cv2.NORM_MINMAX)
    out = []
    for t in range(frames):
        x0, y0 = pad - shift[0] * t, pad - shift[1] * t
        out.append(tex[y0 : y0 + h, x0 : x0 + w])
    return np.stack(out)


def interior(flow: torch.Tensor, m: int = 12) -> torch.Tensor:
    return flow[:, m:-m, m:-m]


@pytest.mark.parametrize("method", ["dis-ultrafast", "dis-fast", "dis-medium", "farneback"])
def test_extract_recovers_a_known_translation(method):
    clip = textured_clip()
    res = extract_flow(clip, method)
    assert res.flow.dtype == torch.float32 and res.flow.shape == (4, 96, 128, 2) and res.valid is None
    med = interior(res.flow).reshape(-1, 2).median(0).values
    assert torch.allclose(med, torch.tensor(SHIFT, dtype=torch.float32), atol=0.25), med
    # float frames in 0..1 give the same flow as uint8
    same = extract_flow(clip.astype(np.float32) / 255, method).flow
    assert torch.allclose(same, res.flow, atol=1e-4)


def test_consistency_mask_marks_the_frame_edge_where_content_enters():
    res = extract_flow(textured_clip(), "dis-medium", consistency=True)
    assert res.valid.shape == (4, 96, 128) and res.valid.dtype == torch.bool
    assert interior(res.valid[..., None]).float().mean() > 0.9
    # pixels that move out of the frame (the right edge, content moves right 3 px) cannot be checked
    assert res.valid[:, 20:-20, -2:].float().mean() < 0.2


def test_extract_from_a_video_file(tmp_path):
    path = write_video(tmp_path / "ref.mp4", textured_clip(frames=6), fps=8, crf=10)
    res, frames, fps = extract_flow_from_file(path, "dis-fast")
    assert frames.shape == (6, 96, 128, 3) and fps == 8 and res.flow.shape == (5, 96, 128, 2)
    med = interior(res.flow).reshape(-1, 2).median(0).values
    assert torch.allclose(med, torch.tensor(SHIFT, dtype=torch.float32), atol=0.35)


def test_extract_refuses_bad_input():
    with pytest.raises(ValueError, match="at least 2 frames"):
        extract_flow(textured_clip(frames=1), "dis-fast")
    with pytest.raises(ValueError, match="choose one of"):
        extract_flow(textured_clip(), "lucas-kanade")
    with pytest.raises(ValueError, match=r"\[T,H,W,3\]"):
        extract_flow(np.zeros((3, 8, 8), np.uint8))


def test_raft_is_never_downloaded(tmp_path):
    if importlib.util.find_spec("torchvision") is None:
        with pytest.raises(ValueError, match="needs torchvision"):
            extract_flow(textured_clip(), "raft")
    else:
        with pytest.raises(ValueError, match=r"local \.safetensors"):
            extract_flow(textured_clip(), "raft", raft_weights=tmp_path / "missing.safetensors")


def test_camera_presets_move_the_picture_against_the_camera():
    f = {p: camera_field(p, 33, 33, 1.0) for p in PRESETS}
    c = 16  # centre pixel
    assert (f["pan-left"][..., 0] > 0).all() and (f["pan-right"][..., 0] < 0).all()
    assert (f["tilt-up"][..., 1] > 0).all() and (f["tilt-down"][..., 1] < 0).all()
    assert f["zoom-in"][c, -1, 0] > 0 and f["zoom-in"][0, c, 1] < 0 and f["zoom-in"][c, c].abs().max() < 1e-6
    assert f["zoom-out"][c, -1, 0] < 0
    # camera rolls clockwise: a point right of the centre goes up on screen (anticlockwise, y down)
    assert f["rotate-cw"][c, -1, 1] < 0 and f["rotate-ccw"][c, -1, 1] > 0
    assert math.isclose(float(f["pan-left"][0, 0, 0]), 0.025 * 33, rel_tol=1e-6)
    assert camera_flow("pan-left", 17, 8, 12, 2.0).shape == (16, 8, 12, 2)
    assert camera_flow("zoom-in", 1, 8, 8).shape == (0, 8, 8, 2)
    for p in PRESETS:
        assert dominant_preset(camera_flow(p, 5, 24, 32))[0] == p
    assert parse_camera("pan-left") == ("pan-left", 1.0) and parse_camera("zoom-out:2.5") == ("zoom-out", 2.5)
    with pytest.raises(ValueError, match="unknown"):
        parse_camera("dolly-in")
    with pytest.raises(ValueError, match="not a number"):
        parse_camera("pan-left:fast")


def test_dominant_preset_of_measured_flow():
    # a texture whose content moves left is what a camera panning right films
    flow = extract_flow(textured_clip(shift=(-3, 0)), "dis-fast").flow
    assert dominant_preset(flow)[0] == "pan-right"


def test_colour_wheel():
    flow = torch.zeros(2, 4, 4, 2)
    flow[0, :, :2] = torch.tensor([2.0, 0.0])  # right: hue 0 = red, full value
    flow[1, :, :2] = torch.tensor([0.0, 1.0])  # down: hue 90, half value
    img = flow_to_image(flow)
    assert img.shape == (2, 4, 4, 3) and img.dtype == torch.float32
    assert torch.allclose(img[0, 0, 0], torch.tensor([1.0, 0.0, 0.0]), atol=1e-5)
    assert torch.allclose(img[0, 0, 3], torch.zeros(3))  # still = black
    assert torch.allclose(img[1, 0, 0], torch.tensor([0.25, 0.5, 0.0]), atol=1e-3)  # hue 90 at value 0.5
    assert flow_to_image(flow, max_magnitude=4.0)[0, 0, 0, 0] == pytest.approx(0.5, abs=1e-4)


def normal_ks(x: torch.Tensor) -> float:
    """Kolmogorov-Smirnov distance of the values of x from N(0,1)."""
    v = x.flatten().double().sort().values
    cdf = 0.5 * (1 + torch.erf(v / math.sqrt(2)))
    n = len(v)
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return float(torch.maximum(i / n - cdf, cdf - (i - 1) / n).max())


def warped(flow, shape, seed=0, **kw):
    """warp_noise over the fresh noise the sampler draws for `seed`."""
    return warp_noise(flow, noise_like(shape, seed), seed, **kw)


@pytest.mark.parametrize("name", ["pan-left", "zoom-in", "zoom-out", "rotate-cw"])
def test_warped_noise_stays_standard_gaussian_in_every_frame(name):
    flow = camera_flow(name, 17, 64, 64, 2.0)
    n = warped(flow, (4, 16, 5, 8, 8), seed=3)
    for k in range(5):
        f = n[:, :, k]  # 4096 values per frame
        assert abs(float(f.mean())) < 0.06 and abs(float(f.std()) - 1) < 0.05, (k, f.mean(), f.std())
        assert normal_ks(f) < 0.03  # the 1% critical value at n = 4096 is 0.025
        # neighbours independent: duplicated noise (plain nearest warping under zoom-in) correlates ~0.5
        for a, b in ((f[..., 1:, :], f[..., :-1, :]), (f[..., 1:], f[..., :-1])):
            assert abs(float((a * b).mean())) < 0.06


def test_transport_splits_shared_sources_into_independent_values():
    # a 2x zoom: most sources are pulled by 4 targets; the bridge split keeps the targets uncorrelated
    g = torch.Generator().manual_seed(0)
    q = torch.randn(8, 4, 32, 32, generator=g)
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    zoom = torch.stack([xs - 15.5, ys - 15.5], -1) * 1.0  # x -> 2x about the centre
    out = transport(q, zoom, g)
    c = out[..., 8:24, 8:24]
    assert abs(float(c.std()) - 1) < 0.04 and abs(float((c[..., 1:] * c[..., :-1]).mean())) < 0.05
    # and the noise did move with the picture: each 2x2 block sums back to (about) its source
    src = q[..., 12:20, 12:20]
    block = torch.nn.functional.avg_pool2d(out[..., 8:24, 8:24], 2) * 2
    r = torch.corrcoef(torch.stack([src.flatten(), block.flatten()]))[0, 1]
    assert r > 0.95


def test_warped_noise_moves_with_the_flow_and_strength_blends_fresh_noise():
    # content moves 2 px/frame to the right = exactly 1 latent pixel per latent frame (8 px, 4 frames)
    flow = camera_flow("pan-left", 17, 64, 64, 2 / (0.025 * 64))
    shape = (2, 8, 5, 8, 8)
    n = warped(flow, shape, seed=1)
    a, b = n[:, :, :-1, :, :-1], n[:, :, 1:, :, 1:]
    assert torch.allclose(a, b, atol=1e-5)  # a whole-pixel move carries the noise exactly
    half = warped(flow, shape, seed=1, strength=0.5)
    r = torch.corrcoef(torch.stack([half[:, :, :-1, :, :-1].flatten(), half[:, :, 1:, :, 1:].flatten()]))[0, 1]
    assert 0.15 < r < 0.35  # s^2 = 0.25
    assert abs(float(half.std()) - 1) < 0.05
    fresh = noise_like(shape, 1)
    assert torch.equal(warped(flow, shape, seed=1, strength=0.0), fresh)
    assert torch.equal(warped(None, shape, seed=1), fresh)


def test_bad_flows(caplog):
    shape = (1, 4, 5, 8, 8)
    flow = camera_flow("pan-left", 17, 64, 64)
    nan = flow.clone()
    nan[3, 5, 5, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        warped(nan, shape)
    with pytest.raises(ValueError, match=r"FLOW \[N,H,W,2\]"):
        check_flow(torch.zeros(4, 8, 8))
    with caplog.at_level(logging.WARNING):
        huge = check_flow(torch.full((2, 8, 8, 2), 1e9))
    assert "clipped" in caplog.text and float(huge.norm(dim=-1).max()) <= 8 + 1e-3
    assert torch.isfinite(warped(torch.full((16, 64, 64, 2), 1e9), shape)).all()
    # a flow shorter than the clip: the last pair's motion continues, with a note
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        short = warped(flow[:6], shape, seed=2)
    assert "repeated" in caplog.text
    assert torch.equal(short, warped(torch.cat([flow[:6], flow[5:6].expand(10, -1, -1, -1)]), shape, seed=2))
    # another size: resized with the vectors scaled, with a note
    caplog.clear()
    big = camera_flow("pan-left", 17, 128, 96)
    with caplog.at_level(logging.WARNING):
        resized = warped(big, shape, seed=2)
    assert "resized" in caplog.text
    assert torch.allclose(resize_flow(big, 64, 64)[0, 10, 10], torch.tensor([0.025 * 96 * 64 / 96, 0.0]))
    assert torch.equal(resized, warped(resize_flow(big, 64, 64), shape, seed=2))
    assert fit_flow(big, 17, 64, 64).shape == (16, 64, 64, 2)
    # a one-frame clip has no motion: the flow is not used
    one = warped(flow, (1, 4, 1, 8, 8), seed=2)
    assert one.shape == (1, 4, 1, 8, 8)
    with pytest.raises(ValueError, match="strength"):
        warped(flow, shape, strength=1.5)
    with pytest.raises(TypeError, match="noise_like"):  # the fresh noise, not the shape it has
        warp_noise(flow, shape, 2)


def test_noise_guided_sampling_is_pure_and_pulls_toward_the_guide():
    sigmas = torch.linspace(1, 0, 6)
    x = torch.randn(1, 2, 3, 4, 4)
    guide = torch.randn_like(x)

    def model(x, s):  # a model that believes x0 = 0, so eps_hat = x / sigma
        return x / s.view(-1, 1, 1, 1, 1)

    plain = sample_euler(model, x, sigmas)
    assert torch.equal(sample_noise_guided(sample_euler, model, x, sigmas, guide, range(0)), plain)
    for guided, pulled in ((range(0, 3), (1, 2)), (range(2, 3), (2,))):
        seen = {}
        sample_noise_guided(sample_euler, model, x, sigmas, guide, guided,
                            callback=lambda d, seen=seen: seen.setdefault(d["i"], d["x"].clone()))
        assert set(seen) == set(range(5))
        for i in range(1, 5):
            # pulled all the way onto the guide (x = sigma * guide) from the first guided step on; before it,
            # the plain run's x = sigma * x_start
            want = guide if i >= pulled[0] else x
            assert torch.allclose(seen[i], sigmas[i] * want, atol=1e-5), (guided, i)
    assert step_range(20, 0.0, 0.3) == range(0, 6)
    with pytest.raises(ValueError, match="step range"):
        step_range(20, 0.5, 0.2)


@pytest.fixture(scope="module")
def tiny():
    return load_model()  # the shipped model: loading is faster than building


def test_sample_latent_with_flow(tiny, one_thread):
    m = tiny
    ctx, mask = encode_cached(m.text_encoder, ["a red circle"], EmbeddingCache())
    shape = (1, 16, 5, 8, 8)
    flow = camera_flow("pan-left", 17, 64, 64, 2.0)
    kw = dict(steps=3, cfg=1.0, seed=5)
    plain = sample_latent(m.backbone, ctx, mask, None, None, shape, **kw)

    def run(**motion):
        return sample_latent(m.backbone, ctx, mask, None, None, shape, motion=MotionGuidance(flow=flow, **motion), **kw)

    assert torch.equal(run(flow_strength=0.0, warp_guidance=0.0), plain)
    guided = run()
    renoised = run(flow_end=1.0)
    assert not torch.allclose(guided, plain) and not torch.allclose(renoised, guided)
    # flow_pull scales the pull: 0 leaves only the warped initial noise, a half pull lies between
    assert torch.equal(run(flow_end=1.0, flow_pull=0.0), guided)
    half = run(flow_end=1.0, flow_pull=0.5)
    assert not torch.allclose(half, guided) and not torch.allclose(half, renoised)
    with pytest.raises(ValueError, match="flow_pull"):
        run(flow_end=1.0, flow_pull=1.5)


def test_cli_flow_extract_and_guided_generate(tmp_path, one_thread, capsys):
    ref = write_video(tmp_path / "ref.mp4", textured_clip(frames=6, h=48, w=64), fps=8, crf=10)
    prev, out = tmp_path / "preview.mp4", tmp_path / "flow.safetensors"
    assert main(["flow", "extract", str(ref), "--method", "dis-fast", "--preview", str(prev), "-o", str(out)]) == 0
    frames, _ = read_video(prev)
    assert frames.shape == (5, 48, 64, 3)
    from safetensors.torch import load_file

    assert load_file(out)["flow"].shape == (5, 48, 64, 2)
    assert "5 frame pairs" in capsys.readouterr().out
    clip = tmp_path / "gen.mp4"
    for extra in (["--camera", "pan-left:2"], ["--motion-from", str(ref), "--flow-end", "0.3"]):
        args = ["generate", "a red circle", "-o", str(clip), "--steps", "2", "--frames", "9", "-q"]
        assert main(args + extra) == 0
        assert read_video(clip)[0].shape == (9, 64, 64, 3)
    assert main(["generate", "x", "-o", str(clip), "--camera", "dolly"]) == 2
    assert "unknown" in capsys.readouterr().err


def test_world_flow_is_the_scene_motion():
    from aiprod_core.world import EASY, make_clip, world_flow

    spec = dataclasses.replace(EASY, frames=9, motions=("right",))
    clip = make_clip(11, spec)
    flow = world_flow(clip.scene, 9, 64, 64)
    o = clip.scene.objects[0]
    moving = flow.norm(dim=-1) > 0
    assert flow.shape == (8, 64, 64, 2) and moving.any() and not moving.all()
    assert torch.allclose(flow[moving], torch.tensor([o.vx * 64, o.vy * 64], dtype=torch.float32), atol=1e-4)
    # the pixels that move are the object's: bright in the rendered frame
    lit = torch.from_numpy(clip.frames.max(-1))[:-1]
    assert float(lit[moving].mean()) > 0.9 and float(lit[~moving].mean()) < 0.05


def test_trainer_with_warped_noise(tmp_path, one_thread):
    from aiprod_core.train.data import WorldData
    from aiprod_core.train.options import RunOptions, TrainOptions
    from aiprod_core.train.phases import Phase, load_phases, save_phases
    from aiprod_core.train.trainer import Trainer

    world = {"frames": 9, "height": 32, "width": 32, "motions": ["right"]}
    phase = Phase("warped", steps=1, batch=2, warmup=1, world=world, warped_noise=1.0)
    save_phases(tmp_path / "p.json", [phase])
    assert load_phases(tmp_path / "p.json")[0].warped_noise == 1.0
    with pytest.raises(ValueError, match="warped_noise"):
        Phase("bad", warped_noise=1.5)
    model = build_model(preset("tiny"))
    trainer = Trainer(model, [phase], TrainOptions(RunOptions(tmp_path / "run", validate=False, progress=False, checkpoint_every=0)))
    samples = [WorldData(0).sample(phase, 0, 0, i) for i in range(2)]
    assert samples[0].flow.shape == (8, 32, 32, 2)
    noise = torch.randn(2, 16, 3, 4, 4)
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    warped = trainer._warped(phase, samples, noise, gens)
    assert not torch.allclose(warped, noise)
    # the black background is still: its noise carries over from one latent frame to the next
    r = torch.corrcoef(torch.stack([warped[:, :, :-1].flatten(), warped[:, :, 1:].flatten()]))[0, 1]
    assert r > 0.5
    samples[1].flow = None  # a clip without flow keeps its i.i.d. noise
    gens = [torch.Generator().manual_seed(i) for i in range(2)]
    assert torch.equal(trainer._warped(phase, samples, noise, gens)[1], noise[1])
    out = trainer.run()
    assert out.is_file()


def test_camera_clips_are_always_trained_with_warped_noise(tmp_path, one_thread):
    """A camera move is not in the caption: its clips get warped noise even in a phase without any, and the rest
    of the batch keeps plain noise."""
    from aiprod_core.train.data import WorldData
    from aiprod_core.train.options import RunOptions, TrainOptions
    from aiprod_core.train.phases import Phase
    from aiprod_core.train.trainer import Trainer

    world = {"frames": 9, "height": 32, "width": 32, "motions": ["still", "left"], "camera": 1.0}
    phase = Phase("camera", steps=1, batch=2, warmup=1, world=world)
    data = WorldData(0)
    samples = [data.sample(phase, 0, 0, i) for i in range(12)]
    moved = [s for s in samples if s.always_warp]
    plain = [s for s in samples if not s.always_warp]
    assert moved and plain and all(s.flow is not None for s in moved) and all(s.flow is None for s in plain)
    trainer = Trainer(build_model(preset("tiny")), [phase], TrainOptions(RunOptions(tmp_path / "run", validate=False, progress=False)))
    pair = [moved[0], plain[0]]
    noise = torch.randn(2, 16, 3, 4, 4)
    warped = trainer._warped(phase, pair, noise, [torch.Generator().manual_seed(i) for i in range(2)])
    assert not torch.allclose(warped[0], noise[0]) and torch.equal(warped[1], noise[1])


def test_sigma_shift_moves_training_towards_high_noise():
    from aiprod_core.train.objectives import sample_sigmas
    from aiprod_core.train.phases import Phase

    def share_above(shift):
        s = sample_sigmas(4000, 320, torch.Generator().manual_seed(0), shift=shift)
        return float((s > 0.9).float().mean())

    assert share_above(2.0) > 2 * share_above(None) > 0
    assert Phase("p", sigma_shift=2.0).sigma_shift == 2.0


def test_eval_motion_runs_all_three_conditions(capsys, one_thread):
    args = ["eval", "motion", "--clips", "2", "--per-preset", "1", "--steps", "1", "--cfg", "1",
            "--flow-strength", "0.8", "--flow-end", "0.5", "--flow-pull", "0.5", "--presets", "pan-left,zoom-in",
            "--camera-speed", "1.2", "-q"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["world_clips"]) == {"guided", "unguided", "random_guidance"} == set(out["camera_presets"])
    assert out["settings"]["strength"] == 0.8 and out["settings"]["flow_pull"] == 0.5
    assert out["settings"]["flow_end"] == 0.5 and out["settings"]["presets"] == ["pan-left", "zoom-in"]
    assert out["settings"]["camera_speed"] == 1.2
    for row in out["world_clips"].values():
        assert row["epe"] >= 0 and 0 <= row["colour"] <= 1
    assert 0 <= out["summary"]["camera_direction_agreement_guided"] <= 1
    assert all(0 <= row["two_objects"] <= 1 for row in out["camera_presets"].values())
    assert out["settings"]["warp_guidance"] == 1.0
    assert [len(v) for v in out["camera_presets_guided_seen"].values()] == [1, 1]
    # the world's own camera clips of the same scenes are told right: the measure can reach its goal
    assert out["camera_presets_ceiling_world_clips"]["direction_agrees"] == 1.0


@pytest.mark.parametrize("preset", PRESETS)
def test_world_camera_clips_move_as_their_flow_says(preset):
    """A still scene filmed with a camera move: the exact flow is the preset's field, each frame is the previous one
    carried along it, a measured flow points the same way, and no caption calls the camera static."""
    from aiprod_core.world import EASY, make_clip, world_flow
    from aiprod_core.world.captions import LANGUAGES, _says_static_camera

    spec = dataclasses.replace(EASY, frames=9, motions=("still",), objects=(2, 2), camera=1.0)
    seed = next(s for s in range(200) if make_clip(s, spec).scene.camera == preset)
    clip = make_clip(seed, spec)
    flow = world_flow(clip.scene, 9, 64, 64)
    assert torch.allclose(flow, camera_flow(preset, 9, 64, 64, clip.scene.camera_speed))
    # frame t+1 sampled back along the flow is frame t, away from the borders the picture enters from
    ys, xs = np.mgrid[0:64, 0:64].astype(np.float32)
    for t in (0, 4):
        back = cv2.remap(clip.frames[t + 1], xs + flow[t, ..., 0].numpy(), ys + flow[t, ..., 1].numpy(), cv2.INTER_LINEAR)
        assert np.abs(back - clip.frames[t])[8:-8, 8:-8].mean() < 0.02
    assert np.abs(clip.frames[-1] - clip.frames[0]).mean() > 0.01  # the picture did move
    assert dominant_preset(extract_flow(clip.frames, "farneback").flow)[0] == preset
    for lang in LANGUAGES:
        text = make_clip(seed, spec, language=lang).caption
        assert not any(w in text for w in ("static", "fija", "ferma", "parada", "steht fest", "зафиксирована", "固定", "مثبتة"))
    # specs without camera moves draw no camera and keep the scenes they had
    plain = dataclasses.replace(spec, camera=0.0)
    assert make_clip(seed, plain).scene.camera is None
    assert make_clip(seed, plain).scene.objects == clip.scene.objects
    assert not _says_static_camera("a red circle")


def test_latent_flow_composes_pixel_frames_onto_the_latent_grid():
    flow = camera_flow("pan-left", 17, 64, 64, 2.0)  # the picture moves right 3.2 px a frame
    lat = latent_flow(flow, 5, 8, 8, spatial=8, temporal=4)
    assert lat.shape == (4, 8, 8, 2)
    for k in range(1, 5):  # latent frame k is pixel frame 4k: 4k * 3.2 px = 1.6k latent px to the right
        assert torch.allclose(lat[k - 1, 2:6, 2:6, 0], torch.full((4, 4), 1.6 * k), atol=0.05), k
        assert lat[k - 1, ..., 1].abs().max() < 1e-4
    assert latent_flow(flow, 1, 8, 8).shape == (0, 8, 8, 2)


def test_warp_x0_moves_the_first_frame_along_the_flow():
    x0 = torch.randn(2, 3, 4, 6, 7)
    shift = torch.zeros(3, 6, 7, 2)
    for k in range(3):
        shift[k, ..., 0] = k + 1  # frame k + 1 is the first frame moved k + 1 px to the right
    out = warp_x0(x0, [shift, None], 1.0)
    assert torch.equal(out[1], x0[1]) and torch.equal(out[:, :, 0], x0[:, :, 0])
    for k in range(1, 4):
        assert torch.allclose(out[0, :, k, :, k:], x0[0, :, 0, :, :-k], atol=1e-5), k
        assert torch.equal(out[0, :, k, :, :k], x0[0, :, k, :, :k])  # revealed: the model's own
    half = warp_x0(x0, [shift, None], 0.5)
    assert torch.allclose(half[0, :, 2, :, 2:], (x0[0, :, 0, :, :-2] + x0[0, :, 2, :, 2:]) / 2, atol=1e-5)


def test_warp_guided_velocity_steps_toward_the_warped_estimate():
    x, sigma = torch.randn(1, 2, 3, 4, 4), torch.tensor([0.6])
    target = torch.randn_like(x)

    def model(x, s):  # believes x0 = target
        return (x - target) / s.view(-1, 1, 1, 1, 1)

    flows = [torch.ones(2, 4, 4, 2)]
    v = warp_guided_velocity(model, flows, 1.0, sigma_min=0.5)(x, sigma)
    eps_hat = x + (1 - 0.6) * model(x, sigma)
    assert torch.allclose(v, eps_hat - warp_x0(target, flows, 1.0), atol=1e-5)
    assert torch.equal(warp_guided_velocity(model, flows, 1.0, sigma_min=0.7)(x, sigma), model(x, sigma))


def test_warp_guidance_makes_the_latent_follow_the_flow(tiny, one_thread):
    m = tiny
    ctx, mask = encode_cached(m.text_encoder, ["a red circle and a blue square"], EmbeddingCache())
    shape, kw = (1, 16, 5, 8, 8), dict(steps=6, cfg=1.0, seed=3)
    flow = camera_flow("pan-left", 17, 64, 64, 0.5)
    lat = latent_flow(flow, 5, 8, 8)

    def mismatch(latent, f):  # how far each later frame is from the first one moved along f
        return sum(float((warp_frame(latent[:, :, 0], f[k - 1])[0] - latent[:, :, k])[..., 2:-2, 2:-2].abs().mean())
                   for k in range(1, 5))

    def run(**motion):
        return sample_latent(m.backbone, ctx, mask, None, None, shape, motion=MotionGuidance(flow=flow, **motion), **kw)

    plain = run(warp_guidance=0.0)
    default = run()  # on, for 3/4 of the steps
    assert mismatch(default, lat) < 0.85 * mismatch(plain, lat)
    guided = run(warp_guidance=1.0, warp_end=1.0)
    assert mismatch(guided, lat) < min(0.7 * mismatch(plain, lat), mismatch(default, lat))  # every step: closer still
    assert mismatch(guided, lat) < 0.5 * mismatch(guided, -lat)  # it moves the way the flow says, not back
    with pytest.raises(ValueError, match="warp_guidance"):
        run(warp_guidance=2.0)
    with pytest.raises(ValueError, match="warp_guidance"):
        run(warp_guidance=-0.5)
