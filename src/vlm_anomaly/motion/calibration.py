"""k-NN distances and calibration on normal data alone, shared by every motion attribute.

Why k-NN: it needs no training beyond storing normal examples, works in any feature space and
explains itself (the nearest normal example *is* the explanation). Why held-aside calibration:
distances of different attributes live on different scales; each is turned into a robust z-score
using distances of normal frames measured against a bank that does not contain their own clip,
so the scale reflects how far *new* normal data falls, not the zero distance of a memorised frame.
The k-NN, robust z and projection are the project's shared ones (``detectors.neighbours``,
``detectors.calibration``, imported from there); what is motion's own is the leave-one-clip-out
loop and the threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..smoothing import moving_average


def leave_one_group_out(groups: np.ndarray, value: Callable[[np.ndarray], np.ndarray], n: int) -> np.ndarray:
    """Per-frame held-out values: ``value(g_mask)`` gives the values of the frames of group ``g``
    (in frame order) measured against what was learnt from every other group."""
    out = np.zeros(n)
    for g in np.unique(groups):
        sel = groups == g
        out[sel] = value(sel)
    return out


def fit_threshold(fused: np.ndarray, groups: np.ndarray, slices: Sequence[slice], window: int,
                  target_false_alarm: float, rule: str) -> tuple[float, float, float]:
    """(threshold, share of held-out frames over it, output unit) from held-out fused values.

    The threshold flags ``target_false_alarm`` of the held-out normal frames after smoothing like
    scoring does ("clip": the highest per-clip quantile; "pooled": the quantile of all). The unit
    is the gap between a typical normal frame and the threshold, so that a typical normal frame
    scores +1, the threshold 0, and hysteresis margins mean the same anywhere."""
    smooth = np.concatenate([moving_average(fused[sl], window) for sl in slices])
    q = 1.0 - target_false_alarm
    if rule == "clip" and len(np.unique(groups)) >= 2:
        thr = max(float(np.quantile(smooth[groups == g], q)) for g in np.unique(groups))
    else:
        thr = float(np.quantile(smooth, q))
    flagged = float(np.mean(smooth > thr))
    unit = max(thr - float(np.median(smooth)), 1e-6)
    return thr, flagged, unit


#: fewer training clips than this and training warns (see :func:`few_clips_warning`)
MIN_CALIBRATION_CLIPS = 9


def few_clips_warning(n_clips: int) -> str:
    """What a user must know when the threshold rests on fewer than ``MIN_CALIBRATION_CLIPS`` clips
    ("" otherwise).

    Why: the threshold is the highest per-clip quantile of held-out clips, so it covers a new clip
    of normal activity only as often as that clip is no more unusual than every one of the ``n``
    seen; for exchangeable clips that fails with a chance of 1 / (n + 1) (25 % with 3 clips, 10 %
    with 9). Few short clips of one moment leave out normal moments of the camera (someone nearer
    the camera, a larger group), which then score as anomalous at any frame size: longer clips of the same
    moments do not help, clips of other moments do (docs/motion.md, item 24)."""
    if n_clips >= MIN_CALIBRATION_CLIPS:
        return ""
    return (f"the threshold was calibrated on only {n_clips} training clip{'s' if n_clips != 1 else ''}: "
            f"new normal footage more unusual than all of them (a chance of about 1 in {n_clips + 1}: someone "
            f"nearer the camera, a larger group) is flagged at any frame size; add clips from other times of day "
            f"(at least {MIN_CALIBRATION_CLIPS} in all)")
