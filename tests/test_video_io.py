import numpy as np
import pytest
import torch

from aiprod_core.video_io import read_video, write_video


def moving_square(t=9, h=48, w=64):
    v = torch.zeros(t, h, w, 3)
    for i in range(t):
        v[i, 10:26, 4 + 4 * i : 20 + 4 * i, 0] = 1.0
    return v


@pytest.mark.parametrize("ext", ["mp4", "webm", "webp", "gif"])
def test_write_then_read_back(tmp_path, ext):
    v = moving_square()
    p = write_video(tmp_path / f"clip.{ext}", v, fps=8)
    frames, fps = read_video(p)
    assert frames.shape == (9, 48, 64, 3)
    assert fps == pytest.approx(8, rel=0.05)
    # the red square is where it was drawn in every frame (lossy codecs blur edges only)
    red = frames[..., 0].astype(float) / 255
    drawn = v[..., 0].numpy() > 0.5
    assert red[drawn].mean() > 0.8 and red[~drawn].mean() < 0.05
    assert np.argmax(red[-1, 18]) > np.argmax(red[0, 18])


def test_mp4_is_h264(tmp_path):
    import av

    p = write_video(tmp_path / "c.mp4", moving_square(), fps=8)
    with av.open(str(p)) as c:
        assert c.streams.video[0].codec_context.name == "h264"


def test_odd_sizes_and_bad_input(tmp_path):
    frames, _ = read_video(write_video(tmp_path / "odd.mp4", torch.rand(3, 15, 17, 3)))
    assert frames.shape == (3, 16, 18, 3)
    with pytest.raises(ValueError, match=r"unknown extension '\.avi2'"):
        write_video(tmp_path / "x.avi2", torch.rand(3, 8, 8, 3))
    with pytest.raises(ValueError, match=r"expected \[T,H,W,3\]"):
        write_video(tmp_path / "x.mp4", torch.rand(3, 8, 8))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(ValueError, match="could not be decoded"):
        read_video(bad)
