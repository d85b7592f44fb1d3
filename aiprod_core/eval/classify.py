"""Label a single-object clip with OpenCV and NumPy: its colour, shape and direction of motion, with no weights.

Prompt adherence of the tiny model is measured by labelling its generated clips and comparing the labels with the
prompt's scene; the same classifier on the world's own renders gives the ceiling. Generated clips are blurrier and
noisier than renders, so each label uses a measurement that blur leaves alone:

- the object: per frame, the largest connected region above half the clip's peak brightness (after taking off
  the frame's background level). A blurred edge on black crosses half its height where the sharp edge was, so the
  region's centroid and extent survive blur;
- colour: the majority over the object's pixels of the nearest world colour by hue; pixels with low saturation
  are white (blending with black lowers value, not saturation, so blur keeps both tests valid);
- shape: the cumulants of order 3, 4 and 5 of the object's intensity, as complex numbers in z = x + iy (the 3-,
  4- and 5-fold harmonics of the cumulant tensors). Cumulants of a convolution add and a Gaussian has none above
  the second order, so Gaussian blur leaves them unchanged; a triangle has only the 3-fold one, a square only the
  4-fold one, a five-pointed star only the 5-fold one, a disc none. They are averaged over the frames where the
  object is whole and matched to the same numbers for the world's own shapes. Outline measures (findContours,
  approxPolyDP, fill of the enclosing circle/rectangle/triangle) were tried first and dropped: under blur and
  noise they take small triangles for discs (89% vs 100% of shapes right at 1.5 px blur, noise 0.05, small and
  normal objects), and with a 7 px motion streak they fell to 78% where the harmonics kept 97%;
- direction: a straight-line fit of the centroid over the frames where the object is visible; a displacement
  under `still_threshold` of the frame's short side is "still".
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..world import COLOUR_RGB, Scene, SceneObject, render

logger = logging.getLogger(__name__)

NONE = "none"
DIRECTIONS = ("left", "right", "up", "down", "still")
DEFAULT_SHAPES = ("circle", "square", "triangle")
KNOWN_SHAPES = (*DEFAULT_SHAPES, "star")


def _hue(rgb: tuple[float, float, float]) -> float:
    pixel = np.array([[rgb]], np.float32)
    return float(cv2.cvtColor(pixel, cv2.COLOR_RGB2HSV)[0, 0, 0]) / 2.0  # OpenCV's 8-bit hue scale, 0..180


# the world's saturated colours by OpenCV hue (0..180); white is told apart by saturation instead
COLOUR_HUES = {name: _hue(rgb) for name, rgb in COLOUR_RGB.items() if name != "white"}


@dataclass(frozen=True)
class ClipLabels:
    """What a clip shows. colour, shape, direction: a name, or "none" with `reason` saying why.

    displacement: (dx, dy) of the fitted centroid path over the whole clip in units of the frame's short side
    (x right, y down). visible_frames: frames in which the object was found. area: the object's largest area as a
    fraction of the frame. hue: median OpenCV hue (0..180) of its pixels; saturation: their median (0..1).
    harmonics: magnitudes of the normalised 3-, 4- and 5-fold cumulant harmonics the shape was judged by."""

    colour: str
    shape: str
    direction: str
    reason: str = ""
    displacement: tuple[float, float] = (0.0, 0.0)
    visible_frames: int = 0
    area: float = 0.0
    hue: float = float("nan")
    saturation: float = float("nan")
    harmonics: tuple[float, float, float] = (0.0, 0.0, 0.0)


def to_uint8_frames(frames: np.ndarray) -> np.ndarray:
    """float [T,H,W,3] in 0..1 (or uint8, or one [H,W,3] image, or a CPU tensor) -> uint8 [T,H,W,3]."""
    array = np.asarray(frames)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(
            f"frames have shape {array.shape}; expected RGB video [T,H,W,3] or one image [H,W,3]"
        )
    if array.dtype == np.uint8:
        return array
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"frames have dtype {array.dtype}; expected float in 0..1 or uint8 in 0..255")
    return np.clip(np.rint(array.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)


def _largest_component(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """The largest 8-connected component of a bool mask [H,W] and its area (0 when the mask is empty)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros_like(mask), 0
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == best, int(stats[best, cv2.CC_STAT_AREA])


