"""Video files in and out: H.264 MP4 (and WebM) through PyAV, animated WebP and GIF through Pillow."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from .outputs import atomic_output, check_output_file

VIDEO_EXTS = {".mp4": "libx264", ".mov": "libx264", ".mkv": "libx264", ".webm": "libvpx-vp9"}
IMAGE_EXTS = (".webp", ".gif")
WRITE_EXTS = (*VIDEO_EXTS, *IMAGE_EXTS)  # what write_video writes, the first the default
PICTURE_EXTS = (".png", ".jpg", ".jpeg", ".bmp")  # read as one frame (image-to-video)


def centre_crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """x [..., H, W] cut to the aspect of `width` x `height` about its centre (the whole of the other side kept)."""
    h, w = x.shape[-2:]
    target = width / height
    if w / h > target:
        cw = round(h * target)
        return x[..., (w - cw) // 2 : (w - cw) // 2 + cw]
    ch = round(w / target)
    return x[..., (h - ch) // 2 : (h - ch) // 2 + ch, :]


def to_uint8(frames: torch.Tensor | np.ndarray) -> np.ndarray:
    """[T,H,W,3] float in 0..1 (or uint8) -> uint8 numpy [T,H,W,3]."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu()
        if frames.dtype != torch.uint8:
            frames = (frames.float().clamp(0, 1) * 255).round().to(torch.uint8)
        frames = frames.numpy()
    elif frames.dtype != np.uint8:
        frames = np.clip(np.rint(np.asarray(frames, np.float32) * 255), 0, 255).astype(np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames have shape {frames.shape}; expected [T,H,W,3]")
    return np.ascontiguousarray(frames)


def check_video_output(path: str | os.PathLike, what: str = "output") -> Path:
    """Refuse, before the work, a video path write_video could not write (folder, extension, permission)."""
    return check_output_file(path, WRITE_EXTS, what)


def write_video(path: str | os.PathLike, frames: torch.Tensor | np.ndarray, fps: float = 8, crf: int = 17) -> Path:
    """Write frames [T,H,W,3] to a file whose extension picks the format; written atomically, with the umask's
    mode; a failed write raises outputs.WriteError naming `path`."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in VIDEO_EXTS and ext not in IMAGE_EXTS:
        raise ValueError(
            f"cannot write {path.name!r}: unknown extension {ext!r}; use one of {sorted(VIDEO_EXTS) + list(IMAGE_EXTS)}"
        )
    data = to_uint8(frames)
    with atomic_output(path, suffix=ext) as tmp:  # the writers read the format from the extension
        if ext in VIDEO_EXTS:
            _write_av(tmp, data, fps, VIDEO_EXTS[ext], crf)
        else:
            _write_pil(tmp, data, fps, ext)
    return path


def _write_av(path: str, data: np.ndarray, fps: float, codec: str, crf: int) -> None:
    import av

    _, h, w, _ = data.shape
    # yuv420p halves chroma resolution: pad odd sizes by one edge pixel.
    ph, pw = h % 2, w % 2
    if ph or pw:
        data = np.pad(data, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    with av.open(path, mode="w") as out:
        stream = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = w + pw, h + ph
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)} if codec == "libx264" else {"crf": str(crf + 15), "b": "0"}
        for frame in data:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _write_pil(path: str, data: np.ndarray, fps: float, ext: str) -> None:
    from PIL import Image

    images = [Image.fromarray(f) for f in data]
    duration = max(1, round(1000 / fps))
    if ext == ".webp":
        images[0].save(path, format="WEBP", save_all=True, append_images=images[1:], duration=duration, loop=0, lossless=True)
    else:
        images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)


def read_video(path: str | os.PathLike, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """(frames uint8 [T,H,W,3], fps) of a video or animated image file, or of a picture (one frame)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix.lower() in IMAGE_EXTS + PICTURE_EXTS:
        from PIL import Image, ImageSequence, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
                fps = 1000 / max(1, im.info.get("duration", 125))
        except (UnidentifiedImageError, OSError) as e:
            raise ValueError(f"{path}: could not be read as an image ({e}); expected a {path.suffix} picture") from e
        return np.stack(frames[:max_frames]), fps
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 8)
            frames = []
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except (av.error.FFmpegError, IndexError) as e:
        raise ValueError(f"{path}: could not be decoded as a video ({e}); expected an mp4/webm/mov file") from e
    if not frames:
        raise ValueError(f"{path}: contains no video frames")
    return np.stack(frames), fps
