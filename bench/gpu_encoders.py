"""GPU check of the encoders: fp16 batches on CUDA, throughput per batch size, accuracy against fp32 CPU.

For each encoder (random-init OpenCLIP ViT-B-32 and ViT-L-14 as timing stand-ins, and the offline
pretrained EfficientNet-Lite0) it prints and writes (--out, JSON):

* ``encode()`` throughput from 640x480 RGB frames (CPU letterbox + GPU forward, the library's path),
* GPU-only throughput of ``encode_array`` on preprocessed batches, per batch size,
* peak GPU memory, and the mean / minimum cosine of the fp16 CUDA embeddings against the fp32 CPU
  embeddings of the same frames (fp16 must not change what the detector sees).

    python bench/gpu_encoders.py --out gpu.json     # needs a CUDA GPU; about a minute
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from vlm_anomaly.encoders import create_encoder  # noqa: E402
from vlm_anomaly.synthetic import render_frame  # noqa: E402

ENCODERS = {
    "vit-b-32": dict(backend="openclip", clip_model="ViT-B-32", clip_pretrained="none"),
    "vit-l-14": dict(backend="openclip", clip_model="ViT-L-14", clip_pretrained="none"),
    "efficientnet-lite0": dict(backend="efficientnet"),
}


def rate(fn, n_items: int, repeats: int = 3) -> float:
    fn()  # warm-up (cuDNN autotune, allocator)
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return n_items / best


def bench(name: str, spec: dict, frames: list[np.ndarray], batches: list[int]) -> dict:
    spec = dict(spec)
    backend = spec.pop("backend")
    torch.manual_seed(0)
    cpu = create_encoder(backend, device="cpu", batch_size=16, **spec)
    ref = cpu.encode(frames[:32])
    torch.manual_seed(0)  # random-init OpenCLIP is seeded: the same weights on both devices
    out: dict = {"encoder": name, "dim": cpu.dim}
    gpu = create_encoder(backend, device="cuda", batch_size=64, **spec)
    emb = gpu.encode(frames[:32])
    cos = (emb * ref).sum(1)
    out["fp16_vs_fp32_cosine_mean"] = round(float(cos.mean()), 6)
    out["fp16_vs_fp32_cosine_min"] = round(float(cos.min()), 6)
    torch.cuda.reset_peak_memory_stats()
    out["encode_frames_per_s"] = round(rate(lambda: gpu.encode(frames), len(frames)), 1)
    x = gpu.preprocess(frames[:1])
    out["gpu_only"] = {}
    for b in batches:
        xb = np.repeat(x, b, axis=0)
        out["gpu_only"][b] = round(rate(lambda xb=xb: gpu.encode_array(xb), b, repeats=5), 1)
    out["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    out["cpu_encode_frames_per_s"] = round(len(frames[:32]) / _timed(lambda: cpu.encode(frames[:32])), 1)
    torch.cuda.empty_cache()
    return out


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("gpu_encoders.json"))
    ap.add_argument("--frames", type=int, default=256)
    ap.add_argument("--encoders", default=",".join(ENCODERS))
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 2
    frames = [render_frame(i / 30, 640, 480, anomaly=i % 50 > 40) for i in range(args.frames)]
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "frames": len(frames),
           "results": []}
    for name in args.encoders.split(","):
        r = bench(name, ENCODERS[name], frames, [16, 64, 256])
        res["results"].append(r)
        print(json.dumps(r), flush=True)
    args.out.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
