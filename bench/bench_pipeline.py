"""Benchmark: end-to-end scoring speed of the library against a naive per-frame baseline.

One run, one clip (640x480, 30 fps, >= 60 s; generated unless --video is given), one trained model
per encoder, and for each encoder (random-init OpenCLIP ViT-B-32 as the timing stand-in, and the
offline pretrained EfficientNet-Lite0):

* end-to-end scoring throughput (sampled frames/s) at 500 ms and at every-frame sampling, for a
  naive baseline written here and for the library with each runtime (torch, onnx, onnx-int8),
  with speed-ups against the naive baseline;
* image-encoder-only throughput per runtime and batch size, and the compute-bound estimate
  (model GFLOPs / peak GFLOP/s of a large matmul on this CPU);
* peak RSS when scoring 1x and 4x the clip length (each in its own subprocess);
* the embedding cache: first run vs re-run of training on two videos.

    python bench/bench_pipeline.py                 # full run (tens of minutes on 2 cores)
    python bench/bench_pipeline.py --quick         # smoke run on a small clip (about a minute)

Results: a JSON file (--out, default bench/results.json) and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import vlm_anomaly  # noqa: E402,F401 - first, so its thread settings apply before torch loads

ENCODERS = {
    "vit-b-32": {"encoder": "openclip", "clip_model": "ViT-B-32", "clip_pretrained": "none"},
    "efficientnet-lite0": {"encoder": "efficientnet"},
}
RUNTIMES = ("torch", "onnx", "onnx-int8")
MODEL_NAME = "bench-{}"


# -- machine ------------------------------------------------------------------------------------
def machine_info() -> dict:
    flags: set[str] = set()
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    import onnxruntime
    import torch

    from vlm_anomaly.threads import cpu_count

    return {
        "cpu": model,
        "cores": cpu_count(),
        "avx2": "avx2" in flags,
        "avx512": any(f.startswith("avx512") for f in flags),
        "vnni": any("vnni" in f for f in flags),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "load_avg_start": os.getloadavg(),
    }


def peak_gflops(n: int = 2048, reps: int = 5) -> tuple[float, float]:
    """Best fp32 matmul rate in PyTorch: (GFLOP/s by the wall clock, GFLOP per CPU-second).

    Why both: on a shared machine the wall-clock rate measures the share of the CPU this process
    got; the rate per CPU-second times the cores is what the machine does when it is idle.
    """
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    wall = cpu = 0.0
    for _ in range(reps):
        c, t = time.process_time(), time.perf_counter()
        a @ b
        wall = max(wall, 2 * n**3 / (time.perf_counter() - t) / 1e9)
        cpu = max(cpu, 2 * n**3 / max(time.process_time() - c, 1e-9) / 1e9)
    return wall, cpu


def model_gflops(encoder) -> float:
    """GFLOPs (2 x multiply-adds) of one image through the encoder's image tower."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    module = encoder.image_module()
    x = torch.zeros(1, 3, encoder.preprocess.size, encoder.preprocess.size)
    # grad mode on: under no_grad attention takes a fused fast path the counter does not see
    with torch.enable_grad(), FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops() / 1e9


# -- clips --------------------------------------------------------------------------------------
def make_clip(path: Path, seconds: float, *, seed: int = 0, anomaly: bool = True) -> Path:
    from vlm_anomaly.synthetic import write_video

    if path.is_file():
        return path
    span = (seconds * 0.6, seconds * 0.75) if anomaly else None
    tmp = path.with_suffix(".part.mp4")
    write_video(tmp, seconds=seconds, fps=30, size=(640, 480), anomaly_span=span, seed=seed)
    tmp.replace(path)
    return path


def repeat_clip(src: Path, dst: Path, times: int) -> Path:
    """``times`` copies of a clip back to back, by remuxing packets (no re-encoding)."""
    import av

    if dst.is_file():
        return dst
    tmp = dst.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as out:
        ost = None
        offset = 0
        for _ in range(times):
            with av.open(str(src)) as inp:
                ist = inp.streams.video[0]
                if ost is None:
                    ost = out.add_stream_from_template(ist)
                last = 0
                for pkt in inp.demux(ist):
                    if pkt.dts is None:
                        continue
                    dur = pkt.duration or 0
                    last = max(last, pkt.pts + dur if pkt.pts is not None else 0, pkt.dts + dur)
                    pkt.pts = None if pkt.pts is None else pkt.pts + offset
                    pkt.dts += offset
                    pkt.stream = ost
                    out.mux(pkt)
                offset += last
    tmp.replace(dst)
    return dst


