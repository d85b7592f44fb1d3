"""A procedural world of captioned clips: coloured shapes moving on black, with known ground truth.

The world is the tiny model's training data and the reference for prompt-adherence metrics: every clip comes with
the scene that made it, so a generated clip can be scored against what its caption asked for.

Coordinates are normalised to the frame's short side: a square frame spans [0, 1] x [0, 1], a 2:1 frame spans
[0, 2] x [0, 1]; x grows to the right and y grows downwards, as in images. Sizes and velocities use the same unit, so
one scene renders the same picture at 64x64 and 128x128 (velocities are per frame, constant within a clip).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

COLOURS = ("red", "yellow", "green", "blue", "purple", "white")
# Saturated colours whose OpenCV hues (0..179) are 0, 30, 60, 110 and 142: at least 30 apart, so a blurred or
# slightly shifted generated colour still lands nearest the right one. Blue sits at 219 degrees (not 240) to leave
# room for purple.
COLOUR_RGB = {
    "red": (1.0, 0.0, 0.0),
    "yellow": (1.0, 1.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.35, 1.0),
    "purple": (0.75, 0.0, 1.0),
    "white": (1.0, 1.0, 1.0),
}
SHAPES = ("circle", "square", "triangle")
ALL_SHAPES = (*SHAPES, "star")  # "star" is kept out of the default vocabulary (a LoRA teaches it)
BASIC_MOTIONS = ("left", "right", "up", "down", "still")
DIAGONALS = ("up-left", "up-right", "down-left", "down-right")
MOTIONS = BASIC_MOTIONS + DIAGONALS
_SQRT_HALF = math.sqrt(0.5)
DIRECTION_VECTORS = {
    "left": (-1.0, 0.0),
    "right": (1.0, 0.0),
    "up": (0.0, -1.0),
    "down": (0.0, 1.0),
    "still": (0.0, 0.0),
    "up-left": (-_SQRT_HALF, -_SQRT_HALF),
    "up-right": (_SQRT_HALF, -_SQRT_HALF),
    "down-left": (-_SQRT_HALF, _SQRT_HALF),
    "down-right": (_SQRT_HALF, _SQRT_HALF),
}
# Size classes: the half-extent of the shape in short-side units (a circle's radius). At 64 px a normal object is
# 14-20 px across, a small one 8-11 px, a large one 24-31 px.
SIZE_RANGES = {"small": (0.06, 0.085), "normal": (0.11, 0.16), "large": (0.19, 0.24)}
# Speed classes: how far the object travels over the whole clip, in short-side units. Defined per clip rather than
# per frame so that "fast" means "crosses most of the frame" at any clip length; the velocity is travel / (T - 1).
TRAVEL_RANGES = {"slow": (0.12, 0.22), "normal": (0.3, 0.48), "fast": (0.58, 0.72)}
EVENTS = ("bounce", "enter", "exit")
_STAR_INNER = 0.45  # inner/outer radius; fatter than a regular pentagram (0.38) so that it survives 64 px


@dataclass(frozen=True)
class WorldSpec:
    """What one training phase samples. Every field is a menu the sampler picks from uniformly.

    frames: clip length T (1 + 4k for the causal VAE; 1 makes still images). height, width: pixels.
    objects: numbers of objects (1 or 2) to pick from: (1, 1) one, (1, 2) half and half, (1, 1, 2) a third with two.
    motions: names from MOTIONS. speeds: classes from TRAVEL_RANGES;
    sizes: classes from SIZE_RANGES (only "slow"/"fast" and "small"/"large" are named in captions).
    bounce, enter_exit: probability that a moving object bounces off a wall / enters or leaves the frame (axis-aligned
    motions only). crossing: probability that two objects' paths cross, the front one hiding the back one.
    camera: probability that a scene whose objects are all still is filmed with a camera move (a preset of
    flow.camera at a speed of 0.5-1.5), which moves the whole picture; captions then never call the camera static.
    """

    frames: int = 17
    height: int = 64
    width: int = 64
    objects: tuple[int, ...] = (1, 1)
    motions: tuple[str, ...] = BASIC_MOTIONS
    shapes: tuple[str, ...] = SHAPES
    colours: tuple[str, ...] = COLOURS
    speeds: tuple[str, ...] = ("normal",)
    sizes: tuple[str, ...] = ("normal",)
    bounce: float = 0.0
    enter_exit: float = 0.0
    crossing: float = 0.0
    camera: float = 0.0

    def __post_init__(self) -> None:
        if self.frames < 1 or (self.frames - 1) % 4:
            raise ValueError(f"frames={self.frames} is not 1 + 4k; use e.g. 1, 9, 17 or 33")
        if min(self.height, self.width) < 16 or not 0.5 <= self.width / self.height <= 2.0:
            raise ValueError(f"frame {self.height}x{self.width} is too small or too elongated; use >= 16 px, aspect 1:2..2:1")
        if not self.objects or any(n not in (1, 2) for n in self.objects):
            raise ValueError(f"objects={self.objects} must list object counts of 1 or 2, e.g. (1, 1), (1, 2) or (1, 1, 2)")
        for name, values, known in (
            ("motions", self.motions, MOTIONS),
            ("shapes", self.shapes, ALL_SHAPES),
            ("colours", self.colours, COLOURS),
            ("speeds", self.speeds, tuple(TRAVEL_RANGES)),
            ("sizes", self.sizes, tuple(SIZE_RANGES)),
        ):
            unknown = [v for v in values if v not in known]
            if not values or unknown:
                raise ValueError(f"{name}={values} has unknown or no entries {unknown}; choose from {known}")
        most = max(self.objects)
        if most > len(self.colours):
            raise ValueError(f"{most} objects need {most} distinct colours but colours={self.colours}; add colours")
        for name in ("bounce", "enter_exit", "crossing", "camera"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}={getattr(self, name)} is a probability; use a value in 0..1")

    @property
    def extent(self) -> tuple[float, float]:
        """(width, height) of the frame in short-side units."""
        s = min(self.height, self.width)
        return self.width / s, self.height / s


EASY = WorldSpec()
HARD = WorldSpec(
    objects=(1, 2),
    motions=MOTIONS,
    speeds=("slow", "normal", "fast"),
    sizes=("small", "normal", "large"),
    bounce=0.2,
    enter_exit=0.2,
    crossing=0.3,
)


@dataclass(frozen=True)
class SceneObject:
    """One shape. x, y: centre at frame 0; vx, vy: velocity per frame; size: half-extent (all short-side units)."""

    colour: str
    shape: str
    motion: str
    size: float
    x: float
    y: float
    vx: float
    vy: float
    speed: str = "normal"
    size_class: str = "normal"
    event: str | None = None  # "bounce", "enter", "exit" or None

    @property
    def speed_word(self) -> str | None:
        """"slow"/"fast" when the caption should say so, else None."""
        return None if self.speed == "normal" or self.motion == "still" else self.speed

    @property
    def size_word(self) -> str | None:
        """"small"/"large" when the caption should say so, else None."""
        return None if self.size_class == "normal" else self.size_class


@dataclass(frozen=True)
class Scene:
    """Objects back to front (the last one is drawn on top); extent is the frame's (width, height) in short-side
    units; frames is the clip length the scene was sampled for. camera: a camera preset (flow.camera.PRESETS) that
    moves the whole picture at `camera_speed`, or None for a static camera."""

    objects: tuple[SceneObject, ...]
    extent: tuple[float, float] = (1.0, 1.0)
    frames: int = 17
    camera: str | None = None
    camera_speed: float = 1.0


@dataclass
class Clip:
    """frames: float32 [T,H,W,3] in 0..1; caption in `language`; frame_template_id: which sentence frame of that
    language wrote the caption."""

    frames: np.ndarray
    caption: str
    language: str
    scene: Scene
    frame_template_id: int

    def uint8(self) -> np.ndarray:
        """uint8 [T,H,W,3]."""
        return to_uint8(self.frames)


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """float [T,H,W,3] in 0..1 -> uint8 [T,H,W,3] (rounded, clipped)."""
    return np.clip(np.rint(np.asarray(frames, np.float32) * 255.0), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------------------------------
# geometry


def shape_polygon(shape: str, size: float) -> np.ndarray | None:
    """Vertices [N,2] (x, y; y down) around the centre, or None for a circle. Triangles point up and stars have a
    point up; both are centred on their bounding box so that "the centre" means the same thing for every shape."""
    if shape == "circle":
        return None
    if shape == "square":
        h = 0.85 * size  # about the circle's area, so no shape is much easier to see than another
        return np.array([[-h, -h], [h, -h], [h, h], [-h, h]])
    if shape == "triangle":
        r = 1.25 * size  # circumradius: equilateral triangles look small next to circles of the same extent
        hw, hh = r * math.sqrt(3) / 2, 0.75 * r
        return np.array([[0.0, -hh], [hw, hh], [-hw, hh]])
    if shape == "star":
        r = 1.2 * size
        k = np.arange(10)
        radius = np.where(k % 2 == 0, r, r * _STAR_INNER)
        angle = k * math.pi / 5
        pts = np.stack([radius * np.sin(angle), -radius * np.cos(angle)], axis=1)
        pts[:, 1] -= (pts[:, 1].max() + pts[:, 1].min()) / 2
        return pts
    raise ValueError(f"unknown shape {shape!r}; expected one of {ALL_SHAPES}")


def half_extent(shape: str, size: float) -> tuple[float, float]:
    """(half width, half height) of the shape's bounding box, short-side units."""
    poly = shape_polygon(shape, size)
    if poly is None:
        return size, size
    return float(np.abs(poly[:, 0]).max()), float(np.abs(poly[:, 1]).max())


