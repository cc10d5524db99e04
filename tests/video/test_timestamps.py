"""Videos whose timestamps are odd, as cameras and exports write them: duplicated or backwards
timestamps, recordings concatenated so that time restarts, a hole of seconds without frames.

The files are real encodes of the synthetic street scene whose packets carry the timestamps a
broken muxer or camera leaves; the frames' true times are known, so the times the library reads
can be checked against them (motion is measured per second of those times).
"""

from __future__ import annotations

import csv
import io
import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.helpers import run_cli
from vlm_anomaly.synthetic import render_frame, textured_background
from vlm_anomaly.video import sample_frames
from vlm_anomaly.video.live import Gap, LiveSource

SIZE = (160, 120)
FPS = 10
N = 120  # 12 s
TRUE_T = np.arange(N) / FPS


def write_stamped(path: Path, content_t, pts_t, *, anomaly: tuple[float, float] | None = None,
                  rate_free: bool = False) -> Path:
    """H.264 frames of the scene at times ``content_t``, muxed with timestamps ``pts_t`` (seconds).

    ``rate_free``: decoding timestamps one tick apart, so the container declares no usable frame
    rate (FFmpeg guesses 90000 fps): repairs cannot lean on the header's rate. Otherwise the
    timestamps go in as frame timestamps (the muxer refuses backwards ones then)."""
    w, h = SIZE
    bg = textured_background(w, h, 0)
    tb = Fraction(1, 90000)
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt, enc.time_base = w, h, "yuv420p", tb
    enc.framerate = Fraction(FPS)
    enc.options = {"preset": "ultrafast", "crf": "23", "bf": "0"}
    packets = []
    for i, ct in enumerate(content_t):
        img = render_frame(ct, w, h, anomaly=anomaly is not None and anomaly[0] <= ct < anomaly[1], seed=0, bg=bg)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts, frame.time_base = i, tb
        packets += enc.encode(frame)
    packets += enc.encode()
    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=FPS)
        st.width, st.height, st.pix_fmt, st.time_base = w, h, "yuv420p", tb
        st.codec_context.extradata = enc.extradata
        for i, (p, t) in enumerate(zip(packets, pts_t, strict=True)):
            p.stream, p.time_base = st, tb
            p.pts = round((float(t) + 1.0) / tb)
            p.dts = i if rate_free else p.pts
            out.mux(p)
    return path


def concatenated_ts(path: Path, *, anomaly: tuple[float, float] | None = None) -> Path:
    """Two MPEG-TS recordings of 5 s and 7 s joined byte for byte (``cat a.ts b.ts``): both start at
    timestamp 0, so time restarts 5 s in. Content time runs on: the intruder of ``anomaly`` is
    shown at those content times."""
    a = write_stamped(path.with_suffix(".a.ts"), TRUE_T[:50], TRUE_T[:50], anomaly=anomaly)
    b = write_stamped(path.with_suffix(".b.ts"), TRUE_T[50:], TRUE_T[50:] - 5.0, anomaly=anomaly)
    path.write_bytes(a.read_bytes() + b.read_bytes())
    return path


@pytest.mark.parametrize("ext", [".ts", ".mp4"])
@pytest.mark.parametrize("kind", ["backwards", "duplicated"])
def test_broken_timestamps_are_repaired_at_the_streams_own_spacing(tmp_path, ext, kind):
    """Timestamps that restart 5 s in, or repeat every 5th frame, in a container that declares no
    usable rate: the repaired times follow the frames' own 0.1 s spacing, not the 30 fps fallback
    (which squeezed 12 s into 7 s and made every motion after the reset 3 times too fast)."""
    pts = np.where(TRUE_T < 5, TRUE_T, TRUE_T - 5) if kind == "backwards" else TRUE_T.copy()
    if kind == "duplicated":
        pts[5::5] = pts[4::5][: len(pts[5::5])]
    src = write_stamped(tmp_path / f"{kind}{ext}", TRUE_T, pts, rate_free=True)
    times = np.array([f.timestamp for f in sample_frames(src, interval_ms=0)])
    assert len(times) == N
    assert np.all(np.diff(times) > 0)
    np.testing.assert_allclose(times, TRUE_T, atol=0.02)