# -- the naive baseline -------------------------------------------------------------------------
def _decode_all_pil(video: Path) -> tuple[list, list[float]]:
    import av
    from PIL import Image

    frames, times = [], []
    with av.open(str(video)) as c:
        st = c.streams.video[0]
        for f in c.decode(st):
            frames.append(Image.fromarray(f.to_ndarray(format="rgb24")))
            times.append(float(f.time or 0.0))
    return frames, times


def _pick(times: list[float], interval_ms: int) -> list[int]:
    if interval_ms <= 0:
        return list(range(len(times)))
    out, nxt = [], 0.0
    for i, t in enumerate(times):
        if t - times[0] + 1e-3 >= nxt:
            out.append(i)
            nxt = (int((t - times[0] + 1e-3) / (interval_ms / 1000)) + 1) * interval_ms / 1000
    return out


def naive_baseline(name: str, video: Path, model, intervals: list[int], per_frame: int) -> dict:
    """The simplest per-frame approach: decode everything into PIL images, then per frame encode
    the ~20 description prompts and the image for the description, and the image again for the
    embedding, batch size 1, with the model library's own PIL preprocessing.

    Timed on ``per_frame`` sampled frames; throughput = sampled frames / (decode-all time +
    per-frame time x sampled frames).
    """
    import torch

    from vlm_anomaly.encoders import build_prompts

    prompts = [f"a photo of {p}" for p in build_prompts(None)]
    if name == "vit-b-32":
        import open_clip

        torch.manual_seed(0)
        net, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
        net.eval()
        tokenizer = open_clip.get_tokenizer("ViT-B-32")

        def one(img) -> np.ndarray:
            text = net.encode_text(tokenizer(prompts))
            text = text / text.norm(dim=-1, keepdim=True)
            f = net.encode_image(preprocess(img).unsqueeze(0))
            f = f / f.norm(dim=-1, keepdim=True)
            (100 * f @ text.T).softmax(-1).topk(3)  # the description
            e = net.encode_image(preprocess(img).unsqueeze(0))  # the embedding, encoded again
            e = (e / e.norm(dim=-1, keepdim=True)).numpy()
            return model.decision_function(e)
    else:
        from efficientnet_lite_pytorch import EfficientNet
        from torchvision import transforms

        from vlm_anomaly.encoders.efficientnet import weights_path

        net = EfficientNet.from_name("efficientnet-lite0")
        net.load_state_dict(torch.load(weights_path(), map_location="cpu", weights_only=True))
        net.eval()
        preprocess = transforms.Compose(
            [
                transforms.Resize(256),
                transforms.CenterCrop(224),
                transforms.ToTensor(),
                transforms.Normalize([0.5] * 3, [0.5] * 3),
            ]
        )

        def one(img) -> np.ndarray:
            net(preprocess(img).unsqueeze(0)).softmax(-1).topk(3)  # the description: top labels
            e = net.extract_features(preprocess(img).unsqueeze(0)).mean(dim=(2, 3))
            e = (e / e.norm(dim=-1, keepdim=True)).numpy()
            return model.decision_function(e)

    t0 = time.perf_counter()
    frames, times = _decode_all_pil(video)
    decode_s = time.perf_counter() - t0
    out = {
        "decode_all_s": round(decode_s, 2),
        "decoded_frames": len(frames),
        "timed_frames": per_frame,
    }
    with torch.no_grad():
        one(frames[0])  # first-call warm-up, as the library runs get
        for iv in intervals:
            idx = _pick(times, iv)
            t = time.perf_counter()
            for i in idx[:per_frame]:
                one(frames[i])
            per = (time.perf_counter() - t) / min(per_frame, len(idx))
            total = decode_s + per * len(idx)
            out[str(iv)] = {
                "frames": len(idx),
                "s_per_frame": round(per, 4),
                "est_total_s": round(total, 1),
                "fps": round(len(idx) / total, 3),
            }
    del frames
    return out