def _polygon_sdf(px: np.ndarray, py: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Exact signed distance (negative inside) from points to a simple polygon (Inigo Quilez's sdPolygon)."""
    d = (px - poly[0, 0]) ** 2 + (py - poly[0, 1]) ** 2
    sign = np.ones_like(px)
    n = len(poly)
    for i in range(n):
        (xi, yi), (xj, yj) = poly[i], poly[i - 1]
        ex, ey = xj - xi, yj - yi
        wx, wy = px - xi, py - yi
        t = np.clip((wx * ex + wy * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        bx, by = wx - ex * t, wy - ey * t
        d = np.minimum(d, bx * bx + by * by)
        # crossing-number parity flips the sign for points inside
        c1, c2, c3 = py >= yi, py < yj, ex * wy > ey * wx
        flip = (c1 & c2 & c3) | (~c1 & ~c2 & ~c3)
        sign = np.where(flip, -sign, sign)
    return sign * np.sqrt(d)


def _shape_sdf(shape: str, size: float, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    if shape == "circle":
        return np.sqrt(dx * dx + dy * dy) - size
    if shape == "square":
        h = 0.85 * size
        qx, qy = np.abs(dx) - h, np.abs(dy) - h
        return np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)
    return _polygon_sdf(dx, dy, shape_polygon(shape, size))


def _reflect(q: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Fold positions into [lo, hi] as a ball bouncing between two walls would (a triangle wave)."""
    span = hi - lo
    if span <= 0:
        return np.full_like(q, (lo + hi) / 2)
    m = np.mod(q - lo, 2 * span)
    return lo + np.where(m <= span, m, 2 * span - m)


def object_path(obj: SceneObject, frames: int, extent: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Centres [T,2] (x, y) of `obj` over `frames` frames; bouncing objects are folded back inside the walls."""
    t = np.arange(frames, dtype=np.float64)
    xs, ys = obj.x + obj.vx * t, obj.y + obj.vy * t
    if obj.event == "bounce":
        hx, hy = half_extent(obj.shape, obj.size)
        xs = _reflect(xs, hx, extent[0] - hx)
        ys = _reflect(ys, hy, extent[1] - hy)
    return np.stack([xs, ys], axis=1)


# ----------------------------------------------------------------------------------------------------------------
# rendering


def _paint(frame: np.ndarray, obj: SceneObject, cx: float, cy: float, scale: float, rgb: np.ndarray) -> None:
    """Alpha-composite one anti-aliased object onto frame [H,W,3] in place; scale = pixels per unit."""
    h, w = frame.shape[:2]
    hx, hy = half_extent(obj.shape, obj.size)
    x0, x1 = max(math.floor((cx - hx) * scale - 1), 0), min(math.ceil((cx + hx) * scale + 1), w)
    y0, y1 = max(math.floor((cy - hy) * scale - 1), 0), min(math.ceil((cy + hy) * scale + 1), h)
    if x0 >= x1 or y0 >= y1:
        return
    px = (np.arange(x0, x1) + 0.5) / scale - cx
    py = (np.arange(y0, y1) + 0.5) / scale - cy
    dx, dy = np.meshgrid(px, py)
    # coverage ramps over one pixel across the edge: anti-aliased, but as sharp as the grid allows
    alpha = np.clip(0.5 - _shape_sdf(obj.shape, obj.size, dx, dy) * scale, 0.0, 1.0).astype(np.float32)
    region = frame[y0:y1, x0:x1]
    region += (rgb - region) * alpha[..., None]


def render(scene: Scene, frames: int | None = None, height: int = 64, width: int | None = None) -> np.ndarray:
    """Draw a scene: float32 [T,H,W,3] in 0..1 on black. frames defaults to scene.frames, width to the scene's
    aspect times height. The same scene gives the same picture at any resolution of the same aspect."""
    frames = scene.frames if frames is None else frames
    width = round(height * scene.extent[0] / scene.extent[1]) if width is None else width
    if frames < 1 or height < 1 or width < 1:
        raise ValueError(f"cannot render frames={frames}, height={height}, width={width}; all must be >= 1")
    if abs(width / height - scene.extent[0] / scene.extent[1]) > 0.02:
        raise ValueError(
            f"{width}x{height} does not match the scene's aspect {scene.extent[0]:.3f}:{scene.extent[1]:.3f}; "
            "render at that aspect or sample the scene for this frame size"
        )
    scale = min(height, width) / min(scene.extent)
    out = np.zeros((frames, height, width, 3), np.float32)
    for obj in scene.objects:
        rgb = np.asarray(COLOUR_RGB[obj.colour], np.float32)
        for t, (cx, cy) in enumerate(object_path(obj, frames, scene.extent)):
            _paint(out[t], obj, float(cx), float(cy), scale, rgb)
    if scene.camera is not None:
        import cv2  # here, not at the top: most of the world's users never film a camera move

        from aiprod_core.flow.camera import camera_affine

        for t in range(1, frames):
            move = camera_affine(scene.camera, height, width, scene.camera_speed, frames=t)
            out[t] = cv2.warpAffine(out[t], move, (width, height), flags=cv2.INTER_LINEAR, borderValue=0)
    return out


# ----------------------------------------------------------------------------------------------------------------
# sampling


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _interval(lo: float, hi: float, d: float, travel: float) -> tuple[float, float]:
    """Start positions on one axis that keep the whole straight path inside [lo, hi]."""
    return (lo, hi - d * travel) if d >= 0 else (lo - d * travel, hi)


def _place(
    rng: np.random.Generator, d: tuple[float, float], travel: float, bounds: list[tuple[float, float]], event: str | None
) -> tuple[float, float] | None:
    """Start (x, y) for a path of length `travel` along unit vector d, or None when it cannot fit."""
    start = []
    main = int(abs(d[1]) > abs(d[0]))  # the axis the object mostly moves along
    for axis in (0, 1):
        lo, hi = bounds[axis]
        da, span = d[axis], abs(d[axis]) * travel
        if hi < lo:
            return None
        if event == "bounce" and axis == main:
            # hit the wall between 15% and 60% of the way, so the bounce is seen
            near = rng.uniform(0.15, 0.6) * span
            start.append(hi - near if da > 0 else lo + near)
        elif event in ("enter", "exit") and axis == main:
            # lo is the half-extent (bounds are [half, extent - half]): 1.8-2.6 of it beyond the inner limit puts
            # the centre 0.8-1.6 half-extents past the edge, so the object is (almost) entirely outside
            out = lo * rng.uniform(1.8, 2.6)
            if event == "enter":
                first = lo - out if da > 0 else hi + out
                last = first + da * travel
                if not lo <= last <= hi:
                    return None
            else:
                last = hi + out if da > 0 else lo - out
                first = last - da * travel
                if not lo <= first <= hi:
                    return None
            start.append(first)
        else:
            a, b = _interval(lo, hi, da, travel)
            if b < a:
                return None
            start.append(rng.uniform(a, b))
    return start[0], start[1]


def _sample_object(rng: np.random.Generator, spec: WorldSpec, colour: str) -> SceneObject:
    """One object whose whole path fits the frame (unless it enters or leaves it)."""
    ex, ey = spec.extent
    shape = _pick(rng, spec.shapes)
    motion = _pick(rng, spec.motions) if spec.frames > 1 else "still"  # images cannot show motion
    d = DIRECTION_VECTORS[motion]
    steps = max(spec.frames - 1, 1)
    for attempt in range(33):
        # the last attempt falls back to a normal size and speed, which always fit
        size_class = _pick(rng, spec.sizes) if attempt < 32 else "normal"
        speed = _pick(rng, spec.speeds) if motion != "still" and attempt < 32 else "normal"
        size = rng.uniform(*SIZE_RANGES[size_class])
        travel = rng.uniform(*TRAVEL_RANGES[speed]) if motion != "still" else 0.0
        event = None
        if motion != "still" and attempt < 32:
            if rng.random() < spec.bounce:
                event = "bounce"
            elif motion in BASIC_MOTIONS and rng.random() < spec.enter_exit:
                event = _pick(rng, ("enter", "exit"))
        hx, hy = half_extent(shape, size)
        start = _place(rng, d, travel, [(hx, ex - hx), (hy, ey - hy)], event)
        if start is not None:
            return SceneObject(
                colour=colour,
                shape=shape,
                motion=motion,
                size=float(size),
                x=float(start[0]),
                y=float(start[1]),
                vx=d[0] * travel / steps,
                vy=d[1] * travel / steps,
                speed=speed,
                size_class=size_class,
                event=event,
            )
    raise RuntimeError(f"could not place a {shape} moving {motion} in a {spec.width}x{spec.height} frame")


def _radius(obj: SceneObject) -> float:
    return max(half_extent(obj.shape, obj.size))


def _apart(a: SceneObject, b: SceneObject, spec: WorldSpec) -> bool:
    """True when the two objects never touch during the clip."""
    pa, pb = object_path(a, spec.frames, spec.extent), object_path(b, spec.frames, spec.extent)
    return bool(np.min(np.hypot(*(pa - pb).T)) > _radius(a) + _radius(b) + 0.02)


_OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}


def _crossing(rng: np.random.Generator, a: SceneObject, b: SceneObject, spec: WorldSpec) -> SceneObject | None:
    """b moved onto a's line, going the other way and meeting a mid-clip; None when that path does not fit."""
    if a.motion not in _OPPOSITE or a.event or b.event:
        return None
    steps = max(spec.frames - 1, 1)
    axis = 0 if a.motion in ("left", "right") else 1
    va, travel_b = (a.vx, a.vy)[axis], math.hypot(b.vx, b.vy) * steps
    if travel_b == 0:
        travel_b = rng.uniform(*TRAVEL_RANGES["normal"])
    meet = (a.x, a.y)[axis] + va * steps / 2
    db = -math.copysign(1.0, va)
    first = meet - db * travel_b / 2
    hb = half_extent(b.shape, b.size)
    ext = spec.extent
    lo, hi = hb[axis], ext[axis] - hb[axis]
    if not (lo <= first <= hi and lo <= first + db * travel_b <= hi):
        return None
    # offset across the line so that the crossing is a partial occlusion, not a perfect eclipse
    other = (a.y, a.x)[axis] + rng.uniform(-0.5, 0.5) * min(a.size, b.size)
    olo, ohi = hb[1 - axis], ext[1 - axis] - hb[1 - axis]
    other = min(max(other, olo), ohi)
    v = db * travel_b / steps
    motion = _OPPOSITE[a.motion]
    x, y = (first, other) if axis == 0 else (other, first)
    vx, vy = (v, 0.0) if axis == 0 else (0.0, v)
    speed = b.speed if b.motion != "still" else "normal"
    return dataclasses.replace(b, motion=motion, x=x, y=y, vx=vx, vy=vy, speed=speed)


def sample_scene(rng: np.random.Generator, spec: WorldSpec = EASY) -> Scene:
    """A random scene for `spec`. Two objects always differ in colour; unless their paths are made to cross they are
    kept apart, so that captions and colour-mask classification stay unambiguous."""
    menu = spec.objects  # no draw when there is no choice, as (min, max) ranges had: old recipes give the same scenes
    count = menu[0] if len(set(menu)) == 1 else int(menu[int(rng.integers(len(menu)))])
    colours = [str(c) for c in rng.permutation(np.array(spec.colours))[:count]]
    objects = [_sample_object(rng, spec, colours[0])]
    if count == 2:
        cross = spec.frames > 1 and rng.random() < spec.crossing
        second = _sample_object(rng, spec, colours[1])
        crossed = _crossing(rng, objects[0], second, spec) if cross else None
        if crossed is not None:
            second = crossed
        else:
            for _ in range(24):
                if _apart(objects[0], second, spec):
                    break
                second = _sample_object(rng, spec, colours[1])
        objects.append(second)
    camera, speed = None, 1.0
    # drawn only when the spec asks for camera moves, so that other specs keep the scenes they always had
    if spec.camera > 0 and spec.frames > 1 and all(o.motion == "still" for o in objects) and rng.random() < spec.camera:
        from aiprod_core.flow.camera import PRESETS

        camera, speed = _pick(rng, PRESETS), float(rng.uniform(0.5, 1.5))
    return Scene(objects=tuple(objects), extent=spec.extent, frames=spec.frames, camera=camera, camera_speed=speed)