def _colour(hsv: np.ndarray, white_saturation: float) -> tuple[str, float, float]:
    """Majority colour of pixels hsv [N,3] (OpenCV 8-bit HSV), with their median hue and saturation (0..1)."""
    hue, sat = hsv[:, 0].astype(np.float32), hsv[:, 1].astype(np.float32) / 255.0
    white = sat < white_saturation
    votes = {"white": int(white.sum())}
    names = list(COLOUR_HUES)
    centres = np.array([COLOUR_HUES[n] for n in names], np.float32)
    distance = np.abs(hue[~white, None] - centres[None])
    nearest = np.argmin(np.minimum(distance, 180.0 - distance), axis=1)  # hue is circular: 179 is next to 0
    for i, name in enumerate(names):
        votes[name] = int((nearest == i).sum())
    return max(votes, key=votes.get), float(np.median(hue)), float(np.median(sat))


def cumulant_harmonics(image: np.ndarray, level: float | None = None) -> np.ndarray:
    """complex [3]: the cumulants of order 3, 4 and 5 of the position z = x + iy under the intensity of a blob
    image [H,W] (background 0), each normalised by the area (mass / level) to the power n/2. level is the object's
    brightness before any blur (default: the image's maximum, right for a sharp image).

    Their magnitudes are rotation invariant, and Gaussian blur leaves them unchanged. A disc has none; a square
    only the 4-fold one (|h4| = 1/60); an upward triangle only the 3-fold one (about 0.068); the world's star only
    the 5-fold one (about 0.032). Being complex, they can be averaged over frames before taking magnitudes, which
    averages noise out instead of adding up its bias."""
    mass = float(image.sum())
    if mass <= 0:
        return np.zeros(3, np.complex128)
    ys, xs = np.indices(image.shape, dtype=np.float64)
    p = image.astype(np.float64) / mass
    z = (xs - (p * xs).sum()) + 1j * (ys - (p * ys).sum())
    m2, m3, m4, m5 = ((p * z**k).sum() for k in (2, 3, 4, 5))
    area = mass / float(image.max() if level is None else level)
    # cumulants from the central moments of one (complex) variable: k3 = m3, k4 = m4 - 3 m2^2, k5 = m5 - 10 m3 m2
    return np.array([m3 / area**1.5, (m4 - 3 * m2 * m2) / area**2, (m5 - 10 * m3 * m2) / area**2.5])


@functools.cache
def shape_prototypes() -> dict[str, np.ndarray]:
    """|cumulant_harmonics| [3] of each of the world's shapes, rendered large and sharp."""
    out = {}
    for shape in KNOWN_SHAPES:
        obj = SceneObject("white", shape, "still", 0.3, 0.5, 0.5, 0.0, 0.0)
        out[shape] = np.abs(cumulant_harmonics(render(Scene((obj,), frames=1), 1, 128)[0, :, :, 0]))
    return out