# -- the library --------------------------------------------------------------------------------
def settings_for(name: str, home: Path, runtime: str, **extra):
    from vlm_anomaly.config import load_settings

    return load_settings(
        overrides={
            **ENCODERS[name],
            "detector": "ocsvm",  # an encoder benchmark: the embedding pipeline, not the motion default
            "home": home,
            "runtime": runtime,
            "embedding_cache": False,
            **extra,
        }
    )


def train_model(name: str, home: Path, normal: Path):
    from vlm_anomaly.pipeline import Pipeline

    pipe = Pipeline(settings_for(name, home, "torch"))
    model = pipe.fit([normal])
    pipe.store.save(model, MODEL_NAME.format(name))
    return pipe.store.load(MODEL_NAME.format(name))


def encoder_only(enc, batch_sizes: list[int], min_s: float) -> dict:
    rng = np.random.default_rng(0)
    s = enc.preprocess.size
    out = {}
    for bs in batch_sizes:
        x = rng.standard_normal((bs, 3, s, s), dtype=np.float32)
        enc.encode_array(x)  # warm-up (first call per shape)
        n, t0 = 0, time.perf_counter()
        while True:
            enc.encode_array(x)
            n += bs
            dt = time.perf_counter() - t0
            if dt >= min_s and n >= 2 * bs:
                break
        out[str(bs)] = round(n / dt, 2)
    return out


def library_runs(
    name: str,
    home: Path,
    clip: Path,
    model,
    runtimes: list[str],
    intervals: list[int],
    every_frame_limit: int,
    batch_sizes: list[int],
    min_s: float,
    out: dict,
    save,
) -> dict:
    from vlm_anomaly.pipeline import Pipeline

    for rt in runtimes:
        t0 = time.perf_counter()
        pipe = Pipeline(settings_for(name, home, rt))
        enc = pipe.encoder_for(model)
        setup = time.perf_counter() - t0
        enc.encode(np.zeros((1, 480, 640, 3), np.uint8))  # first call (oneDNN/ORT kernel set-up)
        pipe.describe_embeddings(model, np.zeros((1, enc.dim), np.float32) + 0.03, encoder=enc)
        res: dict = {
            "effective_runtime": enc.runtime,
            "setup_s": round(setup, 2),
            "threads": pipe.threads,
        }
        for iv in intervals:
            pipe.settings.max_frames = every_frame_limit if iv == 0 else 0
            c0, t = time.process_time(), time.perf_counter()
            r = pipe.score(model, clip, interval_ms=iv, describe=True)
            dt, cpu = time.perf_counter() - t, time.process_time() - c0
            res[str(iv)] = {
                "frames": r.n_frames,
                "s": round(dt, 2),
                "fps": round(r.n_frames / dt, 2),
                "cpu_util": round(cpu / dt, 2),
                "anomalies": r.n_anomalies,
                "timing": r.timing,
            }
        res["encoder_only_fps"] = encoder_only(enc, batch_sizes, min_s)
        out[rt] = res
        save()
        print(
            f"  {name} {rt}: "
            + ", ".join(f"{iv} ms {res[str(iv)]['fps']} fps" for iv in intervals),
            flush=True,
        )
    return out