def test_watching_concatenated_recordings_reads_them_all(tmp_path):
    """A file whose timestamps restart (recordings joined): the live reader samples it to the end,
    as the offline sampler does; it used to sample nothing until time caught up again."""
    src = concatenated_ts(tmp_path / "joined.ts")
    live = [f.timestamp for f in LiveSource(str(src), interval_ms=500, realtime=False)]
    offline = [f.timestamp for f in sample_frames(src, interval_ms=500)]
    assert len(live) == len(offline) == 24
    np.testing.assert_allclose(live, np.arange(24) * 0.5, atol=0.02)
    np.testing.assert_allclose(offline, live)


def test_a_hole_in_a_files_timestamps_is_a_gap(tmp_path):
    """20 s without frames 4 s into a file (a recorder that paused): the live reader reports it as a
    gap, as it does a stalled camera, so the watcher counts the missed time and does not smooth
    scores across it; a time-lapse whose frames are always 6 s apart has no gap."""
    hole = np.where(TRUE_T < 4, TRUE_T, TRUE_T + 20)
    items = list(LiveSource(str(write_stamped(tmp_path / "hole.mp4", hole, hole)), interval_ms=500, realtime=False))
    gaps = [i for i in items if isinstance(i, Gap)]
    assert len(gaps) == 1, gaps
    assert gaps[0].start_time == pytest.approx(3.9) and gaps[0].end_time == pytest.approx(24.0)
    before = [i.timestamp for i in items[: items.index(gaps[0])]]
    assert len(before) == 8 and len(items) - len(before) - 1 == 16

    lapse = np.arange(8) * 6.0
    items = list(LiveSource(str(write_stamped(tmp_path / "lapse.mp4", lapse, lapse)), interval_ms=500, realtime=False))
    assert not [i for i in items if isinstance(i, Gap)] and len(items) == 8