def _blob(
    signed: np.ndarray, component: np.ndarray, peak: float, noise: float, sigma: float
) -> np.ndarray | None:
    """The object with its blurred skirt: a float crop of `signed` [H,W] (brightness minus the background level,
    not clipped, so that noise stays zero-mean) smoothed by a Gaussian of `sigma` px, which leaves the harmonics
    unchanged and averages noise away. The frame is padded with background so that an object near (not over) the
    border keeps its skirt. None when nothing around `component` stands above the noise."""
    pad = math.ceil(4 * sigma) + 4
    padded = cv2.copyMakeBorder(signed, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0.0)
    seed = (
        cv2.copyMakeBorder(component.astype(np.uint8), pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0) > 0
    )
    smooth = cv2.GaussianBlur(padded, (0, 0), sigma)
    # down to a few deviations of the smoothed noise, so that little of the tails is cut off
    low = smooth >= max(0.05 * peak, 4.0 * noise / (2.0 * math.sqrt(math.pi) * sigma))
    _, labels = cv2.connectedComponents(low.astype(np.uint8), connectivity=8)
    ids = np.unique(labels[seed & low])
    region = np.isin(labels, ids[ids > 0])
    if not region.any():
        return None
    region = cv2.dilate(region.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    ys, xs = np.nonzero(region)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return smooth[y0:y1, x0:x1] * region[y0:y1, x0:x1]


def _pick_shape(harmonics: np.ndarray, shapes: tuple[str, ...]) -> str:
    """The candidate whose prototype harmonics are nearest, each axis scaled by its largest prototype value."""
    protos = shape_prototypes()
    scale = np.max(np.stack(list(protos.values())), axis=0)
    return min(shapes, key=lambda s: float((((harmonics - protos[s]) / scale) ** 2).sum()))


def _direction(
    path: np.ndarray, times: np.ndarray, frames: int, still_threshold: float
) -> tuple[str, float, float]:
    """Direction of a centroid path [N,2] (short-side units) seen at frame indices times [N] of a clip of
    `frames` frames: the least-squares line's displacement over the whole clip and its dominant axis."""
    slope_x = np.polyfit(times, path[:, 0], 1)[0]
    slope_y = np.polyfit(times, path[:, 1], 1)[0]
    dx, dy = float(slope_x * (frames - 1)), float(slope_y * (frames - 1))
    if math.hypot(dx, dy) < still_threshold:
        return "still", dx, dy
    if abs(dx) >= abs(dy):
        return ("right" if dx > 0 else "left"), dx, dy
    return ("down" if dy > 0 else "up"), dx, dy


def _min_object_area(height: int, width: int) -> int:
    """The fewest pixels that count as an object (0.15% of the frame): a few hot pixels are not one."""
    return max(4, int(0.0015 * height * width))


def count_objects(image: np.ndarray, min_brightness: float = 0.3) -> int:
    """How many objects an image [H,W,3] (float 0..1 or uint8, dark background) shows: the 8-connected regions
    brighter than `min_brightness` of at least 0.15% of the frame (a few hot pixels are not an object)."""
    if np.ndim(image) != 3:
        raise ValueError(f"count_objects takes one image [H,W,3]; got shape {np.shape(image)}")
    frame = to_uint8_frames(image)[0]
    mask = (frame.max(axis=-1) > min_brightness * 255).astype(np.uint8)
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    return int((stats[1:, cv2.CC_STAT_AREA] >= _min_object_area(*mask.shape)).sum())


def _touches_border(component: np.ndarray) -> bool:
    return bool(component[0].any() or component[-1].any() or component[:, 0].any() or component[:, -1].any())


def _brightness_above_background(video: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(signed [T,H,W], value [T,H,W], peak) of a uint8 video: brightness as HSV value, so that the background is
    dark whatever the object's hue, less each frame's median (a generated background may be lifted, and the object
    covers a small part of the frame); value is that clipped at 0, and peak its brightness."""
    raw = video.max(axis=-1).astype(np.float32)
    signed = raw - np.median(raw.reshape(len(video), -1), axis=1)[:, None, None]
    value = np.clip(signed, 0.0, None)
    # a high percentile rather than the maximum, so that a few hot noise pixels cannot set the threshold
    peak = float(np.sort(value, axis=None)[-max(1, value.size // 2000)])
    return signed, value, peak


@dataclass
class _ObjectTrack:
    """Where the object was found: per frame that shows it, its index, mask, brightness-weighted centroid (px),
    area and HSV pixels."""

    seen: list[tuple[int, np.ndarray]]
    centroids: list[tuple[float, float]]
    areas: list[int]
    pixels: list[np.ndarray]


def _track_object(video: np.ndarray, value: np.ndarray, peak: float, min_area: int) -> _ObjectTrack:
    """The largest region above half the clip's peak in each frame, where it covers at least `min_area` px."""
    track = _ObjectTrack([], [], [], [])
    for t in range(len(video)):
        component, area = _largest_component(value[t] >= 0.5 * peak)
        if area < min_area:
            continue
        ys, xs = np.nonzero(component)
        weight = value[t][ys, xs].astype(np.float64)
        track.centroids.append((np.dot(xs, weight) / weight.sum() + 0.5, np.dot(ys, weight) / weight.sum() + 0.5))
        track.seen.append((t, component))
        track.areas.append(area)
        track.pixels.append(cv2.cvtColor(video[t], cv2.COLOR_RGB2HSV)[ys, xs])
    return track


def _judge_shape(track: _ObjectTrack, signed: np.ndarray, peak: float, noise: float, short: float,
                 shapes: tuple[str, ...]) -> tuple[str, str, np.ndarray]:
    """(shape, reason, |harmonics| [3]) from the frames that show the whole object (or the largest view when none
    does): the harmonics averaged over their blobs, matched to the shapes' prototypes."""
    whole = [(t, c) for t, c in track.seen if not _touches_border(c)] or [track.seen[int(np.argmax(track.areas))]]
    blobs = [_blob(signed[t], c, peak, noise, short / 64.0) for t, c in whole]
    # the clip's peak is the object's brightness: smoothing (and blur, for a small object) lowers each blob's max
    measured = [cumulant_harmonics(b, peak) for b in blobs if b is not None]
    if not measured:
        return NONE, "the object does not stand out from the noise enough to judge its shape", np.zeros(3)
    harmonics = np.abs(np.mean(measured, axis=0))
    return _pick_shape(harmonics, shapes), "", harmonics


def _judge_direction(track: _ObjectTrack, t_count: int, short: float,
                     still_threshold: float) -> tuple[str, float, float, str]:
    """(direction, dx, dy, reason): "still" for one image, "none" when the object shows in fewer than 2 frames."""
    times = np.array([t for t, _ in track.seen], np.float64)
    if t_count == 1:
        return "still", 0.0, 0.0, ""
    if len(times) < 2:
        return NONE, 0.0, 0.0, "the object is visible in fewer than 2 frames: no direction"
    return (*_direction(np.asarray(track.centroids) / short, times, t_count, still_threshold), "")


def classify_clip(
    frames: np.ndarray,
    shapes: tuple[str, ...] = DEFAULT_SHAPES,
    still_threshold: float = 0.06,
    min_brightness: float = 0.2,
    white_saturation: float = 0.3,
) -> ClipLabels:
    """Colour, shape and direction of the one object in frames [T,H,W,3] (float 0..1 or uint8, RGB, dark
    background), or one image [H,W,3] (direction "still").

    shapes: the candidate shapes (add "star" to allow it). still_threshold: the smallest travel over the clip, in
    short-side units, that counts as motion (the world's slow objects travel 0.12-0.22). min_brightness: the
    faintest object (0..1, above the background) that counts as visible. white_saturation: below this median
    saturation (0..1) a pixel is white."""
    unknown = [s for s in shapes if s not in KNOWN_SHAPES]
    if not shapes or unknown:
        raise ValueError(f"shapes={shapes} has unknown or no entries {unknown}; choose from {KNOWN_SHAPES}")
    video = to_uint8_frames(frames)
    t_count, height, width = video.shape[:3]
    short = float(min(height, width))
    signed, value, peak = _brightness_above_background(video)
    if peak < min_brightness * 255:
        reason = f"nothing visible: the brightest pixels stand {peak / 255:.2f} above the background, < {min_brightness}"
        return ClipLabels(NONE, NONE, NONE, reason=reason)
    noise = float(signed[value < 0.25 * peak].std())
    min_area = _min_object_area(height, width)
    track = _track_object(video, value, peak, min_area)
    if not track.seen:
        reason = f"no object of at least {min_area} px above half the peak brightness in any frame"
        return ClipLabels(NONE, NONE, NONE, reason=reason)

    colour, hue, saturation = _colour(np.concatenate(track.pixels), white_saturation)
    shape, shape_reason, harmonics = _judge_shape(track, signed, peak, noise, short, tuple(shapes))
    direction, dx, dy, direction_reason = _judge_direction(track, t_count, short, still_threshold)
    logger.debug("classified clip: %s %s %s, harmonics %s", colour, shape, direction, harmonics)
    return ClipLabels(
        colour=colour,
        shape=shape,
        direction=direction,
        reason=shape_reason or direction_reason,
        displacement=(dx, dy),
        visible_frames=len(track.seen),
        area=max(track.areas) / float(height * width),
        hue=hue,
        saturation=saturation,
        harmonics=(float(harmonics[0]), float(harmonics[1]), float(harmonics[2])),
    )
