"""Choose the motion detector's density parameters on TRAINING clips only.

Leave-one-clip-out over the normal training clips; into each held-out clip synthetic anomalies are
pasted (a fast object, an object where nothing normally moves, an object that does not belong: a
large box moving at walking speed; and, see ``paste_flow_anomaly``: an object walking across or
against the usual direction, a fast object next to and inside a group of walkers, a cart at walking
speed). The AUC of held-out normal frames vs pasted frames ranks the candidate configurations. No
test clip or test label is read.

    PYTHONPATH=src python bench/motion_cv.py --data ../shared/data/ped2 --clips 01 02 ... --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from sklearn.metrics import roc_auc_score

from vlm_anomaly.motion.appearance import CropEmbedder
from vlm_anomaly.motion.extract import CellStream, extract_cells, learn_speed_floor
from vlm_anomaly.motion.features import GridConfig, grid_cols
from vlm_anomaly.motion.scorer import MotionConfig, MotionScorer
from vlm_anomaly.smoothing import moving_average
from vlm_anomaly.video import Frame, sample_frames


def paste_anomaly(frames: list[Frame], kind: str, rng: np.random.Generator, fps: float,
                  busy: np.ndarray) -> tuple[list[Frame], np.ndarray]:
    """Frames with a synthetic object pasted in the middle third of the clip, and 0/1 labels.

    ``busy`` (R, C) = share of training frames with motion per cell, to find where nothing goes."""
    n = len(frames)
    H, W = frames[0].image.shape[:2]
    span = min(n // 2, int(2.5 * fps))
    start = n // 2 - span // 2
    labels = np.zeros(n, np.int8)
    labels[start:start + span] = 1
    if kind == "fast":
        oh, ow, speed = 0.15, 0.06, 0.45  # person-sized, heights/s, ~4x a walker
        y = rng.uniform(0.4, 0.8)
    elif kind == "nowhere":
        oh, ow, speed = 0.15, 0.06, 0.10
        R, C = busy.shape
        r, _ = np.unravel_index(np.argmin(busy), busy.shape)
        y = (r + 0.5) / R
    else:  # "big": cart-like, walking speed
        oh, ow, speed = 0.28, 0.22, 0.10
        y = rng.uniform(0.45, 0.75)
    tex_src = frames[int(rng.integers(0, n))].image
    ph, pw = max(4, int(oh * H)), max(4, int(ow * W))
    ty, tx = int(rng.integers(0, H - ph)), int(rng.integers(0, W - pw))
    patch = np.clip(tex_src[ty:ty + ph, tx:tx + pw].astype(np.int16) - 70, 0, 255).astype(np.uint8)
    patch = cv2.GaussianBlur(patch, (3, 3), 0)
    direction = 1 if rng.random() < 0.5 else -1
    x_start = rng.uniform(0.1, 0.4) if direction > 0 else rng.uniform(0.6, 0.9)
    out = []
    for i, f in enumerate(frames):
        img = f.image
        if labels[i]:
            t = (i - start) / fps
            # speeds were set for frames played at 25 fps; the same displacement per frame at any
            # other rate (walkers move as many pixels per frame whatever rate the folder is played at)
            cx = (x_start + direction * speed * fps / 25.0 * H / W * t) % 1.0
            x0 = int(cx * W) - pw // 2
            y0 = int(y * H) - ph // 2
            img = img.copy()
            xa, xb = max(0, x0), min(W, x0 + pw)
            ya, yb = max(0, y0), min(H, y0 + ph)
            if xb > xa and yb > ya:
                img[ya:yb, xa:xb] = patch[ya - y0:yb - y0, xa - x0:xb - x0]
        out.append(Frame(f.index, f.timestamp, img, f.source))
    return out, labels


#: the kinds of ``paste_flow_anomaly`` (direction, crowds, a slow object that does not belong)
FLOW_KINDS = ("wrong_way", "crowd_fast", "cart")


@dataclass
class SceneStats:
    """What the pasted objects are made to contradict, measured on the training clips' features."""

    busy: np.ndarray  # (R, C) share of frames in which each cell moved
    direction: np.ndarray  # (8,) direction histogram of the busiest cells (all frames)
    walker_speed: float  # heights/s: median speed of the moving regions (at the bench's rate)


def scene_stats(feats: list) -> SceneStats:
    busy = np.mean(np.concatenate([c.motion[..., 3] > 0.05 for c in feats]), 0)
    top = busy >= np.quantile(busy, 0.75)
    hist = sum(c.direction[:, top, :8].sum((0, 1)) for c in feats)
    speed = float(np.median(np.concatenate([c.blobs[:, 5] for c in feats])))
    return SceneStats(busy, np.asarray(hist, np.float64), speed)