@pytest.mark.slow
def test_score_reports_a_hole_as_watch_does(tmp_path, default_street_model):
    """The intruder walks 2-30 s of a file whose recorder paused from 4 s to 24 s. ``watch`` counts
    the 20.1 s gap and ends the event at it; ``score`` (the same defaults) used to list one
    incident from 2 s to 31.8 s, smoothing the last frames before the hole with the first after it.
    Now it shows the same gap (console, JSON, CSV), smooths each side on its own, and ends the
    incident at the hole as watch does. Both judge a hole by one rule: a time-lapse has none."""
    home = default_street_model.install(tmp_path / "home")
    hole = np.where(TRUE_T < 4, TRUE_T, TRUE_T + 20)
    src = write_stamped(tmp_path / "paused.mp4", hole, hole, anomaly=(2.0, 30.0))
    r = run_cli("watch", "-m", "street", "-s", src, "--fast", home=home, timeout=300)
    assert r.returncode == 0 and "1 gap(s) (20.1 s missed)" in r.stdout, r.stdout + r.stderr[-2000:]
    cut = [line for line in r.stdout.splitlines() if line.startswith("EVENT END") and "(missed 20.1 s" in line]
    assert len(cut) == 1 and "2.00-3.80s" in cut[0], r.stdout

    out = tmp_path / "paused"
    r = run_cli("score", "street", src, "--json", out.with_suffix(".json"), "--csv", out.with_suffix(".csv"),
                home=home, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "1 gap(s) (20.1 s missed)" in r.stdout and "GAP paused.mp4: missed 20.1 s at 3.90s" in r.stdout, r.stdout
    result = json.loads(out.with_suffix(".json").read_text())
    s, frames = result["summary"], result["frames"]
    [gap] = s["gaps"]
    assert (gap["start_time"], gap["end_time"], gap["missed_s"]) == (3.9, 24.0, 20.1), gap
    spans = sorted((i["start_time"], i["end_time"], i["end_reason"]) for i in s["incidents"])
    assert spans[0] == (2.0, 3.8, "missed 20.1 s of the source: frames missing: the file's timestamps jump"), spans
    assert len(spans) == 2 and spans[1][0] >= 24.0, spans
    after = [f for f in frames if f["time"] >= 24.0]
    w = s["smoothing_window"]  # centred: the first frame after the hole averages only frames after it
    assert after[0]["smoothed_score"] == pytest.approx(np.mean([f["raw_score"] for f in after[: w - w // 2]]), abs=1e-5)
    rows = list(csv.DictReader(io.StringIO(out.with_suffix(".csv").read_text())))
    assert [(r["time"], r["gap_before_s"]) for r in rows if r["gap_before_s"]] == [("24.0", "20.1")]

    # a time-lapse, frames always 6 s apart, has no hole: watch counted 7 gaps of "no frame for 6.0 s"
    lapse = np.arange(8) * 6.0
    r = run_cli("watch", "-m", "street", "-s", write_stamped(tmp_path / "lapse.mp4", lapse, lapse), "--fast",
                home=home, timeout=300)
    assert r.returncode == 0 and "8 frames, 0 event(s), 0 gap(s)" in r.stdout, r.stdout + r.stderr[-2000:]


@pytest.mark.slow
def test_watch_finds_the_intruder_after_a_timestamp_restart(tmp_path, default_street_model):
    """``watch --fast`` and ``score`` with the shipped defaults on recordings joined end to end: the
    intruder walks through 6-9 s (the second recording's 1-4 s). Both report it once, at its place
    in the file; a normal file with the same restart raises nothing."""
    home = default_street_model.install(tmp_path / "home")
    joined = concatenated_ts(tmp_path / "joined.ts", anomaly=(6.0, 9.0))
    r = run_cli("watch", "-m", "street", "-s", joined, "--fast", home=home, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    starts = [line for line in r.stdout.splitlines() if line.startswith("EVENT START")]
    assert len(starts) == 1, r.stdout
    assert "at 6.00s" in starts[0] or "at 6.50s" in starts[0], starts
    assert "48 frames, 1 event(s)" in r.stdout, r.stdout  # every 250 ms (the model's interval) of 12 s

    normal = concatenated_ts(tmp_path / "normal.ts")
    r = run_cli("score", "street", normal, "--json", tmp_path / "n.json", home=home, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads((tmp_path / "n.json").read_text())["summary"]
    assert summary["frames"] == 48 and summary["anomalies"] == 0, summary



def test_frames_too_far_apart_for_motion_are_said(tmp_path, caplog):
    """A 0.5 fps camera: motion is measured only between frames at most ``max_gap_s`` apart, so the
    default detector sees nothing move (it missed an intruder without a word); now it says so once.
    The same scene at 10 fps, and a single 20 s hole in it, say nothing."""
    from vlm_anomaly.motion.extract import iter_cells
    from vlm_anomaly.motion.features import GridConfig

    slow = np.arange(12) * 2.0
    hole = np.where(TRUE_T < 4, TRUE_T, TRUE_T + 20)
    for name, t, warned in [("slow.mp4", slow, True), ("steady.mp4", TRUE_T, False), ("hole.mp4", hole, False)]:
        caplog.clear()
        src = write_stamped(tmp_path / name, t, t, anomaly=(10.0, 14.0))
        with caplog.at_level("WARNING", logger="vlm_anomaly.motion"):
            list(iter_cells(str(src), GridConfig(), 11))
        said = [r.getMessage() for r in caplog.records if "apart" in r.getMessage()]
        assert len(said) == int(warned), (name, said)
        if warned:
            assert "frames 2.0 s apart" in said[0] and "0.5 s" in said[0] and name in said[0]


@pytest.mark.parametrize("ext", [".mjpeg", ".h264"])
def test_a_raw_stream_without_timestamps_says_what_it_assumes(tmp_path, caplog, ext):
    """A raw MJPEG or H.264 file (as some cameras export) has no timestamps: its times, and the
    speeds motion is measured in, rest on an assumed 25 fps; the sampler and the live reader say
    so. A 10 fps scene sampled from it runs 2.5 times too fast, silently until now."""
    from vlm_anomaly.synthetic import encode_rgb

    bg = textured_background(*SIZE, 0)
    frames = [render_frame(t, *SIZE, seed=0, bg=bg) for t in TRUE_T[:20]]
    codec = "mjpeg" if ext == ".mjpeg" else "libx264"
    src = encode_rgb(tmp_path / f"cam{ext}", frames, fps=FPS, size=SIZE, codec=codec)
    with caplog.at_level("WARNING", logger="vlm_anomaly.video"):
        times = [f.timestamp for f in sample_frames(src, interval_ms=0)]
        list(LiveSource(str(src), interval_ms=0, realtime=False))
    assert times[1] == pytest.approx(0.04)  # what the file gives: FFmpeg's default rate
    said = [r.getMessage() for r in caplog.records if "no timestamps" in r.getMessage()]
    assert len(said) == 2 and "assume 25 fps" in said[0] and src.name in said[0], said