def cache_rerun(name: str, home: Path, clips: list[Path], runtime: str) -> dict:
    """Training on several videos (one stream of batches), first run vs re-run from the cache."""
    from vlm_anomaly.pipeline import Pipeline

    pipe = Pipeline(settings_for(name, home, runtime, embedding_cache=True))
    pipe.cache.clear()
    pipe.encoder  # noqa: B018 - build it outside the timing
    t = time.perf_counter()
    pipe.fit(clips)
    first = time.perf_counter() - t
    t = time.perf_counter()
    pipe.fit(clips)
    second = time.perf_counter() - t
    return {
        "videos": len(clips),
        "runtime": runtime,
        "first_s": round(first, 2),
        "rerun_s": round(second, 3),
        "speedup": round(first / max(second, 1e-6), 1),
    }


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM) in MB.

    Why not ``getrusage``: its ``ru_maxrss`` survives ``execve``, so a subprocess reports its
    parent's peak; VmHWM belongs to the process's own address space.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_child(args) -> None:
    """Subprocess body: score one clip, print its own peak RSS."""
    from vlm_anomaly.config import load_settings
    from vlm_anomaly.pipeline import Pipeline

    s = load_settings(
        overrides={
            **ENCODERS[args.encoder_name],
            "home": args.home,
            "runtime": args.runtime,
            "embedding_cache": False,
        }
    )
    pipe = Pipeline(s)
    model = pipe.store.load(MODEL_NAME.format(args.encoder_name))
    pipe.encoder_for(model)
    loaded = peak_rss_mb()
    t = time.perf_counter()
    r = pipe.score(model, args.video, interval_ms=args.interval)
    peak = peak_rss_mb()
    print(
        json.dumps(
            {
                "frames": r.n_frames,
                "s": round(time.perf_counter() - t, 2),
                "rss_after_load_mb": round(loaded, 1),
                "max_rss_mb": round(peak, 1),
            }
        )
    )


def measure_rss(name: str, home: Path, clips: dict[str, Path], runtime: str, interval: int) -> dict:
    out = {"runtime": runtime, "interval_ms": interval}
    for label, clip in clips.items():
        cmd = [
            sys.executable,
            __file__,
            "--rss-child",
            "--video",
            str(clip),
            "--home",
            str(home),
            "--encoder-name",
            name,
            "--runtime",
            runtime,
            "--interval",
            str(interval),
        ]
        p = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if p.returncode != 0:
            raise RuntimeError(f"RSS subprocess failed: {p.stderr[-2000:]}")
        out[label] = json.loads(p.stdout.strip().splitlines()[-1])
    a, b = out["1x"]["max_rss_mb"], out["4x"]["max_rss_mb"]
    out["growth_mb"] = round(b - a, 1)
    out["flat"] = b - a < max(50.0, 0.1 * a)
    return out


# -- report -------------------------------------------------------------------------------------
def print_table(results: dict) -> None:
    m = results["machine"]
    print(
        f"\nmachine: {m['cpu']}, {m['cores']} cores, AVX2 {m['avx2']}, AVX-512 {m['avx512']}, "
        f"load {m['load_avg_start'][0]:.1f} -> {m['load_avg_end'][0]:.1f}"
    )
    print(
        f"clip: {results['clip']['seconds']} s, {results['clip']['frames']} frames 640x480 "
        f"@30 fps; every-frame runs limited to {results['every_frame_limit']} frames"
    )
    for name, r in results["encoders"].items():
        print(
            f"\n{name}: {r['gflops']:.2f} GFLOP/image; "
            f"idle peak {results['peak_gflops_idle']:.0f} GFLOP/s -> "
            f"compute-bound {r['compute_bound_fps']:.1f} frames/s"
        )
        print(
            f"{'':18}{'500 ms fps':>12}{'x naive':>9}{'every fps':>12}{'x naive':>9}"
            f"   encoder-only fps by batch"
        )
        rows = [("naive", r["naive"])] + list(r["library"].items())
        for label, v in rows:
            cells = []
            for iv in ("500", "0"):
                fps = v[iv]["fps"] if iv in v else float("nan")
                sp = r["speedup"].get(label, {}).get(iv, float("nan")) if label != "naive" else 1.0
                cells.append(f"{fps:12.2f}{sp:9.1f}")
            enc = "  ".join(f"{k}:{val}" for k, val in v.get("encoder_only_fps", {}).items())
            eff = v.get("effective_runtime", label)
            shown = label if eff == label else f"{label}({eff})"
            print(f"{shown:18}" + "".join(cells) + "   " + enc)
        if "rss" in r:
            x = r["rss"]
            print(
                f"peak RSS ({x['runtime']}, {x['interval_ms']} ms): 1x {x['1x']['max_rss_mb']} MB, "
                f"4x {x['4x']['max_rss_mb']} MB -> {'flat' if x['flat'] else 'GROWS'}"
            )
        if "cache" in r:
            c = r["cache"]
            print(
                f"embedding cache, {c['videos']} videos: first {c['first_s']} s, "
                f"re-run {c['rerun_s']} s"
            )


