"""A generated plaza seen by a real camera: perspective paving, a facade, a swaying tree and walkers
whose size and speed follow their depth, with the nuisances real cameras add (sensor grain, IR
night mode in grayscale, auto-exposure/white-balance flicker, rain streaks, a slow sunlight/shadow
pan, low-bitrate H.264) and the incidents a fixed camera must notice (a person who walks in and
stands, a covered lens, a camera bumped a few pixels, someone moving 4x faster than the traffic).

Why its own look: the default was developed on ``synthetic``/``synthetic_walkway`` scenes; a check
of whether it carries to other cameras must not share their background, shapes, size or frame rate.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .synthetic import encode_rgb

SIZE = (640, 360)
FPS = 15.0
HORIZON = 0.34  # frame heights: where the paving meets the facade
#: lanes: depth (frame heights of the feet), direction, speed factor, start (frame widths)
LANES = ((0.46, 1, 1.0, 0.1), (0.50, -1, 0.9, 0.6), (0.56, 1, 1.1, 0.35), (0.63, -1, 1.0, 0.8),
         (0.70, 1, 0.85, 0.5), (0.80, -1, 1.05, 0.2), (0.92, 1, 0.95, 0.7), (0.52, -1, 1.2, 0.05))
WALK = 0.8  # body heights per second (about 1.4 m/s)
FAST_LANE = 4  # the lane the fast object uses, at 4x its walkers' speed
BUMP = (5.0, 3.0, 0.6)  # the bumped camera's shift (pixels right, down) and turn (degrees): a few pixels


@dataclass(frozen=True)
class Nuisance:
    """What the camera adds to the scene (all per frame, seeded by time: no two frames alike)."""

    grain: float = 0.0  # sensor noise, std in grey levels
    gray: bool = False  # IR night mode: grayscale, low contrast, vignetting
    flicker: float = 0.0  # auto-exposure gain jitter (fraction), white balance at half of it
    sway: float = 0.0  # foliage swing amplitude at the crown, pixels
    rain: int = 0  # streaks per frame
    shadow: bool = False  # a building's shadow edge panning slowly across the ground
    bit_rate: int = 0  # H.264 bit/s; 0: CRF 23


#: the scenes the bench and tests use
SCENES = {
    "clean": Nuisance(),
    "day_flicker_foliage_shadow": Nuisance(grain=4.0, flicker=0.04, sway=9.0, shadow=True),
    "ir_night_grain": Nuisance(grain=16.0, gray=True, flicker=0.03, sway=5.0, bit_rate=400_000),
    "rain_low_bitrate": Nuisance(grain=5.0, flicker=0.02, sway=12.0, rain=120, bit_rate=250_000),
}


def _height(y: float, h: int) -> float:
    """Person height in pixels with feet at ``y`` (frame heights): grows with nearness."""
    return max(6.0, (y - HORIZON + 0.04) * h * 0.55)


def background(w: int, h: int, seed: int = 7) -> np.ndarray:
    """Facade with windows above, perspective paving with per-tile shades below."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.uint8)
    hy = int(HORIZON * h)
    img[:hy] = (150, 110, 95)  # brick
    img[:hy] = np.clip(img[:hy].astype(int) + rng.integers(-14, 14, (hy, w, 1)), 0, 255)
    for x in range(20, w - 30, 64):
        for y in range(12, hy - 25, 38):
            cv2.rectangle(img, (x, y), (x + 30, y + 22), (70, 85, 100), -1)
            cv2.rectangle(img, (x, y), (x + 30, y + 22), (200, 190, 170), 2)
    vx = w * 0.55
    rows = [hy]
    step = 4.0
    while rows[-1] < h:
        rows.append(int(rows[-1] + step))
        step *= 1.18
    for i in range(len(rows) - 1):
        y0, y1 = rows[i], min(rows[i + 1], h)
        img[y0:y1] = np.array((175, 170, 160)) + rng.integers(-18, 18, 3)
    g = img[hy:]
    g[:] = np.clip(g.astype(int) + rng.integers(-10, 10, g.shape), 0, 255)
    for y in rows:
        cv2.line(img, (0, y), (w, y), (120, 115, 110), 1)
    for k in range(-12, 13):
        cv2.line(img, (int(vx + k * 8), hy), (int(vx + k * 140), h), (120, 115, 110), 1)
    cv2.rectangle(img, (int(0.1 * w), int(0.3 * h)), (int(0.1 * w) + 14, int(0.62 * h)), (70, 50, 35), -1)  # trunk
    return img


