"""A loss curve as a PNG, drawn with Pillow (no plotting library needed)."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageDraw


def loss_curve_png(path: str | os.PathLike, steps: list[int], losses: list[float], phase_starts: dict[str, int] | None = None,
                   size: tuple[int, int] = (640, 360)) -> Image.Image:
    """Plot log10(loss) against the global step (raw in grey, smoothed in blue); phase starts as lines."""
    w, h = size
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    left, right, top, bottom = 56, w - 12, 12, h - 28
    d.rectangle([left, top, right, bottom], outline="black")
    if len(steps) >= 2:
        y = np.log10(np.maximum(np.asarray(losses, float), 1e-8))
        k = max(1, len(y) // 50)
        smooth = np.convolve(y, np.ones(k) / k, mode="valid")
        lo, hi = float(y.min()), float(y.max()) if y.max() > y.min() else float(y.min()) + 1
        s0, s1 = steps[0], max(steps[-1], steps[0] + 1)

        def pt(s, v):
            return left + (s - s0) / (s1 - s0) * (right - left), bottom - (v - lo) / (hi - lo) * (bottom - top)

        d.line([pt(s, v) for s, v in zip(steps, y)], fill=(190, 190, 190))
        d.line([pt(s, v) for s, v in zip(steps[k - 1:], smooth)], fill=(20, 70, 200), width=2)
        for name, s in (phase_starts or {}).items():
            x = pt(s, lo)[0]
            d.line([x, top, x, bottom], fill=(220, 120, 40))
            d.text((x + 2, top + 2), name, fill=(220, 120, 40))
        for v in (lo, hi):
            d.text((4, pt(s0, v)[1] - 6), f"{10 ** v:.3g}", fill="black")
        d.text((left, bottom + 8), f"step {s0}", fill="black")
        d.text((right - 70, bottom + 8), f"step {s1}", fill="black")
    d.text((left + 6, bottom - 16), "loss (log scale)", fill="black")
    if path:
        img.save(path)
    return img