def markdown(results: dict) -> str:
    """The results as Markdown tables (for docs/performance.md)."""
    m = results["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, AVX2 {'yes' if m['avx2'] else 'no'}, "
        f"AVX-512 {'yes' if m['avx512'] else 'no'}, VNNI {'yes' if m['vnni'] else 'no'}, "
        f"{m['memory_gib']} GiB; torch {m['torch']}, onnxruntime {m['onnxruntime']}; load average "
        f"{m['load_avg_start'][0]:.1f} at start, {m['load_avg_end'][0]:.1f} at end.",
        f"Clip: {results['clip']['seconds']} s, {results['clip']['frames']} frames, "
        "640x480 @ 30 fps; "
        f"every-frame runs score the first {results['every_frame_limit']} frames. "
        f"Peak fp32 matmul: {results['peak_gflops']} GFLOP/s by the wall clock during the run, "
        f"{results.get('peak_gflops_idle', '?')} GFLOP/s on the idle machine "
        "(per-CPU-second rate x cores); the compute bound uses the latter.",
        "",
    ]
    for name, r in results["encoders"].items():
        if "naive" not in r:
            continue
        lines += [
            f"**{name}** ({r['gflops']} GFLOP/image, compute-bound {r['compute_bound_fps']} "
            "frames/s)",
            "",
            "| runtime | 500 ms: frames/s | x naive | every frame: frames/s | x naive "
            "| every frame: CPU ms/frame | encoder only, frames/s at batch "
            + "/".join(next(iter(r["library"].values()))["encoder_only_fps"])
            + " |",
            "|---|---|---|---|---|---|---|",
        ]
        nv = r["naive"]
        lines.append(f"| naive baseline | {nv['500']['fps']} | 1 | {nv['0']['fps']} | 1 | - | - |")
        for rt, v in r["library"].items():
            eff = v["effective_runtime"]
            label = rt if eff == rt else f"{rt} (runs {eff})"
            sp = r.get("speedup", {}).get(rt, {})
            enc = " / ".join(str(x) for x in v["encoder_only_fps"].values())
            cpu_ms = 1000 * v["0"]["s"] * v["0"]["cpu_util"] / v["0"]["frames"]
            lines.append(
                f"| {label} | {v['500']['fps']} | {sp.get('500', '-')} | {v['0']['fps']} "
                f"| {sp.get('0', '-')} | {cpu_ms:.0f} | {enc} |"
            )
        if "rss" in r:
            x = r["rss"]
            lines.append(
                f"\nPeak RSS scoring at {x['interval_ms']} ms with {x['runtime']}: "
                f"1x clip ({x['1x']['frames']} frames) {x['1x']['max_rss_mb']} MB, 4x clip "
                f"({x['4x']['frames']} frames) {x['4x']['max_rss_mb']} MB "
                f"({'flat' if x['flat'] else 'grows'}; {x['1x'].get('rss_after_load_mb')} MB once "
                "the model is loaded)."
            )
        if "cache" in r:
            c = r["cache"]
            lines.append(
                f"Training on {c['videos']} videos ({c['runtime']}): first run {c['first_s']} s, "
                f"re-run from the embedding cache {c['rerun_s']} s."
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", type=Path, help="clip to use (default: generate 640x480 30 fps)")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the generated clip")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results.json")
    ap.add_argument(
        "--workdir",
        type=Path,
        default=REPO / ".vlm-anomaly" / "bench",
        help="clips, models and cached ONNX exports (reused between runs)",
    )
    ap.add_argument("--quick", action="store_true", help="short smoke run on a small clip")
    ap.add_argument("--encoders", default="", help="comma list of " + ", ".join(ENCODERS))
    ap.add_argument("--runtimes", default=",".join(RUNTIMES))
    ap.add_argument(
        "--every-frame-limit",
        type=int,
        default=300,
        help="frames scored in the every-frame runs (throughput is a rate)",
    )
    ap.add_argument(
        "--naive-frames", type=int, default=6, help="frames timed in the naive baseline"
    )
    ap.add_argument("--no-rss", action="store_true")
    ap.add_argument("--markdown", type=Path, help="print a results JSON as Markdown, then exit")
    # internal: the RSS subprocess
    ap.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--encoder-name", help=argparse.SUPPRESS)
    ap.add_argument("--runtime", help=argparse.SUPPRESS)
    ap.add_argument("--interval", type=int, default=500, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rss_child:
        rss_child(args)
        return 0
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0

    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    quick = args.quick
    seconds = 2.0 if quick and not args.video else args.seconds
    names = [
        n
        for n in (args.encoders or ("efficientnet-lite0" if quick else ",".join(ENCODERS))).split(
            ","
        )
        if n
    ]
    runtimes = [r for r in args.runtimes.split(",") if r]
    for n in names:
        if n not in ENCODERS:
            ap.error(f"unknown encoder {n!r}")
    batch_sizes = [1, 4] if quick else [1, 8, 16, 32]
    min_s = 0.1 if quick else 3.0
    ef_limit = 16 if quick else args.every_frame_limit
    naive_frames = 1 if quick else args.naive_frames
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    tag = "quick" if quick else "full"

    from vlm_anomaly.threads import configure_threads

    configure_threads(0)
    results: dict = {
        "machine": machine_info(),
        "quick": quick,
        "every_frame_limit": ef_limit,
        "naive_timed_frames": naive_frames,
        "encoders": {},
    }
    print(f"machine: {results['machine']}", flush=True)
    clip = args.video or make_clip(work / f"clip-{tag}-{int(seconds)}s.mp4", seconds)
    normal = make_clip(work / f"normal-{tag}.mp4", 2.0 if quick else 10.0, seed=1, anomaly=False)
    from vlm_anomaly.video import probe

    info = probe(clip)
    results["clip"] = {
        "path": str(clip),
        "seconds": round(info.duration_s, 1),
        "frames": info.frame_count,
        "size": [info.width, info.height],
        "fps": info.fps,
    }
    wall, per_core = peak_gflops(512 if quick else 2048)
    results["peak_gflops"] = round(wall, 1)  # now, by the wall clock (shared machine: a share)
    results["peak_gflops_per_core"] = round(per_core, 1)
    results["peak_gflops_idle"] = round(per_core * results["machine"]["cores"], 1)
    intervals = [500, 0]
    results["complete"] = False

    def save() -> None:
        """Write what is measured so far (a long run that is cut short still leaves numbers)."""
        results["machine"]["load_avg_end"] = os.getloadavg()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")

    with tempfile.TemporaryDirectory(dir=work) as tmp:
        for name in names:
            print(f"{name}:", flush=True)
            home = work / f"home-{name}"
            home.mkdir(exist_ok=True)
            model = train_model(name, home, normal)
            r: dict = {"library": {}}
            results["encoders"][name] = r
            lib = library_runs(
                name,
                home,
                clip,
                model,
                runtimes,
                intervals,
                ef_limit,
                batch_sizes,
                min_s,
                r["library"],
                save,
            )
            from vlm_anomaly.pipeline import Pipeline

            enc = Pipeline(settings_for(name, home, "torch")).encoder_for(model)
            r["gflops"] = round(model_gflops(enc), 3)
            r["compute_bound_fps"] = round(results["peak_gflops_idle"] / r["gflops"], 1)
            del enc
            save()
            r["naive"] = naive_baseline(name, clip, model, intervals, naive_frames)
            save()
            print(
                f"  {name} naive: "
                + ", ".join(f"{iv} ms {r['naive'][str(iv)]['fps']} fps" for iv in intervals),
                flush=True,
            )
            r["speedup"] = {
                rt: {
                    str(iv): round(v[str(iv)]["fps"] / r["naive"][str(iv)]["fps"], 1)
                    for iv in intervals
                }
                for rt, v in lib.items()
            }
            fastest = max(lib, key=lambda rt: lib[rt]["500"]["fps"])
            r["cache"] = cache_rerun(name, home, [clip, normal], fastest)
            if not args.no_rss:
                long_clip = repeat_clip(clip, Path(tmp) / "clip-4x.mp4", 4)
                r["rss"] = measure_rss(name, home, {"1x": clip, "4x": long_clip}, fastest, 500)
                Path(long_clip).unlink(missing_ok=True)
            save()
            print(f"  {name} done", flush=True)
    results["complete"] = True
    save()
    print_table(results)
    print(f"\nresults: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
