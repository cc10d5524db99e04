"""Generated scenes for demos, tests and benchmarks: a "normal" street and one with an intruder.

Why generated: tests and the demo must run offline, with real encoded files, and know exactly
which frames are anomalous.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import av
import cv2
import numpy as np


def textured_background(w: int, h: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = (90, 110, 95)  # grass
    cv2.rectangle(img, (0, int(h * 0.45)), (w, int(h * 0.8)), (150, 150, 150), -1)  # path
    for x in range(0, w, max(8, w // 12)):
        cv2.line(img, (x, int(h * 0.45)), (x + w // 20, int(h * 0.8)), (135, 135, 135), 1)
    noise = rng.integers(0, 12, size=img.shape, dtype=np.uint8)
    return cv2.add(img, noise)


def render_frame(
    t: float, w: int, h: int, *, anomaly: bool = False, seed: int = 0, bg: np.ndarray | None = None
) -> np.ndarray:
    """One RGB frame at time ``t`` seconds: walkers on a path, plus an intruder when ``anomaly``."""
    img = (bg if bg is not None else textured_background(w, h, seed)).copy()
    rng = np.random.default_rng(seed)
    n = 4
    speeds = rng.uniform(0.03, 0.06, n)
    offs = rng.uniform(0, 1, n)
    r = max(3, h // 40)
    for k in range(n):
        # walkers leave the view on one side before they come back on the other (walking in and
        # out, as people do; not vanishing at one edge and popping up whole at the other)
        x = int(((offs[k] + speeds[k] * t) % 1.0) * (w + 4 * r)) - 2 * r
        y = int(h * (0.5 + 0.25 * k / n))
        cv2.circle(img, (x, y - 3 * r), r, (60, 40, 30), -1)  # head
        cv2.rectangle(img, (x - r, y - 2 * r), (x + r, y + 2 * r), (40, 60, 140), -1)  # body
    if anomaly:
        cx = int((0.2 + 0.6 * ((t * 0.5) % 1.0)) * w)
        cy = int(h * 0.6)
        bw, bh = w // 4, h // 4
        cv2.rectangle(img, (cx - bw // 2, cy - bh // 2), (cx + bw // 2, cy + bh // 2), (220, 30, 30), -1)
        cv2.circle(img, (cx - bw // 3, cy + bh // 2), bh // 4, (20, 20, 20), -1)
        cv2.circle(img, (cx + bw // 3, cy + bh // 2), bh // 4, (20, 20, 20), -1)
        cv2.putText(img, "!", (cx - 5, cy + 5), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 0), 2)
    return img


def write_video(path: str | Path, *, seconds: float = 6.0, fps: float = 10.0, size: tuple[int, int] = (320, 240),
                anomaly_span: tuple[float, float] | None = None, seed: int = 0, codec: str | None = None,
                start_s: float = 0.0, display_rotation: int = 0) -> Path:
    """Encode a synthetic scene to ``path`` (mp4/avi/mkv/mov/webm by extension).

    ``anomaly_span`` = (start s, end s) of the file during which an intruder crosses the scene.
    ``start_s`` starts the clip later in the same scene (same camera, walkers elsewhere), so
    tests can score moments that no training clip showed. ``display_rotation`` (degrees, a multiple
    of 90) stores the clip as a phone does: pictures turned the other way, with a display matrix
    that turns them upright again.

    Example:
        >>> write_video("/tmp/normal.mp4", seconds=2)  # doctest: +SKIP
    """
    w, h = size
    codec = codec or {".avi": "mpeg4", ".webm": "libvpx", ".mkv": "libx264"}.get(Path(path).suffix.lower(), "libx264")
    bg = textured_background(w, h, seed)

    def frame(i: int) -> np.ndarray:
        anom = anomaly_span is not None and anomaly_span[0] <= i / fps < anomaly_span[1]
        img = render_frame(start_s + i / fps, w, h, anomaly=anom, seed=seed, bg=bg)
        return np.ascontiguousarray(np.rot90(img, -k)) if k else img

    k = display_rotation // 90 % 4
    stored = (h, w) if k % 2 else (w, h)
    return encode_rgb(path, (frame(i) for i in range(int(round(seconds * fps)))), fps=fps, size=stored, codec=codec,
                      display_rotation=display_rotation)


def encode_rgb(path: str | Path, frames: Iterable[np.ndarray], *, fps: float, size: tuple[int, int],
               codec: str = "libx264", options: dict | None = None, bit_rate: int = 0,
               display_rotation: int = 0) -> Path:
    """Encode RGB frames to ``path`` at ``fps``, resized to ``size`` (w, h) where they differ (yuv420p, MJPEG
    yuvj420p). ``options`` are FFmpeg encoder options (default: libx264 ultrafast, crf 23); ``bit_rate`` in bit/s."""
    from fractions import Fraction

    path = Path(path)
    with av.open(str(path), "w") as out:
        st = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        st.width, st.height = size
        st.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if bit_rate:
            st.bit_rate = int(bit_rate)
        if options is None and codec == "libx264":
            options = {"preset": "ultrafast", "crf": "23"}
        if options:
            st.options = options
        if display_rotation:
            st.set_display_rotation(display_rotation)  # counter-clockwise, as frames read it back
        for img in frames:
            if (img.shape[1], img.shape[0]) != tuple(size):
                img = cv2.resize(img, tuple(size), interpolation=cv2.INTER_AREA)
            for pkt in st.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
    return path


def write_frames(folder: str | Path, *, n: int = 20, size: tuple[int, int] = (160, 120), seed: int = 0,
                 fps: float = 10.0) -> Path:
    """Write a frame folder ``0.png, 1.png, ...`` of the synthetic scene."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    bg = textured_background(w, h, seed)
    for i in range(n):
        img = render_frame(i / fps, w, h, seed=seed, bg=bg)
        cv2.imwrite(str(folder / f"{i}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return folder


def reencode(source: str | Path, out: str | Path, *, codec: str = "mpeg4", options: dict | None = None,
             scale: float = 1.0, fps: float = 10.0, repeat: int = 1, bit_rate: int = 0, qscale: int = 0,
             max_frames: int = 0) -> Path:
    """Render a frame folder or video into ``out`` with another codec, size or rate.

    Why: a model trained on exports must hold on the camera's live stream, which is compressed and
    sized differently; tests and benchmarks make such streams from real footage with this.
    ``repeat`` writes each frame that many times (at ``fps`` times as many frames per second, the
    scene keeps its real speed); ``bit_rate`` (bit/s) or ``qscale`` (MJPEG/MPEG quality, 2-31)
    set the compression, ``options`` are FFmpeg encoder options (e.g. ``{"crf": "35"}``).
    """
    from itertools import chain

    from .video import sample_frames

    frames = (f.image for f in sample_frames(str(source), interval_ms=0, max_frames=max_frames))
    first = next(frames)  # sample_frames raises on a source without a decodable frame
    h, w = first.shape[:2]
    size = (max(2, int(round(w * scale / 2)) * 2), max(2, int(round(h * scale / 2)) * 2))
    opts = dict(options or {})
    if qscale:  # a fixed quantiser, like FFmpeg's -q:v
        opts.update({"qmin": str(int(qscale)), "qmax": str(int(qscale))})
    repeated = (img for img in chain([first], frames) for _ in range(max(1, repeat)))
    return encode_rgb(out, repeated, fps=fps, size=size, codec=codec, options=opts, bit_rate=bit_rate)


#: when the demo's intruder is on screen, in seconds of its test clip
DEMO_SPAN = (8.0, 14.0)


def demo_clips(folder: str | Path, *, normal: int = 6, seconds: float = 20.0) -> tuple[list[Path], Path]:
    """The demo's videos: ``normal`` clips of the street and a test clip with an intruder (``DEMO_SPAN``).

    Why this many, and why different moments: a model that has seen only one short clip knows those
    exact frames and little else, so ordinary moments it has not seen look anomalous. The normal
    clips follow each other (two minutes of the street by default: walkers everywhere they go), and the
    test clip shows a later moment no training clip contains, as a real camera would.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    clips = [write_video(folder / f"normal{i + 1}.mp4", seconds=seconds, seed=0, start_s=i * seconds)
             for i in range(normal)]
    test = write_video(folder / "intruder.mp4", seconds=seconds, seed=0, start_s=normal * seconds + 10,
                       anomaly_span=DEMO_SPAN)
    return clips, test


def _light(t: float, dim: tuple[float, float, float] | None) -> float:
    """Gain at ``t`` of a light ramp ``(start, end, low)``: down to ``low`` over 2 s, back over 2 s."""
    if dim is None:
        return 1.0
    t0, t1, low = dim
    if t < t0 or t > t1:
        return 1.0
    ramp = min(2.0, (t1 - t0) / 2)
    k = min(1.0, (t - t0) / ramp, (t1 - t) / ramp)
    return 1.0 - (1.0 - low) * k


def incident_frame(t: float, w: int, h: int, *, seed: int = 0, bg: np.ndarray | None = None,
                   standing: tuple[float, float] | None = None, covered: tuple[float, float] | None = None,
                   shifted: tuple[float, float] | None = None, frozen: tuple[float, float] | None = None,
                   blurred: tuple[float, float] | None = None,
                   dim: tuple[float, float, float] | None = None) -> np.ndarray:
    """The street at ``t`` with what a fixed camera must notice (each a ``(start, end)`` span):
    ``standing``: a box set down on the path that stays; ``covered``: the lens covered (almost
    black, flat); ``shifted``: the camera knocked aside (view moved by 12 % of the width, 6 % of
    the height); ``frozen``: the image stuck at the span's first frame; ``blurred``: defocused
    or sprayed (Gaussian blur of 3 % of the height). ``dim`` = (start, end, low): the whole
    scene's light down to ``low`` and back (a cloud, dusk) - normal, not an incident."""
    if frozen is not None and frozen[0] <= t < frozen[1]:
        t = frozen[0]
    base = (bg if bg is not None else textured_background(w, h, seed)).copy()
    if standing is not None and standing[0] <= t < standing[1]:
        x0, y0 = int(w * 0.42), int(h * 0.52)
        cv2.rectangle(base, (x0, y0), (x0 + w // 6, y0 + h // 6), (60, 70, 170), -1)
        cv2.rectangle(base, (x0 + 3, y0 + 3), (x0 + w // 6 - 3, y0 + h // 12), (200, 190, 60), -1)
    img = render_frame(t, w, h, seed=seed, bg=base)
    if shifted is not None and shifted[0] <= t < shifted[1]:
        m = np.float32([[1, 0, 0.12 * w], [0, 1, 0.06 * h]])
        img = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    if blurred is not None and blurred[0] <= t < blurred[1]:
        img = cv2.GaussianBlur(img, (0, 0), 0.03 * h)
    gain = _light(t, dim)
    if gain != 1.0:
        img = np.clip(img.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    if covered is not None and covered[0] <= t < covered[1]:
        rng = np.random.default_rng(int(t * 1000))
        img = np.clip(8 + rng.normal(0, 1.5, img.shape), 0, 255).astype(np.uint8)
    return img


def write_incident_video(path: str | Path, *, seconds: float = 20.0, fps: float = 10.0,
                         size: tuple[int, int] = (320, 240), seed: int = 0, start_s: float = 0.0,
                         **incidents) -> Path:
    """Encode the street with the incidents of :func:`incident_frame` (spans in seconds of the file)."""
    w, h = size
    bg = textured_background(w, h, seed)
    shift = {k: (v[0] + start_s, v[1] + start_s, *v[2:]) for k, v in incidents.items() if v is not None}
    frames = (incident_frame(start_s + i / fps, w, h, seed=seed, bg=bg, **shift)
              for i in range(int(round(seconds * fps))))
    return encode_rgb(path, frames, fps=fps, size=size)