def _paste_path(frames: list[Frame], labels: np.ndarray, patch: np.ndarray,
                centre: Callable[[float], tuple[float, float]], fps: float) -> list[Frame]:
    """``frames`` with ``patch`` drawn centred at ``centre(t)`` (frame fractions) while labelled."""
    H, W = frames[0].image.shape[:2]
    ph, pw = patch.shape[:2]
    start = int(np.argmax(labels)) if labels.any() else 0
    out = []
    for i, f in enumerate(frames):
        img = f.image
        if labels[i]:
            cx, cy = centre((i - start) / fps)
            x0, y0 = int(cx * W) - pw // 2, int(cy * H) - ph // 2
            xa, xb, ya, yb = max(0, x0), min(W, x0 + pw), max(0, y0), min(H, y0 + ph)
            if xb > xa and yb > ya:
                img = img.copy()
                img[ya:yb, xa:xb] = patch[ya - y0:yb - y0, xa - x0:xb - x0]
        out.append(Frame(f.index, f.timestamp, img, f.source))
    return out


def paste_flow_anomaly(frames: list[Frame], kind: str, rng: np.random.Generator, fps: float,
                       stats: SceneStats, clean) -> tuple[list[Frame], np.ndarray]:
    """Frames with a synthetic object that moves wrongly for *this* scene, and 0/1 labels.

    ``wrong_way``: person-sized, at the walkers' speed, through the busiest row, in the direction
    the busiest cells moved least (across or against the usual flow). ``crowd_fast``: person-sized,
    3x the walkers' speed, through (half the clips) or just beside (the others) the largest moving
    group at the start of the span (``clean``: the clip's own features). ``cart``: lower and wider
    than a person, at the walkers' speed, along the busiest row."""
    n = len(frames)
    H, W = frames[0].image.shape[:2]
    span = min(n // 2, int(2.5 * fps))
    start = n // 2 - span // 2
    labels = np.zeros(n, np.int8)
    labels[start:start + span] = 1
    R, C = stats.busy.shape
    row = int(np.argmax(stats.busy.mean(1)))
    y = (row + 0.5) / R
    v = stats.walker_speed
    oh, ow = 0.15, 0.06 * H / W * 1.5  # frame heights tall, frame widths wide
    if kind == "wrong_way":
        b = int(np.argmin(stats.direction))
        ang = b * np.pi / 4  # bin 0 = left, clockwise: image velocity (-cos, -sin)
        dx, dy = -np.cos(ang) * v * H / W, -np.sin(ang) * v
        x_start, y_start = rng.uniform(0.3, 0.7), float(np.clip(y - dy * span / fps / 2, 0.1, 0.9))
    elif kind == "crowd_fast":
        sel = clean.blob_frame == start
        bl = clean.blobs[sel] if sel.any() else clean.blobs[clean.blob_frame >= start][:1]
        if len(bl):
            g = bl[int(np.argmax(bl[:, 2] * bl[:, 3]))]
            gx, gy, gw, gh = float(g[0]), float(g[1]), float(g[2]) * H / W, float(g[3])
        else:
            gx, gy, gw, gh = 0.5, y, 0.1, oh
        beside = rng.random() < 0.5
        y_start = float(np.clip(gy + (0.5 * (gh + oh) if beside else 0.0) * (1 if gy < 0.5 else -1), 0.1, 0.9))
        direction = 1 if rng.random() < 0.5 else -1
        x_start = gx - direction * (gw / 2 + 0.05)
        dx, dy = direction * 3 * v * H / W, 0.0
    else:  # cart
        oh, ow = 0.12, 0.22 * H / W
        direction = 1 if rng.random() < 0.5 else -1
        x_start, y_start = (rng.uniform(0.1, 0.3) if direction > 0 else rng.uniform(0.7, 0.9)), y
        dx, dy = direction * v * H / W, 0.0
    tex_src = frames[int(rng.integers(0, n))].image
    ph, pw = max(4, int(oh * H)), max(4, int(ow * W))
    ty, tx = int(rng.integers(0, H - ph)), int(rng.integers(0, W - pw))
    patch = np.clip(tex_src[ty:ty + ph, tx:tx + pw].astype(np.int16) - 70, 0, 255).astype(np.uint8)
    patch = cv2.GaussianBlur(patch, (3, 3), 0)
    return _paste_path(frames, labels, patch, lambda t: ((x_start + dx * t) % 1.0, y_start + dy * t), fps), labels


FIXED_CAMERA_KINDS = ("standing", "dark", "shifted", "dim")


def paste_fixed_camera(frames: list[Frame], kind: str, rng: np.random.Generator,
                       fps: float) -> tuple[list[Frame], np.ndarray]:
    """Frames with what a fixed camera must notice in the middle third of the clip, and 0/1 labels.

    "standing": a person-sized patch of another frame's texture, darkened, set down at a random
    place of the lower two thirds and left there; "dark": the lens covered (near-black, flat);
    "shifted": the view moved by 8 % of the width and 4 % of the height; "dim": the whole scene's
    light down to half over 2 s and back - normal (all labels 0)."""
    n = len(frames)
    H, W = frames[0].image.shape[:2]
    span = max(1, n // 3)
    start = n // 2 - span // 2
    labels = np.zeros(n, np.int8)
    if kind != "dim":
        labels[start:start + span] = 1
    ph, pw = max(4, int(0.18 * H)), max(4, int(0.10 * W))
    tex = frames[int(rng.integers(0, n))].image
    ty, tx = int(rng.integers(0, H - ph)), int(rng.integers(0, W - pw))
    patch = np.clip(tex[ty:ty + ph, tx:tx + pw].astype(np.int16) - 70, 0, 255).astype(np.uint8)
    y0, x0 = int(rng.uniform(0.35, 0.95) * H) - ph // 2, int(rng.uniform(0.1, 0.9) * W) - pw // 2
    y0, x0 = int(np.clip(y0, 0, H - ph)), int(np.clip(x0, 0, W - pw))
    ramp = max(1, int(2.0 * fps))
    out = []
    for i, f in enumerate(frames):
        img = f.image
        inside = start <= i < start + span
        if kind == "standing" and inside:
            img = img.copy()
            img[y0:y0 + ph, x0:x0 + pw] = patch
        elif kind == "dark" and inside:
            img = np.clip(8 + rng.normal(0, 1.5, img.shape), 0, 255).astype(np.uint8)
        elif kind == "shifted" and inside:
            m = np.float32([[1, 0, 0.08 * W], [0, 1, 0.04 * H]])
            img = cv2.warpAffine(img, m, (W, H), borderMode=cv2.BORDER_REFLECT)
        elif kind == "dim" and inside:
            k = min(1.0, (i - start) / ramp, (start + span - 1 - i) / ramp)
            img = np.clip(img.astype(np.float32) * (1.0 - 0.5 * k), 0, 255).astype(np.uint8)
        out.append(Frame(f.index, f.timestamp, img, f.source))
    return out, labels


def fixed_camera_cv(srcs, frames, cells, configs, fps: float) -> dict:
    """Leave-one-clip-out: per kind, the AUC of the incident frames against the clip's other frames
    and the share of incident frames flagged after the incident's first second; for "dim", the share
    of its frames flagged (normal: should be near 0)."""
    rng = np.random.default_rng(1)
    pasted = {(s, k): paste_fixed_camera(frames[s], k, rng, fps) for s in srcs for k in FIXED_CAMERA_KINDS}
    feats = {key: (cells(key[0], fr), lab) for key, (fr, lab) in pasted.items()}
    clean = {s: cells(s, frames[s]) for s in srcs}
    report = {}
    for name, cfg in configs:
        res: dict = {}
        per = {k: ([], [], []) for k in FIXED_CAMERA_KINDS}
        for s in srcs:
            sc = MotionScorer(cfg).fit_cells([clean[o] for o in srcs if o != s])
            for k in FIXED_CAMERA_KINDS:
                f, lab = feats[(s, k)]
                v = moving_average(sc.score_cells(f).scores, cfg.smoothing_window)
                late = lab.astype(bool) & (np.cumsum(lab) > int(fps))  # after the first second
                per[k][0].append(lab)
                per[k][1].append(v)
                per[k][2].append(late)
        for k, (ys, vs, lates) in per.items():
            y, v, late = np.concatenate(ys), np.concatenate(vs), np.concatenate(lates)
            if k == "dim":
                res["dim_flagged"] = round(float(np.mean(v < 0)), 4)
            else:
                res[f"auc_{k}"] = round(float(roc_auc_score(y, -v)), 4)
                res[f"flagged_{k}"] = round(float(np.mean(v[late] < 0)), 4)
                res[f"normal_flagged_{k}"] = round(float(np.mean(v[y == 0] < 0)), 4)
        report[name] = res
        print(name, res, flush=True)
    return report


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/ped2")
    ap.add_argument("--clips", nargs="*", default=[f"{i:02d}" for i in range(1, 17)])
    ap.add_argument("--json", default="")
    ap.add_argument("--only", nargs="*", default=[])
    ap.add_argument("--grid", default="{}", help='GridConfig fields as JSON, e.g. {"split_aspect": 0.75}')
    ap.add_argument("--fps", type=float, default=25.0,
                    help="rate the frame folders are played at (10: how the issue renders Ped2 as MP4)")
    ap.add_argument("--holdout", nargs="*", default=[],
                    help="hold out (and paste into) only these clips; all others still train (default: every clip)")
    ap.add_argument("--round", default="8",
                    help="'8': the direction/crowd candidates; '9': gated direction; '11': one-sided fusion "
                         "and edge regions (docs/motion.md, item 27); 'old': rounds 1-7")
    ap.add_argument("--fixed-camera", action="store_true",
                    help="score the fixed-camera incidents (standing object, dark lens, moved view, dimming)")
    ap.add_argument("--scene-margins", nargs="*", type=float, default=[],
                    help="with --fixed-camera: compare these scene margins instead of the v7 candidates")
    ap.add_argument("--encoder", default="efficientnet",
                    help="encoder for the appearance attribute's crops ('' = no appearance candidates)")
    args = ap.parse_args()
    grid = GridConfig(**json.loads(args.grid))
    srcs = [str(Path(args.data) / "train" / c) for c in args.clips]
    fps = args.fps
    frames = {s: list(sample_frames(s, interval_ms=0, folder_fps=fps)) for s in srcs}
    img0 = frames[srcs[0]][0].image
    cols = grid_cols(img0.shape[1] / img0.shape[0], grid.rows)
    # the moving-speed floor relative to the normal objects' speed (as MotionScorer.fit learns it;
    # from all clips here: one clip more or less barely moves a median)
    grid = learn_speed_floor(((s, ((f, True) for f in frames[s])) for s in srcs), grid, cols)
    print(f"moving-speed floor {grid.moving_speed:.4f} heights/s", flush=True)
    t0 = time.time()
    embedder = None
    if args.encoder:
        from vlm_anomaly.encoders.factory import create_encoder

        embedder = CropEmbedder(create_encoder(args.encoder))

    def cells(s: str, fr: list[Frame]):
        return extract_cells(s, grid, cols, frames=((f, True) for f in fr),
                             stream=CellStream(grid, cols, embedder=embedder))

    if args.fixed_camera:
        base = ("object", "appearance", "shape") if embedder is not None else ("object", "shape")
        # rule, written before the run: the scene_still with the most standing-object frames flagged,
        # among those that flag at most 10 % of dimmed frames and of every kind's normal frames
        configs = [("default", MotionConfig(grid=grid)),
                   ("scene_still 1.0", MotionConfig(grid=grid, scene_still=1.0)),
                   ("without scene, camera", MotionConfig(grid=grid, fused=base)),
                   ("without camera", MotionConfig(grid=grid, fused=(*base, "scene")))]
        if args.scene_margins:  # rule: docs/motion.md, v8
            configs = [(f"scene_margin {m:g}", MotionConfig(grid=grid, scene_margin=m)) for m in args.scene_margins]
        if embedder is None:
            configs = [(n, replace(c, fused=tuple(a for a in c.fused if a != "appearance"))) for n, c in configs]
        report = fixed_camera_cv(srcs, frames, cells, [c for c in configs if not args.only or c[0] in args.only], fps)
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1))
        return
    clean = {s: cells(s, frames[s]) for s in srcs}
    busy = np.mean(np.concatenate([c.motion[..., 3] > 0.05 for c in clean.values()]), 0)
    stats = scene_stats(list(clean.values()))
    held = [s for s in srcs if not args.holdout or Path(s).name in args.holdout]
    kinds = ("fast", "nowhere", "big") + FLOW_KINDS
    rng = np.random.default_rng(0)
    anomalous = {}
    for s in held:
        for kind in kinds:
            if kind in FLOW_KINDS:
                fr, lab = paste_flow_anomaly(frames[s], kind, rng, fps, stats, clean[s])
            else:
                fr, lab = paste_anomaly(frames[s], kind, rng, fps, busy)
            anomalous[(s, kind)] = (cells(s, fr), lab)
    print(f"features in {time.time() - t0:.0f} s", flush=True)
    v5 = ("object", "appearance", "shape")
    round8 = [  # fixed before any run of this round (docs/motion.md, "CV round 8")
        ("v5 object+appearance+shape", MotionConfig(grid=grid, fused=v5)),
        ("v5+direction p50", MotionConfig(grid=grid, fused=v5 + ("direction",))),
        ("v5+direction p200", MotionConfig(grid=grid, fused=v5 + ("direction",), place_examples=200)),
        ("v5+direction p0", MotionConfig(grid=grid, fused=v5 + ("direction",), place_examples=0)),
        ("object+appearance+direction p50", MotionConfig(grid=grid, fused=("object", "appearance", "direction"))),
        # round 8b, added after round 8's few-clip run: distances divided per cell
        ("v5+direction p0 norm", MotionConfig(grid=grid, fused=v5 + ("direction",), place_examples=0,
                                              place_norm=True)),
        ("v5+direction p50 norm", MotionConfig(grid=grid, fused=v5 + ("direction",), place_norm=True)),
    ]
    v7 = MotionConfig(grid=grid).fused
    v7d = v7[:3] + ("direction",) + v7[3:] if "direction" not in v7 else v7
    round9 = [  # fixed before any run of this round (docs/motion.md, "round 9")
        ("v7 without direction", MotionConfig(grid=grid, fused=tuple(a for a in v7 if a != "direction"))),
        ("v7+direction gated p50", MotionConfig(grid=grid, fused=v7d, place_examples=50, direction_margin=1.0)),
        ("v7+direction gated p0", MotionConfig(grid=grid, fused=v7d, place_examples=0, direction_margin=1.0)),
    ]
    round11 = [  # fixed before any run of this round (docs/motion.md, item 27)
        ("v10 default", MotionConfig(grid=grid)),
        ("evidence only", MotionConfig(grid=grid, evidence_only=True)),
        ("no edge regions", MotionConfig(grid=grid, edge_regions=False)),
        ("evidence only, no edge regions", MotionConfig(grid=grid, evidence_only=True, edge_regions=False)),
    ]
    candidates = round8 if args.round == "8" else round9 if args.round == "9" else round11 if args.round == "11" else [
        ("object k3", MotionConfig(grid=grid, fused=("object",), k_object=3)),
        ("object k1", MotionConfig(grid=grid, fused=("object",), k_object=1)),
        ("object+shape", MotionConfig(grid=grid, fused=("object", "shape"))),
        ("object+motion+shape", MotionConfig(grid=grid, fused=("object", "motion", "shape"))),
        ("motion+shape (v1)", MotionConfig(grid=grid, fused=("motion", "shape"))),
        ("object+shape r1", MotionConfig(grid=grid, fused=("object", "shape"), radius=1)),
        ("object+shape r2", MotionConfig(grid=grid, fused=("object", "shape"), radius=2)),
        # round 4: the moving regions' appearance through the encoder (crop embeddings, k-NN)
        ("object+appearance+shape", MotionConfig(grid=grid, fused=("object", "appearance", "shape"))),
        ("object+appearance+shape ka3", MotionConfig(grid=grid, fused=("object", "appearance", "shape"),
                                                     k_appearance=3)),
        ("object+appearance", MotionConfig(grid=grid, fused=("object", "appearance"))),
        ("appearance", MotionConfig(grid=grid, fused=("appearance",))),
    ]
    if embedder is None:
        candidates = [c for c in candidates if "appearance" not in c[1].fused]
    report = {}
    if args.only:
        candidates = [c for c in candidates if c[0] in args.only]
    for name, cfg in candidates:
        ys, ss, per_kind = [], [], {k: ([], []) for k in kinds}
        t1 = time.time()
        for s in held:
            sc = MotionScorer(cfg).fit_cells([clean[o] for o in srcs if o != s])
            for kind in per_kind:
                feats, lab = anomalous[(s, kind)]
                v = moving_average(sc.score_cells(feats).scores, cfg.smoothing_window)
                ys.append(lab)
                ss.append(v)
                per_kind[kind][0].append(lab)
                per_kind[kind][1].append(v)
        y, v = np.concatenate(ys), np.concatenate(ss)
        res = {"auc": round(float(roc_auc_score(y, -v)), 4),
               "flagged_normal": round(float(np.mean(v[y == 0] < 0)), 4),
               "detected_anomalous": round(float(np.mean(v[y == 1] < 0)), 4)}
        for m in (0.5, 1, 2, 3, 4):
            res[f"flagged_normal_margin{m}"] = round(float(np.mean(v[y == 0] < -m)), 4)
            res[f"detected_margin{m}"] = round(float(np.mean(v[y == 1] < -m)), 4)
        for kind, (yy, vv) in per_kind.items():
            res[f"auc_{kind}"] = round(float(roc_auc_score(np.concatenate(yy), -np.concatenate(vv))), 4)
        res["seconds"] = round(time.time() - t1, 1)
        report[name] = res
        print(name, res, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
