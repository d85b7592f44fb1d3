"""Video extension: a clip continued from its last frames, on the shipped model, by the command and the nodes."""

import numpy as np
import pytest
import torch

from aiprod_core.cli import main
from aiprod_core.conditioning import continuation_frames, join_clips
from aiprod_core.video_io import read_video, write_video

PROMPT = "a red circle moving to the left"


def centre_x(frames: np.ndarray) -> np.ndarray:
    """x of the drawn pixels' centroid in each frame [T,H,W,3] (0..255 or 0..1 on a black background)."""
    lit = frames.max(-1) > 0.3 * frames.max()
    return np.array([np.nonzero(f)[1].mean() for f in lit])


@pytest.mark.parametrize(("t", "context", "n"), [(17, 1, 5), (17, 3, 13), (17, 4, 17), (17, 9, 17), (7, 2, 5), (3, 1, 1)])
def test_continuation_frames_are_the_last_one_plus_k_groups(t, context, n):
    clip = torch.arange(t, dtype=torch.float32)[:, None, None, None].expand(t, 2, 2, 3)
    last = continuation_frames(clip, 4, context)
    assert last.shape[0] == n and torch.equal(last[:, 0, 0, 0], torch.arange(t - n, t, dtype=torch.float32))


def test_join_clips_drops_the_overlap_and_fits_the_first_clip():
    first, second = torch.rand(6, 40, 80, 3), torch.rand(9, 32, 32, 3)
    joined = join_clips(first, second, 5)
    assert joined.shape == (6 + 4, 32, 32, 3) and torch.equal(joined[6:], second[5:])
    with pytest.raises(ValueError, match=r"expected 0\.\.8"):
        join_clips(first, second, 9)


def test_the_command_extends_a_clip_where_it_ends(tmp_path, capsys):
    base, longer = tmp_path / "base.mp4", tmp_path / "longer.mp4"
    assert main(["generate", PROMPT, "-o", str(base), "-q"]) == 0
    assert main(["generate", PROMPT, "--extend", str(base), "-o", str(longer), "--seed", "3", "-q"]) == 0
    a, fps_a = read_video(base)
    b, fps_b = read_video(longer)
    assert b.shape == (17 + 17 - 9, 64, 64, 3) and fps_a == fps_b
    assert np.abs(b[:17].astype(float) - a).mean() < 3  # the clip itself, through the codec again
    x = centre_x(b.astype(float))
    steps = np.diff(x)
    assert (steps < 0).all(), x  # the circle keeps moving left across the seam (frames 16 -> 17)
    assert abs(steps[16]) < 3 * np.median(np.abs(steps)), steps  # no jump where the continuation starts
    wide = tmp_path / "wide.mp4"  # another size and length: resized, in chunks, to the new frames' size
    write_video(wide, np.repeat(a[:1], 20, axis=0)[:, :, np.r_[0:64, 0:32]][:, np.r_[0:64, 0:16]], fps=12)
    assert main(["generate", PROMPT, "--extend", str(wide), "-o", str(longer), "--steps", "4", "-q"]) == 0
    c, fps_c = read_video(longer)
    assert c.shape == (20 + 17 - 9, 64, 64, 3) and fps_c == 12
    assert main(["generate", "x", "--extend", str(base), "--image", str(base), "-o", str(tmp_path / "no.mp4")]) == 2
    assert "use one of them" in capsys.readouterr().err and not (tmp_path / "no.mp4").exists()


def test_extend_and_join_nodes_through_the_sampler(pack, node):
    model, vae, te, _ = node("AIPRODCheckpointLoader").load("aiprod-v2-tiny.safetensors")
    (pos,), (neg,) = node("AIPRODTextEncode").encode(te, PROMPT)["result"], node("AIPRODTextEncode").encode(te, "")["result"]
    empty = node("AIPRODEmptyLatentVideo").make(vae, 64, 64, 17, 1)[0]
    (clip_latent,) = node("AIPRODSampler").sample(model, pos, neg, empty, 0, 12, 3.0, "euler", 0.0, 1.0)
    (clip,) = node("AIPRODVAEDecode").decode(vae, clip_latent, 0, 0)["result"]
    latent, video, overlap = node("AIPRODExtendVideo").make(vae, clip, 64, 64, 17, 1)
    assert overlap == 9 and torch.equal(video, clip) and latent["noise_mask"][0, 0, :, 0, 0].tolist() == [0, 0, 0, 1, 1]
    (more,) = node("AIPRODSampler").sample(model, pos, neg, latent, 1, 12, 3.0, "euler", 0.0, 1.0)
    (continued,) = node("AIPRODVAEDecode").decode(vae, more, 0, 0)["result"]
    (joined,) = node("AIPRODJoinClips").join(video, continued, overlap)
    assert joined.shape == (25, 64, 64, 3)
    x = centre_x(joined.numpy())
    assert (np.diff(x) < 0).all(), x