def foliage(w: int, h: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A crown of leaves (colour layer, alpha mask) to be swayed onto the frame."""
    rng = np.random.default_rng(seed)
    col = np.zeros((h, w, 3), np.uint8)
    alpha = np.zeros((h, w), np.uint8)
    cx, cy, r = 0.11 * w, 0.22 * h, 0.12 * w
    for _ in range(900):
        a, d = rng.uniform(0, 2 * np.pi), r * np.sqrt(rng.uniform())
        x, y = int(cx + d * np.cos(a)), int(cy + 0.8 * d * np.sin(a))
        c = tuple(int(v) for v in (rng.integers(20, 70), rng.integers(70, 140), rng.integers(15, 50)))
        ax = (int(rng.integers(3, 8)), int(rng.integers(2, 5)))
        ang = float(rng.uniform(0, 180))
        cv2.ellipse(col, (x, y), ax, ang, 0, 360, c, -1)
        cv2.ellipse(alpha, (x, y), ax, ang, 0, 360, 255, -1)
    return col, alpha


def _draw_person(img: np.ndarray, x: float, y: float, hgt: float, t: float, colour, still: bool = False) -> None:
    """A walker: head, torso, two legs whose stride swings with time (feet at ``(x, y)`` pixels)."""
    hw = hgt * 0.14
    head = hgt * 0.09
    hip = y - hgt * 0.45
    swing = 0.0 if still else np.sin(t * 2 * np.pi * 1.8) * hgt * 0.12
    xi = int(x)
    th = max(1, int(hgt * 0.07))
    cv2.line(img, (xi, int(hip)), (int(x + swing), int(y)), (35, 35, 45), th)
    cv2.line(img, (xi, int(hip)), (int(x - swing), int(y)), (35, 35, 45), th)
    cv2.ellipse(img, (xi, int(y - hgt * 0.65)), (int(hw), int(hgt * 0.22)), 0, 0, 360, colour, -1)
    cv2.circle(img, (xi, int(y - hgt * 0.9)), max(2, int(head)), (190, 150, 120), -1)


@functools.lru_cache(maxsize=4)
def _grid(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return yy, xx


def _colour(k: int) -> tuple[int, int, int]:
    palette = ((200, 60, 50), (40, 90, 170), (230, 200, 60), (60, 140, 80), (150, 60, 150), (240, 240, 235),
               (30, 30, 30), (230, 120, 40))
    return palette[k % len(palette)]


def _lane_x(k: int, t: float, w: int, h: int, factor: float = 1.0) -> float:
    y, d, f, s = LANES[k]
    hgt = _height(y, h)
    v = WALK * hgt * f * factor
    span = w + 4 * hgt
    x = (s * span + d * v * t) % span
    return x - 2 * hgt


def _fast_x(t: float, w: int, h: int) -> float:
    """Where the fast object's feet are ``t`` s after it appears: at 4x its lane's walkers' speed,
    against them, re-entering as it leaves."""
    y, d, f, _ = LANES[FAST_LANE]
    hgt = _height(y, h)
    return (-d * 4 * WALK * hgt * f * t) % (w + 2 * hgt) - hgt


def fast_in_view(t: float, size: tuple[int, int] = SIZE) -> bool:
    """Whether the fast object is wholly inside the view ``t`` s after it appears: in a narrow view
    it crosses in under a second and is out of it for much of the time (a detector cannot flag
    what is not there)."""
    w, h = size
    x, half = _fast_x(t, w, h), 0.14 * _height(LANES[FAST_LANE][0], h) + 2
    return bool(half < x < w - half)


def scene_frame(t: float, w: int, h: int, nz: Nuisance, layers, *, incident: str | None = None,
                span: tuple[float, float] = (10.0, 20.0), bump: tuple[float, float, float] = BUMP) -> np.ndarray:
    """The plaza at ``t`` seconds (``t`` counts from the incident clip's start where ``incident``);
    ``bump``: how far a ``bumped`` camera moved (pixels right, down; degrees turned)."""
    bg, leaves, alpha = layers
    img = bg.copy()
    if nz.shadow:  # a building's shadow: its edge moves 0.6 px/s and leans with depth
        yy, xx = _grid(w, h)
        edge = 0.15 * w + 0.6 * t + 0.5 * (yy - HORIZON * h)
        m = np.clip((edge - xx) / 25.0, 0, 1) * (yy > HORIZON * h)
        img = (img * (1.0 - 0.38 * m[..., None])).astype(np.uint8)
    people = []
    for k, (y, _, _, _) in enumerate(LANES):
        people.append((_lane_x(k, t, w, h), y * h, _height(y, h), _colour(k), False))
    inc = incident is not None and span[0] <= t < span[1]
    if incident == "standing":
        y, hgt = 0.74 * h, _height(0.74, h) * 1.05
        x_stop, v = 0.58 * w, WALK * hgt
        if t < span[0]:
            x = x_stop + v * (span[0] - t)  # walking in from the right
        elif t < span[1]:
            x = x_stop + np.sin(t * 1.3) * 1.2  # standing, swaying a little
        else:
            x = x_stop - v * (t - span[1])  # walking off to the left
        if -hgt < x < w + hgt:
            people.append((x, y, hgt, (90, 40, 160), span[0] <= t < span[1]))
    if incident == "fast" and inc:
        y, hgt = LANES[FAST_LANE][0], _height(LANES[FAST_LANE][0], h)
        people.append((_fast_x(t - span[0], w, h), y * h + 0.03 * h, hgt, (20, 170, 200), False))
    for x, y, hgt, c, still in sorted(people, key=lambda p: p[1]):
        _draw_person(img, x, y, hgt, t, c, still)
    if True:  # the crown swings (not at all without sway), its top more than its base
        ph = 2 * np.pi * t / 2.7
        dx = nz.sway * (np.sin(ph) + 0.35 * np.sin(2.3 * ph + 1.0))
        m = np.float32([[1, -dx / (0.2 * h), dx * 0.34 / 0.2], [0, 1, 0]])
        lv = cv2.warpAffine(leaves, m, (w, h))
        a = cv2.warpAffine(alpha, m, (w, h)).astype(np.float32)[..., None] / 255
        img = (img * (1 - a) + lv * a).astype(np.uint8)
    if incident == "bumped" and t >= span[0]:  # knocked a few pixels and left so
        m = cv2.getRotationMatrix2D((w / 2, h / 2), bump[2], 1.0)
        m[:, 2] += bump[:2]
        img = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    rng = np.random.default_rng(int(t * 1000) + 17)
    if nz.rain:
        for _ in range(nz.rain):
            x, y, ln = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(10, 24)
            cv2.line(img, (int(x), int(y)), (int(x + 0.2 * ln), int(y + ln)), (215, 215, 220), 1)
    f = img.astype(np.float32)
    if incident == "covered" and inc:  # a hand or a sticker over the lens: dark, a faint blur of light
        f = cv2.GaussianBlur(f, (0, 0), 25) * 0.07 + 4
    if nz.gray:
        g = f @ np.float32([0.3, 0.59, 0.11])
        g = 40 + 0.55 * g
        yy, xx = _grid(w, h)
        vig = 1 - 0.35 * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2) * 2
        f = np.repeat((g * vig)[..., None], 3, axis=2)
    if nz.flicker:
        gain = 1 + nz.flicker * rng.standard_normal()
        wb = 1 + 0.5 * nz.flicker * rng.standard_normal(3) if not nz.gray else np.ones(3)
        f = f * np.float32(gain) * wb.astype(np.float32)
    if nz.grain:
        n = np.empty((h, w, 1) if nz.gray else (h, w, 3), np.float32)
        cv2.setRNGSeed(int(t * 1000) + 29)
        cv2.randn(n, 0.0, nz.grain)
        f = f + n
    return np.clip(f, 0, 255).astype(np.uint8)


def write_scene(path: str | Path, scene: str | Nuisance, *, seconds: float = 20.0, start_s: float = 0.0,
                incident: str | None = None, span: tuple[float, float] = (10.0, 20.0),
                size: tuple[int, int] = SIZE, fps: float = FPS, bump: tuple[float, float, float] = BUMP) -> Path:
    """Encode ``seconds`` of the plaza from scene time ``start_s`` to ``path`` (H.264), with ``incident``
    (``standing``, ``covered``, ``bumped``, ``fast``) between ``span`` seconds of the file (``bumped``
    stays from ``span[0]`` to the end)."""
    nz = SCENES[scene] if isinstance(scene, str) else scene
    w, h = size
    leaves, alpha = foliage(w, h)
    layers = (background(w, h), leaves, alpha)
    sp = (span[0] + start_s, span[1] + start_s)
    frames = (scene_frame(start_s + i / fps, w, h, nz, layers, incident=incident, span=sp, bump=bump)
              for i in range(int(round(seconds * fps))))
    opts = {"preset": "ultrafast"} if nz.bit_rate else None
    return encode_rgb(path, frames, fps=fps, size=size, options=opts, bit_rate=nz.bit_rate)
