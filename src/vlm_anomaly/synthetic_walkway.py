"""A generated walkway where direction and crowds matter: single walkers on lanes and a tight group
of walkers, all going one way (or, with ``both_ways``, the upper lanes one way and the lower lanes
and the group the other), with what a fixed camera over a walkway must notice: someone walking
against the flow, a cyclist riding through or beside the group, a cart pushed at walking speed.

Why its own module: the position-free ``object`` attribute cannot see any of these (a walker going
the wrong way has a walker's speed and size; a cyclist inside a group is part of one connected
region moving at the group's speed), so tests and benchmarks of direction and crowds need a scene
where exactly that happens, written as real encoded video.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .synthetic import encode_rgb, textured_background

#: single walkers: lane (frame heights), speed (frame widths/s), start (frame widths)
WALKERS = ((0.50, 0.030, 0.1), (0.53, 0.045, 0.7), (0.56, 0.060, 0.4), (0.60, 0.040, 0.9),
           (0.63, 0.055, 0.2), (0.76, 0.035, 0.5))
#: the group: rows x cols walkers at this speed (frame widths/s), on the lower half of the path
GROUP_SPEED = 0.05
GROUP_ROWS, GROUP_COLS = 3, 8
GROUP_STEP = 0.045  # frame widths between the group's walkers
#: what may happen in a clip, between ``span`` seconds of it
KINDS = ("wrong_way", "cyclist", "cyclist_beside", "cart")


def _person(img: np.ndarray, x: float, y: float, colour=(40, 60, 140), width: float = 1.0) -> None:
    h, w = img.shape[:2]
    r = max(3, h // 40)
    xi, yi = int(x * w), int(y * h)
    cv2.circle(img, (xi, yi - 3 * r), r, (60, 40, 30), -1)
    cv2.rectangle(img, (xi - int(r * width), yi - 2 * r), (xi + int(r * width), yi + 2 * r), colour, -1)


def group_x(t: float, cols: int = GROUP_COLS) -> float:
    """Left edge of a group ``cols`` walkers long at scene time ``t`` (frame widths): it enters on
    the left, leaves on the right and comes back (out of view while it jumps back)."""
    off = 0.09 + cols * GROUP_STEP
    return (0.1 + GROUP_SPEED * t) % (1.0 + 2 * off) - off


def walkway_frame(t: float, w: int = 320, h: int = 240, *, kind: str = "", clip_t: float = 0.0,
                  span: tuple[float, float] = (4.0, 8.0), both_ways: bool = False,
                  group_cols: int = GROUP_COLS, bg: np.ndarray | None = None) -> np.ndarray:
    """The walkway at scene time ``t`` (``clip_t`` seconds into the clip), RGB.

    ``kind`` (during ``span`` of the clip): "wrong_way": a walker going left at a walker's speed
    ahead of the group; "cyclist": someone twice a walker's width riding through the group at 4x its
    speed; "cyclist_beside": the same just above the group; "cart": a low, wide object pushed at
    the group's speed along the upper lanes. ``both_ways``: the upper lanes walk left;
    ``group_cols``: how many walkers long the group is."""
    if kind and kind not in KINDS:
        raise ValueError(f"unknown walkway event {kind!r}; choose from {', '.join(KINDS)}")
    img = (bg if bg is not None else textured_background(w, h, 0)).copy()
    for i, (y, v, x0) in enumerate(WALKERS):
        sign = -1 if both_ways and i % 2 else 1
        _person(img, (x0 + sign * v * t) % 1.4 - 0.2, y)
    x0 = group_x(t, group_cols)
    for i in range(GROUP_ROWS):
        for j in range(group_cols):
            _person(img, x0 + j * GROUP_STEP + 0.01 * (i % 2), 0.64 + i * 0.05, (40 + 20 * i, 60, 140 - 10 * j))
    if kind and span[0] <= clip_t < span[1]:
        s = clip_t - span[0]
        if kind == "wrong_way":
            _person(img, 0.95 - GROUP_SPEED * s, 0.47)
        elif kind in ("cyclist", "cyclist_beside"):
            y = 0.69 if kind == "cyclist" else 0.58
            _person(img, x0 - 0.05 + 3 * GROUP_SPEED * s, y, (20, 25, 45), width=2.0)
        else:  # cart: lower than a person, three times as wide, dark
            r = max(3, h // 40)
            x = int((0.05 + GROUP_SPEED * s) * w)
            yi = int(0.47 * h)
            cv2.rectangle(img, (x - 3 * r, yi - r), (x + 3 * r, yi + 2 * r), (30, 30, 30), -1)
    return img


def write_walkway(path: str | Path, *, start_s: float = 0.0, seconds: float = 40.0, fps: float = 10.0,
                  size: tuple[int, int] = (320, 240), kind: str = "", span: tuple[float, float] = (4.0, 8.0),
                  both_ways: bool = False, group_cols: int = GROUP_COLS) -> Path:
    """An H.264 clip of the walkway from scene time ``start_s``; ``kind`` happens during ``span``
    seconds of the clip (see :func:`walkway_frame`)."""
    w, h = size
    bg = textured_background(w, h, 0)
    frames = (walkway_frame(start_s + i / fps, w, h, kind=kind, clip_t=i / fps, span=span,
                            both_ways=both_ways, group_cols=group_cols, bg=bg)
              for i in range(int(seconds * fps)))
    return encode_rgb(path, frames, fps=fps, size=size)
