"""How fast a cyclist inside a group of walkers is measured by each optical-flow setting, and what
each costs: the synthetic walkway's 16-walker group (``vlm_anomaly.synthetic_walkway``), two frames
0.1 s apart at five moments while the cyclist rides inside it, at the motion detector's working
size (160 px high). Ratio: the p90 speed of the cyclist's box over the p90 speed of the group in the
same moments without the cyclist (the cyclist truly moves 4x the walkers).

    PYTHONPATH=src python bench/flow_levels.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from vlm_anomaly.motion.features import FlowEngine, GridConfig, work_gray
from vlm_anomaly.synthetic import textured_background
from vlm_anomaly.synthetic_walkway import GROUP_STEP, group_x, walkway_frame

LONG_START, COLS = 168.0, 16


def _dis(preset: int, finest: int | None = None, patch: int | None = None, stride: int | None = None):
    d = cv2.DISOpticalFlow_create(preset)
    if finest is not None:
        d.setFinestScale(finest)
    if patch is not None:
        d.setPatchSize(patch)
        d.setPatchStride(stride or patch // 2)
    return lambda a, b: d.calc(a, b, None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    cfg, bg = GridConfig(), textured_background(320, 240, 0)
    U, F, M = cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, cv2.DISOPTICAL_FLOW_PRESET_FAST, cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
    settings = {
        "fast preset (finest 1/4, the default)": FlowEngine(2),
        "fast preset at 1/2": _dis(F, 1),
        "fast preset at full size": _dis(F, 0),
        "ultrafast preset at 1/2": _dis(U, 1),
        "medium preset": _dis(M),
        "fast preset at 1/2, 6 px patches": _dis(F, 1, 6, 3),
        "fast at 1/2 within 4 px of fast at 1/4 (FlowEngine(1))": FlowEngine(1),
    }

    def pair(t: float, kind: str):
        return [work_gray(walkway_frame(LONG_START + c, kind=kind, clip_t=c, span=(4.0, 8.0), group_cols=COLS,
                                        bg=bg), cfg) for c in (t - 0.1, t)]

    report = {}
    for name, flow in settings.items():
        cyc, grp = [], []
        for t in (5.0, 5.5, 6.0, 6.5, 7.0):
            a, b = pair(t, "cyclist")
            H, W = b.shape
            sp = np.hypot(*np.moveaxis(flow(a, b) / (0.1 * H), -1, 0))
            x0 = group_x(LONG_START + t, COLS)
            cx, cy, r = (x0 - 0.05 + 0.15 * (t - 4.0)) * W, 0.69 * H, 4
            cyc.append(np.percentile(sp[int(cy - 2 * r):int(cy + 2 * r), int(cx - 2 * r):int(cx + 2 * r)], 90))
            a, b = pair(t, "")
            sp = np.hypot(*np.moveaxis(flow(a, b) / (0.1 * H), -1, 0))
            g0, g1 = max(0, int(x0 * W)), int((x0 + COLS * GROUP_STEP) * W)
            grp.append(np.percentile(sp[int(0.60 * H):int(0.78 * H), g0:g1], 90))
        t0 = time.perf_counter()
        for _ in range(30):
            flow(a, b)
        ms = (time.perf_counter() - t0) / 30 * 1000
        report[name] = {"cyclist_p90": round(float(np.mean(cyc)), 3), "group_p90": round(float(np.mean(grp)), 3),
                        "ratio": round(float(np.mean(cyc) / np.mean(grp)), 2), "ms_per_frame": round(ms, 2)}
        print(name, report[name], flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
